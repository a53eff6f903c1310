package guard_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// fakeClock is a clock that moves only when told to, and runs the
// functions scheduled with AfterFunc when it passes their time.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	var due []func()
	keep := c.timers[:0]
	for _, tm := range c.timers {
		switch {
		case tm.stopped:
		case !tm.at.After(c.t):
			due = append(due, tm.f)
		default:
			keep = append(keep, tm)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &fakeTimer{at: c.t.Add(d), f: f}
	c.timers = append(c.timers, tm)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !tm.stopped && slices.Contains(c.timers, tm)
		tm.stopped = true
		return was
	}
}

// events records transitions as "policy: from→to @offset".
type events struct {
	mu    sync.Mutex
	start time.Time
	list  []string
	at    []time.Time
}

func newEvents(clk *fakeClock) *events { return &events{start: clk.Now()} }

func (e *events) Transition(policy, from, to string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, fmt.Sprintf("%s→%s @%v", from, to, at.Sub(e.start)))
	e.at = append(e.at, at)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

func (e *events) want(t *testing.T, want ...string) {
	t.Helper()
	if got := e.get(); !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %q\nwant %q", got, want)
	}
}

// call acquires and, when admitted, releases with the outcome. It returns
// the rejection, if any.
func call(t *testing.T, p guard.Policy, o guard.Outcome) error {
	t.Helper()
	pm, err := p.Acquire(t.Context(), &guard.Request{Route: "/api/orders"})
	if err != nil {
		return err
	}
	p.Release(pm, o)
	return nil
}

var (
	ok200  = guard.Outcome{Duration: time.Millisecond, Status: 200}
	fail   = guard.Outcome{Duration: time.Millisecond, Status: 500}
	slowOK = guard.Outcome{Duration: time.Second, Status: 200}
)

// rejected asserts err is a rejection of the given reason wrapping sentinel.
func rejected(t *testing.T, err error, sentinel error, reason string) *guard.Rejection {
	t.Helper()
	var rej *guard.Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("error = %v, want a *guard.Rejection (%s)", err, reason)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("rejection %v does not wrap %v", err, sentinel)
	}
	if rej.Reason != reason {
		t.Errorf("reason = %q, want %q", rej.Reason, reason)
	}
	return rej
}

// problems runs Check and returns "field: msg" lines.
func problems(c guard.Config) []string {
	var ps []string
	c.Check(func(field, msg string) { ps = append(ps, field+": "+msg) })
	return ps
}

func mustCheck(t *testing.T, c guard.Config) {
	t.Helper()
	if ps := problems(c); len(ps) > 0 {
		t.Fatalf("%s config fails Check: %s", c.Kind(), strings.Join(ps, "; "))
	}
}

// fakeSignals is a process whose memory and CPU the test sets.
type fakeSignals struct {
	mu    sync.Mutex
	mem   uint64
	limit uint64
	cpu   time.Duration
	cpus  int
	// goroutines is the count the goroutine trigger reads.
	goroutines int
}

// Goroutines implements guard.GoroutineSignal.
func (s *fakeSignals) Goroutines() int { s.mu.Lock(); defer s.mu.Unlock(); return s.goroutines }

func (s *fakeSignals) setGoroutines(n int) { s.mu.Lock(); s.goroutines = n; s.mu.Unlock() }

func (s *fakeSignals) Memory(guard.MemorySignal) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mem
}
func (s *fakeSignals) MemoryLimit() uint64    { s.mu.Lock(); defer s.mu.Unlock(); return s.limit }
func (s *fakeSignals) CPUTime() time.Duration { s.mu.Lock(); defer s.mu.Unlock(); return s.cpu }
func (s *fakeSignals) CPUs() int              { return max(1, s.cpus) }

func (s *fakeSignals) set(mem uint64) { s.mu.Lock(); s.mem = mem; s.mu.Unlock() }

// burn adds CPU time as if the process had used frac of its CPUs for d.
func (s *fakeSignals) burn(d time.Duration, frac float64) {
	s.mu.Lock()
	s.cpu += time.Duration(float64(d) * frac * float64(max(1, s.cpus)))
	s.mu.Unlock()
}

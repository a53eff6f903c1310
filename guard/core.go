package guard

import (
	"sync"
	"sync/atomic"
	"time"
)

// core is what every policy of this package shares: its name and kind, its
// clock and observer, the state machine's current state, and the counters
// the metrics collector reads. Policies embed it.
type core struct {
	name, kind string
	clk        clock
	obs        Observer
	states     []string // state names, indexed by state number
	reasons    []string // rejection reasons, indexed by reason number

	answer
	static []*Rejection // per reason, for rejections without a RetryAfter

	state    atomic.Int32
	admitted atomic.Uint64
	rejected []atomic.Uint64 // per reason
	// admittedHook, when set, counts admissions instead of admitted, for a
	// policy that counts them more cheaply elsewhere (the breaker).
	admittedHook func() uint64

	// mu serialises state transitions; policies take it for theirs.
	mu          sync.Mutex
	transitions map[[2]int32]uint64
}

func (c *core) init(kind, name string, o Options, states, reasons []string, a answer) {
	c.kind, c.name = kind, name
	c.clk = newClock(o.Clock)
	c.obs = o.Observer
	c.states, c.reasons = states, reasons
	c.answer = a
	c.rejected = make([]atomic.Uint64, len(reasons))
	c.static = make([]*Rejection, len(reasons))
	for i := range reasons {
		c.static[i] = c.rejection(i, 0)
	}
	c.transitions = map[[2]int32]uint64{}
}

// Name implements Policy.
func (c *core) Name() string { return c.name }

// Kind is the policy's kind name, as in the scenario: "breaker", ….
func (c *core) Kind() string { return c.kind }

// State is the name of the state the policy's state machine is in.
// States that a policy leaves lazily (an open breaker whose wait is over)
// change on the next call.
func (c *core) State() string { return c.states[c.state.Load()] }

func (c *core) rejection(reason int, retryAfter time.Duration) *Rejection {
	return &Rejection{
		Policy: c.name, Kind: c.kind, Reason: c.reasons[reason],
		RetryAfter: retryAfter, Status: c.status, GRPC: c.grpc, err: c.sentinel,
	}
}

// reject counts a rejection and returns its error. Only rejections that
// carry a RetryAfter allocate.
func (c *core) reject(reason int, retryAfter time.Duration) error {
	c.rejected[reason].Add(1)
	if retryAfter <= 0 {
		return c.static[reason]
	}
	return c.rejection(reason, retryAfter)
}

// transition moves the state machine and tells the observer. The caller
// holds c.mu.
func (c *core) transition(from, to int32, now int64) {
	c.state.Store(to)
	c.transitions[[2]int32{from, to}]++
	if c.obs != nil {
		c.obs.Transition(c.name, c.states[from], c.states[to], c.clk.at(now))
	}
}

// self lets the collector reach the core of any policy of this package.
func (c *core) self() *core { return c }

// admittedCount is how many calls the policy admitted.
func (c *core) admittedCount() uint64 {
	if c.admittedHook != nil {
		return c.admittedHook()
	}
	return c.admitted.Load()
}

// Stats is a snapshot of a policy's counters, for reports and tests.
type Stats struct {
	State    string
	Admitted uint64
	// Rejected counts rejections by reason.
	Rejected map[string]uint64
	// Transitions counts state transitions by "from→to".
	Transitions map[string]uint64
}

// Stats returns a snapshot of the policy's counters.
func (c *core) Stats() Stats {
	s := Stats{State: c.State(), Admitted: c.admittedCount(), Rejected: map[string]uint64{}, Transitions: map[string]uint64{}}
	for i, r := range c.reasons {
		if n := c.rejected[i].Load(); n > 0 {
			s.Rejected[r] = n
		}
	}
	c.mu.Lock()
	for k, n := range c.transitions {
		s.Transitions[c.states[k[0]]+"→"+c.states[k[1]]] = n
	}
	c.mu.Unlock()
	return s
}

// quietPeriod is how long a limiter must go without rejecting before it
// reports itself passing again: long enough that a limiter at its limit
// does not flap between states on every call.
const quietPeriod = time.Second

// Limiter states, shared by the policies that either pass or limit.
const (
	passing int32 = iota
	limiting
)

// pressure is the two-state machine of the limiters: limiting from the
// first rejection until a quiet period passes without one.
type pressure struct {
	lastReject atomic.Int64
	quiet      time.Duration // 0 means quietPeriod
}

func (p *pressure) quietFor() int64 {
	if p.quiet > 0 {
		return int64(p.quiet)
	}
	return int64(quietPeriod)
}

func (p *pressure) onReject(c *core, now int64) {
	p.lastReject.Store(now)
	if c.state.Load() == passing {
		c.mu.Lock()
		if c.state.Load() == passing {
			c.transition(passing, limiting, now)
		}
		c.mu.Unlock()
	}
}

// onAdmit reads the clock, unless given a reading (a now that is not
// negative), only while limiting.
func (p *pressure) onAdmit(c *core, now int64) {
	if c.state.Load() == limiting {
		p.admitLimiting(c, now)
	}
}

func (p *pressure) admitLimiting(c *core, now int64) {
	now = c.clk.or(now)
	if now-p.lastReject.Load() < p.quietFor() {
		return
	}
	c.mu.Lock()
	if c.state.Load() == limiting && now-p.lastReject.Load() >= p.quietFor() {
		c.transition(limiting, passing, now)
	}
	c.mu.Unlock()
}

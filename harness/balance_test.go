package harness_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
)

// stepClock is a guard.Clock the test moves by hand, read by proxies from
// their own goroutines.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func newStepClock() *stepClock { return &stepClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// transitions records what an Observer hears, as "addr: from → to @offset".
type transitions struct {
	mu    sync.Mutex
	start time.Time
	got   []string
}

func (tr *transitions) Transition(policy, from, to string, at time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, fmt.Sprintf("%s: %s → %s @%v", policy, from, to, at.Sub(tr.start)))
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.got...)
}

func upstreamURLs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://10.0.0.%d:80", i+1)
	}
	return out
}

func newTestBalancer(t *testing.T, n int, cfg harness.EjectionConfig) (*harness.Balancer, *stepClock, *transitions) {
	t.Helper()
	clk := newStepClock()
	tr := &transitions{start: clk.Now()}
	b, err := harness.NewBalancer(upstreamURLs(n), cfg, guard.Options{Clock: clk, Seed: 42, Observer: tr})
	if err != nil {
		t.Fatal(err)
	}
	return b, clk, tr
}

// load gives an upstream a latency average and requests in flight.
func load(b *harness.Balancer, u *harness.Upstream, latency time.Duration, inFlight int) {
	b.Observe(u, harness.OutcomeSuccess, latency)
	for range inFlight {
		b.Begin(u)
	}
}

// shares picks n times and returns each upstream's share of the picks.
func shares(b *harness.Balancer, n int) map[string]float64 {
	count := map[string]int{}
	for range n {
		count[b.Pick().Addr()]++
	}
	out := map[string]float64{}
	for _, u := range b.Upstreams() {
		out[u.Addr()] = float64(count[u.Addr()]) / float64(n)
	}
	return out
}

// TestBalancer_Pick checks power of two choices against its expected
// shares: with distinct costs, the upstream of rank r (0 the cheapest) out
// of n wins when it is drawn with a costlier one, with probability
// 2(n−1−r) / (n(n−1)); the costliest is never picked. Draws are seeded, so
// the shares are the same on every run; the tolerance only allows for the
// finite sample.
func TestBalancer_Pick(t *testing.T) {
	const picks = 20000
	tests := []struct {
		name string
		n    int
		// setup loads the upstreams, given in order.
		setup func(b *harness.Balancer, us []*harness.Upstream)
		want  []float64
	}{
		{
			name:  "equal costs spread evenly",
			n:     4,
			setup: func(b *harness.Balancer, us []*harness.Upstream) {},
			want:  []float64{0.25, 0.25, 0.25, 0.25},
		},
		{
			name: "in flight ranks equal latencies",
			n:    4,
			setup: func(b *harness.Balancer, us []*harness.Upstream) {
				for i, u := range us {
					load(b, u, 10*time.Millisecond, i)
				}
			},
			want: []float64{3.0 / 6, 2.0 / 6, 1.0 / 6, 0},
		},
		{
			name: "latency ranks equal loads",
			n:    3,
			setup: func(b *harness.Balancer, us []*harness.Upstream) {
				load(b, us[0], 50*time.Millisecond, 1)
				load(b, us[1], time.Millisecond, 1)
				load(b, us[2], 5*time.Millisecond, 1)
			},
			want: []float64{0, 2.0 / 3, 1.0 / 3},
		},
		{
			name: "a fast upstream with a queue loses to a slower idle one",
			n:    2,
			setup: func(b *harness.Balancer, us []*harness.Upstream) {
				load(b, us[0], time.Millisecond, 9) // cost 10ms
				load(b, us[1], 4*time.Millisecond, 0)
			},
			want: []float64{0, 1},
		},
		{
			name: "an upstream not yet heard from gets requests while it has none in flight",
			n:    2,
			setup: func(b *harness.Balancer, us []*harness.Upstream) {
				load(b, us[0], time.Millisecond, 0)
			},
			want: []float64{0, 1},
		},
		{
			name: "but no pile of them before its first answer",
			n:    2,
			setup: func(b *harness.Balancer, us []*harness.Upstream) {
				load(b, us[0], time.Second, 50)
				b.Begin(us[1])
			},
			want: []float64{1, 0},
		},
		{
			name: "an upstream failing fast draws nothing from a healthy one",
			n:    2,
			setup: func(b *harness.Balancer, us []*harness.Upstream) {
				load(b, us[0], 10*time.Millisecond, 0)
				b.Observe(us[1], harness.OutcomeError, time.Microsecond)
			},
			want: []float64{1, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _ := newTestBalancer(t, tt.n, harness.EjectionConfig{})
			tt.setup(b, b.Upstreams())
			got := shares(b, picks)
			for i, u := range b.Upstreams() {
				if math.Abs(got[u.Addr()]-tt.want[i]) > 0.02 {
					t.Errorf("%s got %.3f of the picks, want %.3f ± 0.02 (all: %v)", u.Addr(), got[u.Addr()], tt.want[i], got)
				}
			}
		})
	}
}

func TestBalancer_PickIsSeeded(t *testing.T) {
	seq := func() string {
		b, err := harness.NewBalancer(upstreamURLs(5), harness.EjectionConfig{}, guard.Options{Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		var s strings.Builder
		for range 50 {
			s.WriteString(b.Pick().Addr()[len("http://10.0.0."):][:1])
		}
		return s.String()
	}
	if a, b := seq(), seq(); a != b {
		t.Errorf("the same seed drew %s and %s", a, b)
	}
}

// TestBalancer_Latency checks the average's arithmetic: the first sample
// sets it, a higher one replaces it, a lower one after Δt weighs
// 1 − e^(−Δt/EWMADecay), and an upstream with nothing in flight decays
// towards zero at the same pace.
func TestBalancer_Latency(t *testing.T) {
	tau := float64(harness.EWMADecay)
	tests := []struct {
		name string
		// steps observe samples and move the clock.
		steps    func(b *harness.Balancer, u *harness.Upstream, clk *stepClock)
		inFlight int
		want     float64 // nanoseconds
	}{
		{
			name: "the first sample",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 40*time.Millisecond)
			},
			want: 40e6,
		},
		{
			name: "a higher sample replaces the average",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 10*time.Millisecond)
				clk.Advance(time.Second)
				b.Observe(u, harness.OutcomeSuccess, 90*time.Millisecond)
			},
			want: 90e6,
		},
		{
			name: "a lower sample weighs by the time since the last",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 100*time.Millisecond)
				clk.Advance(2 * time.Second)
				b.Begin(u) // keeps the average from decaying while read
				b.Observe(u, harness.OutcomeSuccess, 20*time.Millisecond)
			},
			inFlight: 1,
			want: func() float64 {
				w := math.Exp(-float64(2*time.Second) / tau)
				return 100e6*w + 20e6*(1-w)
			}(),
		},
		{
			name: "samples in the same instant do not move it down",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 100*time.Millisecond)
				b.Observe(u, harness.OutcomeSuccess, time.Millisecond)
			},
			want: 100e6,
		},
		{
			name: "an idle upstream decays",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 100*time.Millisecond)
				clk.Advance(5 * time.Second)
			},
			want: 100e6 * math.Exp(-float64(5*time.Second)/tau),
		},
		{
			name: "a busy one does not",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 100*time.Millisecond)
				b.Begin(u)
				clk.Advance(5 * time.Second)
			},
			inFlight: 1,
			want:     100e6,
		},
		{
			name: "a timeout counts as a sample",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, time.Millisecond)
				b.Observe(u, harness.OutcomeTimeout, 500*time.Millisecond)
			},
			want: 500e6,
		},
		{
			name: "a first failure sets it to the penalty",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeError, time.Microsecond)
			},
			want: float64(harness.FailurePenalty),
		},
		{
			name: "a later fast failure weighs in as the penalty, by time",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 100*time.Millisecond)
				clk.Advance(2 * time.Second)
				b.Begin(u)
				b.Observe(u, harness.Outcome5xx, time.Microsecond)
			},
			inFlight: 1,
			want: func() float64 {
				w := math.Exp(-float64(2*time.Second) / tau)
				return 100e6*w + float64(harness.FailurePenalty)*(1-w)
			}(),
		},
		{
			name: "a slower failure as it took",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.Outcome5xx, 3*time.Second)
			},
			want: 3e9,
		},
		{
			name: "cancellations are no sample",
			steps: func(b *harness.Balancer, u *harness.Upstream, clk *stepClock) {
				b.Observe(u, harness.OutcomeSuccess, 100*time.Millisecond)
				b.Observe(u, harness.OutcomeCanceled, time.Microsecond)
			},
			want: 100e6,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk, _ := newTestBalancer(t, 1, harness.EjectionConfig{})
			u := b.Upstreams()[0]
			tt.steps(b, u, clk)
			s := b.Stats()[0]
			if s.InFlight != int64(tt.inFlight) {
				t.Errorf("in flight %d, want %d", s.InFlight, tt.inFlight)
			}
			if got := float64(s.Latency); math.Abs(got-tt.want) > 1 {
				t.Errorf("latency %v, want %v", s.Latency, time.Duration(tt.want))
			}
		})
	}
}

var ejection = harness.EjectionConfig{ConsecutiveFailures: 3, BaseTime: 10 * time.Second, MaxTime: 25 * time.Second, MaxPercent: 50}

// fail observes n failures of u.
func fail(b *harness.Balancer, u *harness.Upstream, n int) {
	for range n {
		b.Observe(u, harness.Outcome5xx, time.Millisecond)
	}
}

func ejected(b *harness.Balancer) string {
	var out []string
	for _, s := range b.Stats() {
		if s.Ejected {
			out = append(out, s.Addr)
		}
	}
	return strings.Join(out, ",")
}

func TestBalancer_Ejection(t *testing.T) {
	a, b1, c := "http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80"
	tests := []struct {
		name string
		n    int
		cfg  harness.EjectionConfig
		// run drives the balancer; want is what is ejected after it and
		// events what the Observer heard.
		run    func(b *harness.Balancer, clk *stepClock)
		want   string
		events []string
	}{
		{
			name: "ejected after the configured failures in a row",
			n:    4, cfg: ejection,
			run:    func(b *harness.Balancer, clk *stepClock) { fail(b, b.Upstreams()[0], 3) },
			want:   a,
			events: []string{a + ": healthy → ejected @0s"},
		},
		{
			name: "one failure short stays",
			n:    4, cfg: ejection,
			run:  func(b *harness.Balancer, clk *stepClock) { fail(b, b.Upstreams()[0], 2) },
			want: "",
		},
		{
			name: "a success resets the count",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				u := b.Upstreams()[0]
				fail(b, u, 2)
				b.Observe(u, harness.OutcomeSuccess, time.Millisecond)
				fail(b, u, 2)
			},
			want: "",
		},
		{
			name: "transport errors and timeouts count, cancellations do not",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				u := b.Upstreams()[1]
				b.Observe(u, harness.OutcomeError, 0)
				b.Observe(u, harness.OutcomeCanceled, 0)
				b.Observe(u, harness.OutcomeTimeout, time.Second)
				b.Observe(u, harness.OutcomeCanceled, 0)
				b.Observe(u, harness.OutcomeError, 0)
			},
			want:   b1,
			events: []string{b1 + ": healthy → ejected @0s"},
		},
		{
			name: "back after base_time",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				fail(b, b.Upstreams()[0], 3)
				clk.Advance(10*time.Second - 1)
				b.Pick()
				clk.Advance(1)
			},
			want:   "",
			events: []string{a + ": healthy → ejected @0s", a + ": ejected → healthy @10s"},
		},
		{
			name: "the return is timed when it was due, whenever it is noticed",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				clk.Advance(time.Second)
				fail(b, b.Upstreams()[0], 3)
				clk.Advance(time.Minute)
			},
			want:   "",
			events: []string{a + ": healthy → ejected @1s", a + ": ejected → healthy @11s"},
		},
		{
			name: "ejected again as it returns: twice as long, then capped at max_time",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				u := b.Upstreams()[0]
				for _, out := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second} {
					fail(b, u, 3)
					clk.Advance(out)
				}
				fail(b, u, 3)
			},
			want: a,
			events: []string{
				a + ": healthy → ejected @0s", a + ": ejected → healthy @10s",
				a + ": healthy → ejected @10s", a + ": ejected → healthy @30s",
				a + ": healthy → ejected @30s", a + ": ejected → healthy @55s",
				a + ": healthy → ejected @55s",
			},
		},
		{
			name: "the count drops by one per base_time in use",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				u := b.Upstreams()[0]
				fail(b, u, 3) // out 10s
				clk.Advance(10 * time.Second)
				fail(b, u, 3) // out 20s
				clk.Advance(20*time.Second + 10*time.Second)
				fail(b, u, 3) // one base_time back in use: out 20s again, not 25s
			},
			want: a,
			events: []string{
				a + ": healthy → ejected @0s", a + ": ejected → healthy @10s",
				a + ": healthy → ejected @10s", a + ": ejected → healthy @30s",
				a + ": healthy → ejected @40s",
			},
		},
		{
			name: "never more than max_percent out",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				for _, u := range b.Upstreams() {
					fail(b, u, 3)
				}
			},
			want:   a + "," + b1,
			events: []string{a + ": healthy → ejected @0s", b1 + ": healthy → ejected @0s"},
		},
		{
			name: "a refused ejection happens at the next failure once there is room",
			n:    4, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				us := b.Upstreams()
				fail(b, us[0], 3)
				clk.Advance(5 * time.Second)
				fail(b, us[1], 3)
				fail(b, us[2], 3) // refused: two of four are out
				clk.Advance(5 * time.Second)
				fail(b, us[2], 1) // us[0] is back
			},
			want: b1 + "," + c,
			events: []string{
				a + ": healthy → ejected @0s", b1 + ": healthy → ejected @5s",
				a + ": ejected → healthy @10s", c + ": healthy → ejected @10s",
			},
		},
		{
			name: "max_percent rounds down: one of three at 50%",
			n:    3, cfg: ejection,
			run: func(b *harness.Balancer, clk *stepClock) {
				for _, u := range b.Upstreams() {
					fail(b, u, 3)
				}
			},
			want:   a,
			events: []string{a + ": healthy → ejected @0s"},
		},
		{
			name: "a lone upstream is never ejected at 50%",
			n:    1, cfg: ejection,
			run:  func(b *harness.Balancer, clk *stepClock) { fail(b, b.Upstreams()[0], 10) },
			want: "",
		},
		{
			name: "consecutive_failures 0 never ejects",
			n:    4, cfg: harness.EjectionConfig{MaxPercent: 100},
			run:  func(b *harness.Balancer, clk *stepClock) { fail(b, b.Upstreams()[0], 100) },
			want: "",
		},
		{
			name: "max_percent 100 ejects them all",
			n:    2, cfg: harness.EjectionConfig{ConsecutiveFailures: 1, BaseTime: time.Second, MaxTime: time.Second, MaxPercent: 100},
			run: func(b *harness.Balancer, clk *stepClock) {
				fail(b, b.Upstreams()[0], 1)
				fail(b, b.Upstreams()[1], 1)
			},
			want:   a + "," + b1,
			events: []string{a + ": healthy → ejected @0s", b1 + ": healthy → ejected @0s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk, tr := newTestBalancer(t, tt.n, tt.cfg)
			tt.run(b, clk)
			if got := ejected(b); got != tt.want {
				t.Errorf("ejected %q, want %q", got, tt.want)
			}
			if got := tr.list(); strings.Join(got, "\n") != strings.Join(tt.events, "\n") {
				t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.events, "\n  "))
			}
		})
	}
}

func TestBalancer_PickSkipsEjected(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		cfg    harness.EjectionConfig
		failed []int
		want   []float64 // shares
	}{
		{"an ejected upstream gets nothing", 4, ejection, []int{0}, []float64{0, 1.0 / 3, 1.0 / 3, 1.0 / 3}},
		{"two of two left: both", 4, ejection, []int{0, 1}, []float64{0, 0, 0.5, 0.5}},
		{
			"all ejected: picks among all", 2,
			harness.EjectionConfig{ConsecutiveFailures: 1, BaseTime: time.Second, MaxTime: time.Second, MaxPercent: 100},
			[]int{0, 1}, []float64{0.5, 0.5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, _ := newTestBalancer(t, tt.n, tt.cfg)
			for _, i := range tt.failed {
				fail(b, b.Upstreams()[i], 3)
			}
			got := shares(b, 20000)
			for i, u := range b.Upstreams() {
				if math.Abs(got[u.Addr()]-tt.want[i]) > 0.02 {
					t.Errorf("%s got %.3f of the picks, want %.3f ± 0.02", u.Addr(), got[u.Addr()], tt.want[i])
				}
			}
		})
	}
}

func TestNewBalancer_Errors(t *testing.T) {
	tests := []struct {
		name      string
		upstreams []string
		cfg       harness.EjectionConfig
		want      string
	}{
		{"none", nil, harness.EjectionConfig{}, "no upstreams"},
		{"not a URL", []string{"http://a:1", "a:1"}, harness.EjectionConfig{}, `upstream "a:1": not a URL with a host`},
		{"twice", []string{"http://a:1", "http://a:1"}, harness.EjectionConfig{}, `"http://a:1" is listed twice`},
		{"no base time", []string{"http://a:1"}, harness.EjectionConfig{ConsecutiveFailures: 5, MaxPercent: 50}, "ejection.base_time: must be above zero"},
		{"max below base", []string{"http://a:1"}, harness.EjectionConfig{ConsecutiveFailures: 5, BaseTime: time.Minute, MaxTime: time.Second}, "ejection.max_time: 1s is below base_time 1m0s"},
		{"negative failures", []string{"http://a:1"}, harness.EjectionConfig{ConsecutiveFailures: -1}, "ejection.consecutive_failures: must not be negative"},
		{"percent above 100", []string{"http://a:1"}, harness.EjectionConfig{MaxPercent: 101}, "ejection.max_percent: must be 0..100%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := harness.NewBalancer(tt.upstreams, tt.cfg, guard.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewBalancer error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestOutcome_String(t *testing.T) {
	for o, want := range []string{"success", "5xx", "error", "timeout", "canceled"} {
		if got := harness.Outcome(o).String(); got != want {
			t.Errorf("Outcome(%d) = %q, want %q", o, got, want)
		}
	}
}

// BenchmarkBalancer_Pick measures the choice alone, as each proxied
// request makes it, with every upstream carrying a latency average.
func BenchmarkBalancer_Pick(b *testing.B) {
	for _, n := range []int{2, 3, 10} {
		bal, err := harness.NewBalancer(upstreamURLs(n), harness.DefaultBalanceConfig().Ejection, guard.Options{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		for i, u := range bal.Upstreams() {
			bal.Observe(u, harness.OutcomeSuccess, time.Duration(i+1)*time.Millisecond)
		}
		b.Run(fmt.Sprintf("upstreams=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u := bal.Pick()
				bal.Begin(u)
				bal.End(u)
			}
		})
		b.Run(fmt.Sprintf("upstreams=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u := bal.Pick()
					bal.Begin(u)
					bal.End(u)
				}
			})
		})
	}
}

// TestBalancer_FailurePenaltyWhereEjectionCannotAct: failures leave the
// latency average alone while ejection can take the upstream out, and
// count as a 1 s answer once it cannot — max_percent has as many out as
// it allows — so a second dead upstream does not draw the traffic.
func TestBalancer_FailurePenaltyWhereEjectionCannotAct(t *testing.T) {
	b, _, _ := newTestBalancer(t, 3, ejection) // at most one of three out
	us := b.Upstreams()
	load(b, us[0], 10*time.Millisecond, 0)
	b.Observe(us[1], harness.Outcome5xx, time.Microsecond)
	if got := b.Stats()[1].Latency; got != 0 {
		t.Errorf("latency after a failure ejection can act on: %v, want none", got)
	}
	fail(b, us[1], 2)
	fail(b, us[2], 1)
	st := b.Stats()
	if !st[1].Ejected || st[2].Ejected {
		t.Fatalf("ejected %q, want the first failing upstream only", ejected(b))
	}
	if st[2].Latency != harness.FailurePenalty {
		t.Errorf("latency of a failing upstream max_percent keeps in: %v, want %v", st[2].Latency, harness.FailurePenalty)
	}
	if got := shares(b, 20000); got[us[2].Addr()] > 0.01 {
		t.Errorf("the failing upstream left in got %.3f of the picks, want almost none", got[us[2].Addr()])
	}
}

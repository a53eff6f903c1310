package harness

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/quantity"
)

// Defaults of BalanceConfig, as a scenario gets them for the keys it
// leaves out.
const (
	// DefaultConsecutiveFailures is how many failures in a row eject an
	// upstream: enough that a few unlucky requests do not.
	DefaultConsecutiveFailures = 5
	// DefaultEjectionBaseTime is how long a first ejection lasts.
	DefaultEjectionBaseTime = 30 * time.Second
	// DefaultEjectionMaxTime caps the ejection time of an upstream that
	// keeps failing.
	DefaultEjectionMaxTime = 5 * time.Minute
	// DefaultMaxEjectionPercent keeps at least half of the upstreams in
	// use, so that a fault shared by all of them cannot eject them all.
	DefaultMaxEjectionPercent = 50
	// DefaultIdleTimeout closes upstream connections idle this long, as
	// the proxy always has.
	DefaultIdleTimeout = 90 * time.Second
)

// EWMADecay is the time constant of an upstream's latency average: a
// sample's weight against the average is 1 − e^(−Δt/EWMADecay), Δt the
// time since the previous sample, so the average spans about this long
// whatever the request rate. An upstream with nothing in flight decays
// towards zero at the same pace, which sends it a request now and then:
// an upstream that was slow once is not shunned for ever.
const EWMADecay = 10 * time.Second

// BalanceConfig configures a proxy's upstream connections and, when it has
// several upstreams, how it sets failing ones aside. It is plain data: the
// proxy takes it as given, and DefaultBalanceConfig is what a scenario
// gets for the keys it leaves out.
type BalanceConfig struct {
	Ejection EjectionConfig `yaml:"ejection"`
	Pool     PoolConfig     `yaml:"pool"`
}

// EjectionConfig is passive outlier ejection: the proxy watches the answers
// of each upstream and stops sending requests to one that failed
// ConsecutiveFailures times in a row, for a while, without health checks of
// its own. A failure is a transport error, an attempt that ran out of time,
// or a 5xx status; a client that went away (or a hedge that lost) is
// neither failure nor success.
type EjectionConfig struct {
	// ConsecutiveFailures ejects an upstream after this many failures in
	// a row; 0 never ejects.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// BaseTime is how long an ejection lasts; an upstream ejected again
	// soon after it returned stays out longer: n × BaseTime for the n-th
	// ejection in a row, at most MaxTime. The count n drops by one for
	// every BaseTime the upstream stays in use.
	BaseTime time.Duration `yaml:"base_time"`
	MaxTime  time.Duration `yaml:"max_time"`
	// MaxPercent bounds how many upstreams may be out at once:
	// floor(upstreams × MaxPercent / 100). A failure that would eject one
	// more leaves it in use; its next failure tries again. 0 never ejects.
	MaxPercent quantity.Percent `yaml:"max_percent"`
}

// PoolConfig bounds the proxy's connections to each upstream host.
type PoolConfig struct {
	// MaxConns caps the connections to one upstream, in use or idle
	// (http.Transport's MaxConnsPerHost); a request beyond it waits for
	// one to free up. 0 sets no cap.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes a connection idle this long; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxLifetime retires connections older than this, so that traffic
	// follows an upstream that is scaled or moved behind one address. A
	// connection past its lifetime is never reused: the request that
	// would reuse it goes out on it with Connection: close (HTTP/1.1), or
	// marks it not to be reused (HTTP/2), so it closes once that request
	// is done. An idle one past its lifetime closes at IdleTimeout at the
	// latest. 0 sets no lifetime.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// DefaultBalanceConfig ejects after 5 failures in a row for 30s, growing to
// 5m, at most half of the upstreams at once; closes idle connections after
// 90s; and caps neither connections nor their lifetime.
func DefaultBalanceConfig() BalanceConfig {
	return BalanceConfig{
		Ejection: EjectionConfig{
			ConsecutiveFailures: DefaultConsecutiveFailures,
			BaseTime:            DefaultEjectionBaseTime,
			MaxTime:             DefaultEjectionMaxTime,
			MaxPercent:          DefaultMaxEjectionPercent,
		},
		Pool: PoolConfig{IdleTimeout: DefaultIdleTimeout},
	}
}

// Check reports each impossible value by its YAML key, as guard configs do.
func (c *BalanceConfig) Check(problem func(field, msg string)) {
	e := c.Ejection
	if e.ConsecutiveFailures < 0 {
		problem("ejection.consecutive_failures", "must not be negative (0 never ejects)")
	}
	if e.ConsecutiveFailures > 0 {
		if e.BaseTime <= 0 {
			problem("ejection.base_time", "must be above zero, e.g. 30s")
		} else if e.MaxTime < e.BaseTime {
			problem("ejection.max_time", fmt.Sprintf("%v is below base_time %v", e.MaxTime, e.BaseTime))
		}
	}
	if p := float64(e.MaxPercent); math.IsNaN(p) || p < 0 || p > 100 {
		problem("ejection.max_percent", "must be 0..100%")
	}
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"pool.max_conns", int64(c.Pool.MaxConns)},
		{"pool.idle_timeout", int64(c.Pool.IdleTimeout)},
		{"pool.max_lifetime", int64(c.Pool.MaxLifetime)},
	} {
		if f.v < 0 {
			problem(f.key, "must not be negative (0 means no limit, or the default)")
		}
	}
}

// Upstream states, as the Observer hears them.
const (
	UpstreamHealthy = "healthy"
	UpstreamEjected = "ejected"
)

// Outcome is how one request to an upstream went, as the Balancer learns
// it at the response's headers.
type Outcome uint8

// Outcomes.
const (
	// OutcomeSuccess is a response below 500.
	OutcomeSuccess Outcome = iota
	// Outcome5xx is a response of 500 or above.
	Outcome5xx
	// OutcomeError is a transport error: refused, reset, unreachable.
	OutcomeError
	// OutcomeTimeout is an attempt whose deadline passed.
	OutcomeTimeout
	// OutcomeCanceled is a request its client gave up on, or a hedge
	// that lost: it says nothing about the upstream.
	OutcomeCanceled
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"success", "5xx", "error", "timeout", "canceled"}

// String is the outcome's metric label.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Upstream is one upstream of a Balancer.
type Upstream struct {
	addr string
	url  *url.URL

	inFlight atomic.Int64
	// ewma is the latency average in nanoseconds as float64 bits, 0 until
	// the first sample; last is the balancer time of that sample.
	ewma      atomic.Uint64
	last      atomic.Int64
	outcomes  [numOutcomes]atomic.Uint64
	ejections atomic.Uint64

	mu    sync.Mutex // orders samples and failures
	fails int

	// Guarded by the Balancer's mu.
	ejected  bool
	until    int64 // when an ejection ends
	streak   int   // ejections in a row
	returned int64 // when the last ejection ended
}

// Addr is the upstream as configured.
func (u *Upstream) Addr() string { return u.addr }

// URL is the upstream's base URL.
func (u *Upstream) URL() *url.URL { return u.url }

// unsampledPenalty is the latency an upstream that has not answered yet
// is taken to have per request in flight: it gets requests while it has
// none in flight, and no pile of them before its first answer says how
// fast it is.
const unsampledPenalty = float64(time.Hour)

// cost is what power-of-two-choices compares: the latency average times
// the requests in flight, plus one.
func (u *Upstream) cost(now int64) float64 {
	in := u.inFlight.Load()
	e := math.Float64frombits(u.ewma.Load())
	if e == 0 {
		return unsampledPenalty * float64(in)
	}
	if in == 0 {
		e = decay(e, now-u.last.Load())
	}
	return e * float64(in+1)
}

// decay ages an average by dt nanoseconds without samples.
func decay(e float64, dt int64) float64 {
	if dt <= 0 {
		return e
	}
	return e * math.Exp(-float64(dt)/float64(EWMADecay))
}

// sample folds a latency into the average. With peak set the average is
// peak-sensitive: a sample above it replaces it, so a slowdown shows at
// once. Other samples weigh 1 − e^(−Δt/EWMADecay); the first sets it.
// Call with u.mu held.
func (u *Upstream) sample(now int64, latency time.Duration, peak bool) {
	x := math.Max(float64(latency), 1) // 0 means no sample
	e := math.Float64frombits(u.ewma.Load())
	if e != 0 && (x < e || !peak) {
		w := math.Exp(-float64(max(now-u.last.Load(), 0)) / float64(EWMADecay))
		x = e*w + x*(1-w)
	}
	u.ewma.Store(math.Float64bits(x))
	u.last.Store(now)
}

// Balancer spreads requests over several upstreams by power of two
// choices: it draws two upstreams at random and takes the one with the
// lower latency average × (requests in flight + 1), which sends little to
// a slow or overloaded upstream without the herding of always taking the
// least loaded. It ejects an upstream after consecutive failures (see
// EjectionConfig) and takes it back when its time is up; when every
// upstream is out it picks among all of them.
//
// A Balancer starts no goroutines: ejections end on the first Pick or
// Stats after their time, and the Observer hears the return timed when it
// was due. It is safe for concurrent use; Pick takes no lock unless an
// ejection is due to end.
type Balancer struct {
	all     []*Upstream
	healthy atomic.Pointer[[]*Upstream] // all but the ejected, immutable
	cfg     EjectionConfig
	clk     balanceClock
	rng     splitmix
	obs     guard.Observer

	nextReturn atomic.Int64 // the earliest end of an ejection
	mu         sync.Mutex
	nEjected   int
	maxEjected int
}

// NewBalancer returns a balancer over upstreams, base URLs. Options'
// Clock times ejections and latency averages, Seed makes the draws
// reproducible, and Observer hears each upstream go from healthy to
// ejected and back, named by its address.
func NewBalancer(upstreams []string, cfg EjectionConfig, o guard.Options) (*Balancer, error) {
	if len(upstreams) == 0 {
		return nil, errors.New("balancer: no upstreams")
	}
	var problems []error
	(&BalanceConfig{Ejection: cfg}).Check(func(field, msg string) {
		problems = append(problems, fmt.Errorf("balance %s: %s", field, msg))
	})
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	b := &Balancer{cfg: cfg, clk: newBalanceClock(o.Clock), obs: o.Observer}
	b.rng.seed(o.Seed, "balancer")
	seen := map[string]bool{}
	for _, s := range upstreams {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("proxy upstream %q: not a URL with a host", s)
		}
		if seen[s] {
			return nil, fmt.Errorf("proxy upstream %q is listed twice", s)
		}
		seen[s] = true
		b.all = append(b.all, &Upstream{addr: s, url: u})
	}
	if cfg.ConsecutiveFailures > 0 {
		b.maxEjected = int(math.Floor(float64(len(b.all)) * cfg.MaxPercent.Fraction()))
	}
	b.healthy.Store(&b.all)
	b.nextReturn.Store(math.MaxInt64)
	return b, nil
}

// Pick chooses the upstream for one request.
func (b *Balancer) Pick() *Upstream {
	now := b.clk.nanos()
	if now >= b.nextReturn.Load() {
		b.mu.Lock()
		b.returnDue(now)
		b.mu.Unlock()
	}
	list := *b.healthy.Load()
	if len(list) == 0 {
		list = b.all
	}
	n := uint64(len(list))
	if n == 1 {
		return list[0]
	}
	r := b.rng.next()
	i, _ := bits.Mul64(r, n)
	j, _ := bits.Mul64(bits.RotateLeft64(r, 32), n-1)
	if j >= i {
		j++
	}
	a, c := list[i], list[j]
	if c.cost(now) < a.cost(now) {
		return c
	}
	return a
}

// Begin counts a request to u in flight until End.
func (b *Balancer) Begin(u *Upstream) { u.inFlight.Add(1) }

// End counts the request Begin counted as done.
func (b *Balancer) End(u *Upstream) { u.inFlight.Add(-1) }

// FailurePenalty is the latency a failed request counts as in its
// upstream's average, when ejection cannot act on it (see Observe).
const FailurePenalty = time.Second

// Observe learns how a request to u went and how long it took to answer.
// Successes and timeouts feed the latency average as they took. Failures
// count towards ejection and a success resets the count.
//
// Where ejection cannot act — it is off, or max_percent has as many
// upstreams out as it allows — a failure also feeds the average, as an
// answer of FailurePenalty (or longer, as it took), so that an upstream
// failing fast, a dead one refusing connections, cannot pass for the
// fastest and draw the traffic. It weighs in by time as a faster answer
// does, so the share of failures shows in proportion: an upstream failing
// now and then draws somewhat less, one failing often far less, one that
// only fails almost nothing; its average decays while idle as any does,
// so it is tried again now and then. Where ejection can act, failures
// leave the average alone: the upstream goes on drawing its share until
// its failures in a row eject it, rather than being shunned for a minute
// after one failure, with its ejection (and the events that tell of it)
// put off as long.
func (b *Balancer) Observe(u *Upstream, o Outcome, latency time.Duration) {
	if o >= numOutcomes {
		return
	}
	u.outcomes[o].Add(1)
	if o == OutcomeCanceled {
		return
	}
	now := b.clk.nanos()
	failed := o != OutcomeSuccess && o != OutcomeTimeout
	penalize := failed && !b.canEject(u)
	u.mu.Lock()
	switch {
	case !failed:
		u.sample(now, latency, true)
	case penalize:
		u.sample(now, max(latency, FailurePenalty), false)
	}
	if o == OutcomeSuccess {
		u.fails = 0
	} else {
		u.fails++
	}
	eject := b.maxEjected > 0 && u.fails >= b.cfg.ConsecutiveFailures
	u.mu.Unlock()
	if eject {
		b.eject(u, now)
	}
}

// canEject reports whether ejection acts on u: u is out already, or the
// max-percent bound has room for it.
func (b *Balancer) canEject(u *Upstream) bool {
	if b.maxEjected == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return u.ejected || b.nEjected < b.maxEjected
}

// eject takes u out of rotation if the max-percent bound allows.
func (b *Balancer) eject(u *Upstream, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.returnDue(now)
	if u.ejected || b.nEjected >= b.maxEjected {
		return
	}
	base, most := int64(b.cfg.BaseTime), int64(b.cfg.MaxTime)
	if u.streak > 0 {
		u.streak = max(0, u.streak-int((now-u.returned)/base))
	}
	u.streak = min(u.streak+1, int((most+base-1)/base))
	u.ejected, u.until = true, now+min(base*int64(u.streak), most)
	b.nEjected++
	u.ejections.Add(1)
	b.rebuild()
	b.nextReturn.Store(min(b.nextReturn.Load(), u.until))
	if b.obs != nil {
		b.obs.Transition(u.addr, UpstreamHealthy, UpstreamEjected, b.clk.at(now))
	}
}

// returnDue ends the ejections whose time is up. Call with b.mu held.
func (b *Balancer) returnDue(now int64) {
	next, changed := int64(math.MaxInt64), false
	for _, u := range b.all {
		if !u.ejected {
			continue
		}
		if u.until > now {
			next = min(next, u.until)
			continue
		}
		u.ejected, u.returned, changed = false, u.until, true
		b.nEjected--
		u.mu.Lock()
		u.fails = 0
		u.mu.Unlock()
		if b.obs != nil {
			b.obs.Transition(u.addr, UpstreamEjected, UpstreamHealthy, b.clk.at(u.until))
		}
	}
	if changed {
		b.rebuild()
	}
	b.nextReturn.Store(next)
}

// rebuild publishes the upstreams in rotation. Call with b.mu held.
func (b *Balancer) rebuild() {
	healthy := make([]*Upstream, 0, len(b.all))
	for _, u := range b.all {
		if !u.ejected {
			healthy = append(healthy, u)
		}
	}
	b.healthy.Store(&healthy)
}

// UpstreamStats is one upstream's state, for tests and metrics.
type UpstreamStats struct {
	Addr     string
	InFlight int64
	// Latency is the average as Pick sees it now; 0 before any sample.
	Latency   time.Duration
	Ejected   bool
	Ejections uint64
	// Requests counts the outcomes observed, by Outcome.
	Requests [numOutcomes]uint64
}

// Stats returns every upstream's state, in the order given, after ending
// the ejections whose time is up.
func (b *Balancer) Stats() []UpstreamStats {
	now := b.clk.nanos()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.returnDue(now)
	out := make([]UpstreamStats, len(b.all))
	for i, u := range b.all {
		s := UpstreamStats{Addr: u.addr, InFlight: u.inFlight.Load(), Ejected: u.ejected, Ejections: u.ejections.Load()}
		if e := math.Float64frombits(u.ewma.Load()); e != 0 {
			if s.InFlight == 0 {
				e = decay(e, now-u.last.Load())
			}
			s.Latency = time.Duration(e)
		}
		for o := range s.Requests {
			s.Requests[o] = u.outcomes[o].Load()
		}
		out[i] = s
	}
	return out
}

// Upstreams are the balancer's upstreams, in the order given.
func (b *Balancer) Upstreams() []*Upstream { return b.all }

// balanceClock gives monotonic nanoseconds since the balancer's start, from
// the runtime or from a guard.Clock.
type balanceClock struct {
	c    guard.Clock
	base time.Time
}

func newBalanceClock(c guard.Clock) balanceClock {
	if c == nil {
		return balanceClock{base: time.Now()}
	}
	return balanceClock{c: c, base: c.Now()}
}

func (k *balanceClock) nanos() int64 {
	if k.c == nil {
		return int64(time.Since(k.base))
	}
	return int64(k.c.Now().Sub(k.base))
}

func (k *balanceClock) at(n int64) time.Time { return k.base.Add(time.Duration(n)) }

// splitmix is a seeded generator safe for concurrent use without a lock:
// a splitmix64 sequence advanced atomically.
type splitmix struct{ state atomic.Uint64 }

func (r *splitmix) seed(seed uint64, name string) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	r.state.Store(seed ^ bits.RotateLeft64(h.Sum64(), 17))
}

func (r *splitmix) next() uint64 {
	z := r.state.Add(0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

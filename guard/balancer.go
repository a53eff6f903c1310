package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resctl/resctl/quantity"
)

// Defaults of EjectionConfig.
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
)

// EWMADecay is the time constant of an upstream's latency average: a
// sample's weight against the average is 1 − e^(−Δt/EWMADecay), Δt the
// time since the previous sample, so the average spans about this long
// whatever the request rate. An upstream with nothing in flight decays
// towards zero at the same pace, which sends it a request now and then:
// an upstream that was slow once is not shunned for ever.
const EWMADecay = 10 * time.Second

// EjectionConfig is passive outlier ejection: a Balancer watches the answers
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

// DefaultEjectionConfig ejects after 5 failures in a row for 30s, growing
// to 5m, at most half of the upstreams at once.
func DefaultEjectionConfig() EjectionConfig {
	return EjectionConfig{
		ConsecutiveFailures: DefaultConsecutiveFailures,
		BaseTime:            DefaultEjectionBaseTime,
		MaxTime:             DefaultEjectionMaxTime,
		MaxPercent:          DefaultMaxEjectionPercent,
	}
}

// Check reports each impossible value by its YAML key.
func (e *EjectionConfig) Check(problem func(field, msg string)) {
	if e.ConsecutiveFailures < 0 {
		problem("consecutive_failures", "must not be negative (0 never ejects)")
	}
	if e.ConsecutiveFailures > 0 {
		if e.BaseTime <= 0 {
			problem("base_time", "must be above zero, e.g. 30s")
		} else if e.MaxTime < e.BaseTime {
			problem("max_time", fmt.Sprintf("%v is below base_time %v", e.MaxTime, e.BaseTime))
		}
	}
	if p := float64(e.MaxPercent); math.IsNaN(p) || p < 0 || p > 100 {
		problem("max_percent", "must be 0..100%")
	}
}

// Upstream states, as the Observer hears them.
const (
	UpstreamHealthy = "healthy"
	UpstreamEjected = "ejected"
)

// UpstreamOutcome is how one request to an upstream went, as the Balancer
// learns it at the response's headers.
type UpstreamOutcome uint8

// Upstream outcomes.
const (
	// UpstreamSuccess is a response below 500.
	UpstreamSuccess UpstreamOutcome = iota
	// Upstream5xx is a response of 500 or above.
	Upstream5xx
	// UpstreamError is a transport error: refused, reset, unreachable.
	UpstreamError
	// UpstreamTimeout is an attempt whose deadline passed.
	UpstreamTimeout
	// UpstreamCanceled is a request its client gave up on, or a hedge
	// that lost: it says nothing about the upstream.
	UpstreamCanceled
	numUpstreamOutcomes
)

var upstreamOutcomeNames = [numUpstreamOutcomes]string{"success", "5xx", "error", "timeout", "canceled"}

// String is the outcome's metric label.
func (o UpstreamOutcome) String() string {
	if o < numUpstreamOutcomes {
		return upstreamOutcomeNames[o]
	}
	return fmt.Sprintf("UpstreamOutcome(%d)", uint8(o))
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
	outcomes  [numUpstreamOutcomes]atomic.Uint64
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
	clk     clock
	rng     *rng
	obs     Observer

	nextReturn atomic.Int64 // the earliest end of an ejection
	mu         sync.Mutex
	nEjected   int
	maxEjected int
}

// NewBalancer returns a balancer over upstreams, base URLs. Options'
// Clock times ejections and latency averages, Seed makes the draws
// reproducible, and Observer hears each upstream go from healthy to
// ejected and back, named by its address.
func NewBalancer(upstreams []string, cfg EjectionConfig, o Options) (*Balancer, error) {
	if len(upstreams) == 0 {
		return nil, errors.New("balancer: no upstreams")
	}
	var problems []error
	cfg.Check(func(field, msg string) {
		problems = append(problems, fmt.Errorf("balance ejection.%s: %s", field, msg))
	})
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	b := &Balancer{cfg: cfg, clk: newClock(o.Clock), rng: newRNG(o.Seed, "balancer"), obs: o.Observer}
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
	r := b.rng.uint64()
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
func (b *Balancer) Observe(u *Upstream, o UpstreamOutcome, latency time.Duration) {
	if o >= numUpstreamOutcomes {
		return
	}
	u.outcomes[o].Add(1)
	if o == UpstreamCanceled {
		return
	}
	now := b.clk.nanos()
	failed := o != UpstreamSuccess && o != UpstreamTimeout
	penalize := failed && !b.canEject(u)
	u.mu.Lock()
	switch {
	case !failed:
		u.sample(now, latency, true)
	case penalize:
		u.sample(now, max(latency, FailurePenalty), false)
	}
	if o == UpstreamSuccess {
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
	Requests [numUpstreamOutcomes]uint64
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

// Elapsed is the time on the balancer's clock since it was made: what a
// connection's age is measured in.
func (b *Balancer) Elapsed() time.Duration { return time.Duration(b.clk.nanos()) }

// Send sends req to u with next and tells the balancer how it went: the
// request counts in flight until its response body is closed, and its
// outcome is observed at the response's headers — a gRPC call's at its
// status, in the headers of a trailers-only answer or in the trailers once
// the body ends. Every attempt a guard sends (retries and hedges) passes
// here once.
func (b *Balancer) Send(next http.RoundTripper, req *http.Request, u *Upstream) (*http.Response, error) {
	b.Begin(u)
	start := time.Now()
	resp, err := next.RoundTrip(req)
	latency := time.Since(start)
	if err != nil {
		b.Observe(u, errorOutcome(req.Context(), err), latency)
		b.End(u)
		return nil, err
	}
	o := UpstreamSuccess
	if resp.StatusCode >= 500 {
		o = Upstream5xx
	}
	body := &inFlightBody{ReadCloser: resp.Body, b: b, u: u}
	switch {
	case resp.StatusCode == http.StatusOK && isGRPC(req):
		if st := resp.Header.Get("Grpc-Status"); st != "" {
			b.Observe(u, grpcUpstreamOutcome(st), latency)
		} else {
			body.judge = func() {
				o := grpcUpstreamOutcome(resp.Trailer.Get("Grpc-Status"))
				if req.Context().Err() != nil {
					o = errorOutcome(req.Context(), req.Context().Err())
				}
				b.Observe(u, o, latency)
			}
		}
	default:
		b.Observe(u, o, latency)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection, which a reverse proxy
		// needs as an io.ReadWriteCloser; it is no request in flight.
		b.End(u)
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// grpcUpstreamOutcome judges a gRPC status as the balancer judges HTTP statuses:
// the codes of a server in trouble (UNAVAILABLE, INTERNAL, UNKNOWN,
// DATA_LOSS) are failures like a 5xx, DEADLINE_EXCEEDED a timeout, the
// rest answers; a call that ended without a status is an error.
func grpcUpstreamOutcome(status string) UpstreamOutcome {
	switch status {
	case "":
		return UpstreamError
	case "14", "13", "2", "15":
		return Upstream5xx
	case "4":
		return UpstreamTimeout
	}
	return UpstreamSuccess
}

// errorOutcome tells a timeout and a request its client gave up on from
// a transport error.
func errorOutcome(ctx context.Context, err error) UpstreamOutcome {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return UpstreamCanceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return UpstreamTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return UpstreamTimeout
	}
	return UpstreamError
}

// inFlightBody ends the request's time in flight when the caller (a reverse
// proxy, a client) is done with the response.
type inFlightBody struct {
	io.ReadCloser
	b    *Balancer
	u    *Upstream
	done atomic.Bool
	// judge, if set, observes the outcome once the body ended: a gRPC
	// call's status comes in its trailers.
	judge func()
}

func (r *inFlightBody) Close() error {
	err := r.ReadCloser.Close()
	if r.done.CompareAndSwap(false, true) {
		if r.judge != nil {
			r.judge()
		}
		r.b.End(r.u)
	}
	return err
}

// Upstream metrics, the proxy's names wherever a Balancer runs. Downstream,
// the proxy's resctl_proxy_requests_total counts what clients sent;
// upstream, resctl_proxy_upstream_requests_total counts each attempt sent
// on, so their ratio is the retry and hedge amplification.
var (
	descUpstreamRequests  = prometheus.NewDesc("resctl_proxy_upstream_requests_total", "Requests the proxy sent upstream — every attempt, retries and hedges included — by upstream and outcome: success, 5xx, error, timeout, canceled.", []string{"upstream", "outcome"}, nil)
	descUpstreamInFlight  = prometheus.NewDesc("resctl_proxy_upstream_in_flight", "Requests to an upstream whose response has not ended.", []string{"upstream"}, nil)
	descUpstreamLatency   = prometheus.NewDesc("resctl_proxy_upstream_latency_ewma_seconds", "An upstream's latency average, as the balancer weighs it.", []string{"upstream"}, nil)
	descUpstreamEjections = prometheus.NewDesc("resctl_proxy_upstream_ejections_total", "Times an upstream was ejected after consecutive failures.", []string{"upstream"}, nil)
	descUpstreamEjected   = prometheus.NewDesc("resctl_proxy_upstream_ejected", "Whether an upstream is ejected now (1) or in use (0).", []string{"upstream"}, nil)
)

// Describe implements prometheus.Collector.
func (b *Balancer) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUpstreamRequests, descUpstreamInFlight, descUpstreamLatency, descUpstreamEjections, descUpstreamEjected} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it also ends the ejections
// whose time is up, so a scrape sees an upstream back when it is due.
func (b *Balancer) Collect(ch chan<- prometheus.Metric) {
	for _, s := range b.Stats() {
		for o, n := range s.Requests {
			ch <- prometheus.MustNewConstMetric(descUpstreamRequests, prometheus.CounterValue, float64(n), s.Addr, UpstreamOutcome(o).String())
		}
		ejected := 0.0
		if s.Ejected {
			ejected = 1
		}
		ch <- prometheus.MustNewConstMetric(descUpstreamInFlight, prometheus.GaugeValue, float64(s.InFlight), s.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamLatency, prometheus.GaugeValue, s.Latency.Seconds(), s.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamEjections, prometheus.CounterValue, float64(s.Ejections), s.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamEjected, prometheus.GaugeValue, ejected, s.Addr)
	}
}

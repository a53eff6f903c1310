package guard

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resctl/resctl/quantity"
)

// HedgeConfig sends a second attempt of a slow request to what follows the
// hedge in its chain, and answers with whichever attempt answers first:
// the other is cancelled. The second attempt leaves after Delay, or, with
// Quantile, after that quantile of the latencies the hedge has observed
// (Delay then only stands in until MinSamples calls are seen). Hedges draw
// on the budget of a retry in the same chain, or on their own Budget.
type HedgeConfig struct {
	Delay    time.Duration    `yaml:"delay"`
	Quantile quantity.Percent `yaml:"quantile"`
	// MinSamples is the calls a quantile needs before it is trusted;
	// Interval how often it is read afresh from the latest calls.
	MinSamples int           `yaml:"min_samples"`
	Interval   time.Duration `yaml:"interval"`
	Budget     BudgetConfig  `yaml:"budget"`
	// Methods are the methods hedged: the idempotent ones by default.
	Methods []string `yaml:"methods"`
	// MaxBody is the largest request body buffered to send twice.
	MaxBody         quantity.Bytes `yaml:"max_body"`
	AttemptHeader   string         `yaml:"attempt_header"`
	RequestIDHeader string         `yaml:"request_id_header"`
}

// DefaultHedgeConfig hedges after the observed p95, within a budget of 10%
// of requests.
func DefaultHedgeConfig() HedgeConfig {
	b := DefaultBudgetConfig()
	b.Ratio = 10
	return HedgeConfig{
		Quantile: 95, MinSamples: 20, Interval: time.Second, Budget: b,
		Methods: slices.Clone(idempotent), MaxBody: 64 << 10,
		AttemptHeader: AttemptHeader, RequestIDHeader: RequestIDHeader,
	}
}

var _ Config = (*HedgeConfig)(nil)

// Kind implements Config.
func (*HedgeConfig) Kind() string { return "hedge" }

// Check implements Config.
func (c *HedgeConfig) Check(problem func(field, msg string)) {
	q := float64(c.Quantile)
	switch {
	case c.Delay < 0:
		problem("delay", "must be at least 0")
	case c.Delay == 0 && q == 0:
		problem("delay", "a hedge needs a delay or a quantile: with neither every request would be sent twice at once")
	}
	if math.IsNaN(q) || q < 0 || q >= 100 {
		problem("quantile", fmt.Sprintf("%v is not a quantile below 100%%, e.g. 95%%", c.Quantile))
	}
	if q > 0 {
		if c.MinSamples < 1 {
			problem("min_samples", "must be at least 1")
		}
		if c.Interval <= 0 {
			problem("interval", "must be above zero, e.g. 1s")
		}
	}
	c.Budget.Check(prefixed("budget", problem))
	checkMethods("methods", c.Methods, problem)
	if c.MaxBody < 0 {
		problem("max_body", "must be at least 0")
	}
}

// Build implements Config.
func (c *HedgeConfig) Build(name string, o Options) (Policy, error) {
	return build(NewHedge(name, *c, o))
}

// Hedge races a second attempt against a slow first one. Its states are
// "passing" and "exhausted" (its budget refused a hedge within the last
// second).
type Hedge struct {
	passive
	pressure
	cfg     HedgeConfig
	bad     classifier
	methods map[string]bool
	own     *budget
	shared  atomic.Pointer[budget]
	ids     requestIDs

	lat       latencyHist
	mu        sync.Mutex
	pending   histSnapshot
	refreshed atomic.Int64
	delay     atomic.Int64 // the current delay; 0 until known

	calls, sent, won, exhausted atomic.Uint64
}

var _ Wrapper = (*Hedge)(nil)

// NewHedge returns a hedge policy.
func NewHedge(name string, c HedgeConfig, o Options) (*Hedge, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	h := &Hedge{cfg: c, bad: newClassifier(DefaultRetryOn()), methods: map[string]bool{}}
	h.init("hedge", name, o, []string{"passing", "exhausted"}, nil, answer{})
	h.ids.rng = newRNG(o.Seed, name+"/id")
	for _, m := range c.Methods {
		h.methods[m] = true
	}
	h.own = newBudget(c.Budget, &h.clk)
	h.delay.Store(int64(c.Delay))
	h.refreshed.Store(h.clk.nanos())
	return h, nil
}

// shareBudget makes the hedge draw on a retry's budget.
func (h *Hedge) shareBudget(b *budget) { h.shared.Store(b) }

func (h *Hedge) budget() (b *budget, own bool) {
	if b := h.shared.Load(); b != nil {
		return b, false
	}
	return h.own, true
}

// Delay is how long the hedge waits before sending a second attempt now;
// 0 while a quantile has too few samples and no delay stands in.
func (h *Hedge) Delay() time.Duration {
	h.refresh(h.clk.nanos())
	return time.Duration(h.delay.Load())
}

// refresh reads the quantile afresh once an interval has passed.
func (h *Hedge) refresh(now int64) {
	if h.cfg.Quantile == 0 {
		return
	}
	last := h.refreshed.Load()
	if now-last < int64(h.cfg.Interval) || !h.refreshed.CompareAndSwap(last, now) {
		return
	}
	snap := h.lat.take()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending.add(&snap)
	if h.pending.total < uint64(h.cfg.MinSamples) {
		return
	}
	q := time.Duration(h.pending.quantile(h.cfg.Quantile.Fraction()))
	h.delay.Store(int64(max(q, h.cfg.Delay)))
	h.pending = histSnapshot{}
}

// WrapHTTP implements Wrapper.
func (h *Hedge) WrapHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, next) })
}

// hedgeState is one hedged request: two attempts racing for the client's
// writer under mu.
type hedgeState struct {
	h       *Hedge
	mu      sync.Mutex
	aw      [2]attemptWriter
	judges  [2]hedgeJudge
	cancel  [2]context.CancelFunc
	start   [2]int64
	winner  int
	running int
	hedged  bool
	done    bool
	hdone   chan struct{}
}

type hedgeJudge struct {
	s *hedgeState
	i int
}

func (h *Hedge) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	h.calls.Add(1)
	b, own := h.budget()
	if own {
		b.request()
	}
	start := h.clk.nanos()
	h.refresh(start)
	delay := time.Duration(h.delay.Load())
	body, ok := []byte(nil), h.methods[r.Method]
	if ok {
		var err error
		if body, ok, err = replayable(r, int64(h.cfg.MaxBody)); err != nil {
			w.WriteHeader(statusClientGone)
			return
		}
	}
	if !ok || delay <= 0 {
		next.ServeHTTP(w, r)
		h.lat.record(h.clk.nanos() - start)
		return
	}
	h.ids.ensure(r.Header, h.cfg.RequestIDHeader)
	setAttempt(r.Header, h.cfg.AttemptHeader, 1)

	s := &hedgeState{h: h, winner: -1, running: 1}
	ctx1, cancel1 := context.WithCancel(r.Context())
	ctx2, cancel2 := context.WithCancel(r.Context())
	defer cancel1()
	defer cancel2()
	s.cancel = [2]context.CancelFunc{cancel1, cancel2}
	r2 := r.Clone(ctx2)
	setAttempt(r2.Header, h.cfg.AttemptHeader, 2)
	withBody(r2, body)
	r1 := r.WithContext(ctx1)
	withBody(r1, body)
	for i := range s.aw {
		s.judges[i] = hedgeJudge{s, i}
		s.aw[i].reset(w, &s.judges[i])
	}
	s.start[0] = start
	stop := h.clk.afterFunc(delay, func() { s.launch(next, r2) })

	next.ServeHTTP(&s.aw[0], r1)
	s.finish(0)
	stop()
	s.mu.Lock()
	s.done = true
	hedged := s.hedged
	s.mu.Unlock()
	if hedged {
		<-s.hdone
	}
}

// launch sends the second attempt, if the first has not answered and the
// budget allows.
func (s *hedgeState) launch(next http.Handler, r2 *http.Request) {
	h := s.h
	s.mu.Lock()
	if s.done || s.winner >= 0 {
		s.mu.Unlock()
		return
	}
	b, _ := h.budget()
	if !b.withdraw() {
		s.mu.Unlock()
		h.exhausted.Add(1)
		h.onReject(&h.core, h.clk.nanos())
		return
	}
	h.onAdmit(&h.core)
	s.hedged, s.running = true, s.running+1
	s.start[1] = h.clk.nanos()
	s.hdone = make(chan struct{})
	s.mu.Unlock()
	h.sent.Add(1)
	go func() {
		defer close(s.hdone)
		next.ServeHTTP(&s.aw[1], r2)
		s.finish(1)
	}()
}

// finish ends attempt i: one that wrote nothing answered 200.
func (s *hedgeState) finish(i int) {
	if s.aw[i].state == undecided {
		s.aw[i].WriteHeader(http.StatusOK)
	}
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
}

// decide implements judge: the first attempt to answer well wins and the
// other is cancelled; a failed answer waits for the other attempt, unless
// it is the last one running.
func (j *hedgeJudge) decide(a *attemptWriter, status int) int {
	s, h := j.s, j.s.h
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.winner >= 0 {
		return 0
	}
	o := classifyAttempt(status, a.own).outcome()
	if h.bad.classify(&o) == failure && s.running > 1 {
		return 0
	}
	s.winner = j.i
	s.cancel[1-j.i]()
	h.lat.record(h.clk.nanos() - s.start[j.i])
	if j.i == 1 {
		h.won.Add(1)
	}
	return status
}

// HedgeStats counts a hedge's work.
type HedgeStats struct {
	// Calls is the requests handed to the hedge; Sent the second
	// attempts it sent, Won those that answered first; BudgetExhausted
	// the hedges the budget refused.
	Calls, Sent, Won, BudgetExhausted uint64
}

// HedgeStats returns the policy's counters.
func (h *Hedge) HedgeStats() HedgeStats {
	return HedgeStats{Calls: h.calls.Load(), Sent: h.sent.Load(), Won: h.won.Load(), BudgetExhausted: h.exhausted.Load()}
}

var (
	descHedges     = prometheus.NewDesc("resctl_guard_hedges_total", "Second attempts a hedge sent, and those that won (answered first).", []string{"policy", "kind", "result"}, nil)
	descHedgeDelay = prometheus.NewDesc("resctl_guard_hedge_delay_seconds", "How long a hedge waits before sending a second attempt.", []string{"policy", "kind"}, nil)
)

func (h *Hedge) collect(ch chan<- prometheus.Metric) {
	s := h.HedgeStats()
	ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(s.Calls), h.name, h.kind)
	ch <- prometheus.MustNewConstMetric(descAttempts, prometheus.CounterValue, float64(s.Calls+s.Sent), h.name, h.kind, "sent")
	ch <- prometheus.MustNewConstMetric(descHedges, prometheus.CounterValue, float64(s.Sent), h.name, h.kind, "sent")
	ch <- prometheus.MustNewConstMetric(descHedges, prometheus.CounterValue, float64(s.Won), h.name, h.kind, "won")
	ch <- prometheus.MustNewConstMetric(descBudget, prometheus.CounterValue, float64(s.BudgetExhausted), h.name, h.kind)
	ch <- prometheus.MustNewConstMetric(descHedgeDelay, prometheus.GaugeValue, time.Duration(h.delay.Load()).Seconds(), h.name, h.kind)
}

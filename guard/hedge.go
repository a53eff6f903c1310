package guard

import (
	"context"
	"fmt"
	"log"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
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
	// Delay is how long after the first attempt the second leaves (until
	// Quantile has its samples, with Quantile set).
	Delay time.Duration `yaml:"delay"`
	// Quantile of the observed latencies after which the second attempt
	// leaves.
	Quantile quantity.Percent `yaml:"quantile"`
	// MinSamples is the calls a quantile needs before it is trusted;
	// Interval how often it is read afresh from the latest calls.
	MinSamples int           `yaml:"min_samples"`
	Interval   time.Duration `yaml:"interval"`
	// Budget bounds the extra attempts, unless a retry in the chain has a
	// budget they share.
	Budget BudgetConfig `yaml:"budget"`
	// Methods are the methods hedged: the idempotent ones by default.
	Methods []string `yaml:"methods"`
	// MaxBody is the largest request body buffered to send twice.
	MaxBody quantity.Bytes `yaml:"max_body"`
	// AttemptHeader carries the attempt's number to the upstream.
	AttemptHeader string `yaml:"attempt_header"`
	// RequestIDHeader carries one id for every attempt of a request, so the
	// upstream can tell duplicates.
	RequestIDHeader string `yaml:"request_id_header"`
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
	methods methodSet
	own     *budget
	shared  atomic.Pointer[budget]
	ids     requestIDs

	lat       latencyHist
	mu        sync.Mutex
	pending   histSnapshot
	refreshed atomic.Int64
	delay     atomic.Int64 // the current delay; 0 until known
	pool      sync.Pool    // of *hedgeState

	calls, sent, won, exhausted atomic.Uint64
}

var _ Wrapper = (*Hedge)(nil)

// NewHedge returns a hedge policy.
func NewHedge(name string, c HedgeConfig, o Options) (*Hedge, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	h := &Hedge{cfg: c, bad: newClassifier(DefaultRetryOn()), methods: newMethodSet(c.Methods)}
	h.init("hedge", name, o, []string{"passing", "exhausted"}, nil, answer{})
	h.ids = newRequestIDs(c.RequestIDHeader, o.Seed, name)
	h.own = newBudget(c.Budget, &h.clk)
	h.delay.Store(int64(c.Delay))
	h.refreshed.Store(h.clk.nanos())
	h.pool.New = h.newState
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

// hedgeState is one hedged request, pooled: two attempts racing for the
// client's writer under mu, the timer that sends the second, and what the
// second is made from if it is sent.
type hedgeState struct {
	h       *Hedge
	w       http.ResponseWriter
	next    http.Handler
	timer   rearmable
	mu      sync.Mutex
	aw      [2]attemptWriter
	judges  [2]hedgeJudge
	ctx     [2]*attemptCtx
	lent    bool // ctx[0] is a timeout's, lent: the timeout ends it
	start   [2]int64
	winner  int
	running int
	fired   bool // the timer's function has run
	hedged  bool
	done    bool
	hdone   chan struct{}
	second  secondRequest
}

type hedgeJudge struct {
	s *hedgeState
	i int
}

func (h *Hedge) newState() any {
	s := &hedgeState{h: h}
	s.judges = [2]hedgeJudge{{s, 0}, {s, 1}}
	s.timer.f = s.launch
	return s
}

func (h *Hedge) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	h.calls.Add(1)
	h.onAdmit(&h.core, -1) // back to passing after a quiet second
	// The clock is read only for what needs it, the hedge's own budget
	// and the latencies of a quantile: it is a good share of the cost.
	var start int64
	b, own := h.budget()
	if own || h.cfg.Quantile > 0 {
		start = h.clk.nanos()
	}
	if own {
		b.request(start)
	}
	h.refresh(start)
	delay := time.Duration(h.delay.Load())
	body, ok := []byte(nil), h.methods.has(r.Method)
	if ok {
		var err error
		if body, ok, err = replayable(r, int64(h.cfg.MaxBody)); err != nil {
			w.WriteHeader(statusClientGone)
			return
		}
	}
	if !ok || delay <= 0 {
		next.ServeHTTP(w, r)
		h.record(start)
		return
	}
	h.ids.ensure(r.Header)
	setAttempt(r.Header, h.cfg.AttemptHeader, 1)

	s := h.pool.Get().(*hedgeState)
	s.w, s.next, s.winner, s.running, s.start[0] = w, next, -1, 1, start
	a := s.first(r, body)
	withBody(&a.req, body)
	s.ctx[0] = a
	s.aw[0].reset(w, &s.judges[0])
	s.fired = false
	h.clk.arm(&s.timer, delay)
	returned := false
	defer func() { s.end(!returned) }()
	next.ServeHTTP(&s.aw[0], &a.req)
	s.finish(0)
	returned = true
}

// end ends the request once the first attempt has returned, or panicked
// (aborted, as http.ReverseProxy does when the client has gone): the timer
// is stopped and the second attempt, if sent, waited for — cancelled first
// when aborted.
func (s *hedgeState) end(aborted bool) {
	stopped := s.timer.disarm()
	s.mu.Lock()
	s.done = true
	hedged := s.hedged
	pending := !stopped && !s.fired
	s.mu.Unlock()
	if hedged {
		if aborted {
			s.ctx[1].cancel(context.Canceled)
		}
		<-s.hdone
	}
	if !s.lent { // a lent attempt is the timeout's to end
		s.ctx[0].cancel(context.Canceled)
	}
	if s.ctx[1] != nil {
		s.ctx[1].cancel(context.Canceled)
	}
	if pending || aborted {
		// Pending: the timer went off as the first attempt ended and its
		// function has yet to run; it will find the request done, and the
		// state is left to it. Aborted: the state is left as it was.
		return
	}
	s.release()
	s.h.pool.Put(s)
}

// first returns the first attempt, having taken what the second is made
// from before the first can change anything. A timeout right before the
// hedge lends its attempt: the first is sent on it and the second is its
// sibling. Otherwise the first is sent on a copy of r, under r's context.
func (s *hedgeState) first(r *http.Request, body []byte) *attemptCtx {
	if a, ok := r.Context().(*attemptCtx); ok {
		if src, ok := a.lend(r); ok {
			s.lent = true
			s.second.take(src, a.parent, a.deadline, body)
			s.second.stamp = a.stamp
			return a
		}
	}
	s.second.take(r, r.Context(), 0, body)
	return newAttempt(r, r.Context(), 0)
}

// launch is the timer's function: it sends the second attempt, if the first
// has not answered and the budget allows.
func (s *hedgeState) launch() {
	h := s.h
	s.mu.Lock()
	s.fired = true
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
	h.onAdmit(&h.core, -1)
	s.hedged, s.running = true, s.running+1
	s.start[1] = h.clk.nanos()
	s.hdone = make(chan struct{})
	a := s.second.build(h.cfg.AttemptHeader)
	s.ctx[1] = a
	s.aw[1].reset(s.w, &s.judges[1])
	s.mu.Unlock()
	h.sent.Add(1)
	go func() {
		defer close(s.hdone)
		defer func() {
			// net/http recovers a handler's panics only in the handler's own
			// goroutine; here one would take the process down. The reverse
			// proxy panics with http.ErrAbortHandler when the client or the
			// upstream goes away mid-response: that attempt failed, as does
			// one that panics for any other reason, which is logged the way
			// net/http logs it.
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					log.Printf("resctl guard: panic in a hedged attempt: %v\n%s", v, debug.Stack())
				}
				if s.aw[1].state == undecided {
					s.aw[1].WriteHeader(http.StatusBadGateway)
				}
				s.mu.Lock()
				s.running--
				s.mu.Unlock()
			}
		}()
		s.next.ServeHTTP(&s.aw[1], &a.req)
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

// release readies the state for another request.
func (s *hedgeState) release() {
	s.aw[0].release()
	if s.hedged {
		s.aw[1].release()
	}
	s.w, s.next, s.ctx, s.hdone = nil, nil, [2]*attemptCtx{}, nil
	s.hedged, s.done, s.lent = false, false, false
	s.second.release()
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
	if c := s.ctx[1-j.i]; c != nil {
		c.cancel(context.Canceled)
	}
	h.record(s.start[j.i])
	if j.i == 1 {
		h.won.Add(1)
	}
	return status
}

// secondRequest is what a hedge's second attempt is made from. It is taken
// before the first attempt starts, since the first may change the request
// (its header, its URL) while it runs, and it is taken into buffers the
// pooled state keeps, so that a hedge that does not fire allocates nothing:
// the request's fields, its URL, and its header's keys and values.
// Request.Clone copies more than that — trailers, forms, transfer
// encodings, path values — and a request that carries any of those is
// cloned at once instead. The second attempt's context is under parent,
// with deadline: the first's parent and deadline.
type secondRequest struct {
	src      *http.Request
	url      url.URL
	keys     []headerKey
	vals     []string
	body     []byte
	clone    *http.Request
	parent   context.Context
	deadline int64    // see attemptCtx.deadline
	stamp    *Timeout // a lending timeout's; see attemptCtx.stamp
}

// headerKey is a header's key and its values, vals[lo:hi]; nil values have
// lo < 0.
type headerKey struct {
	key    string
	lo, hi int
}

// take reads r before the first attempt starts. The first attempt is sent
// on a copy of r (its own, or a timeout's), never on r, so r itself stays
// as it is until the hedge returns.
func (q *secondRequest) take(r *http.Request, parent context.Context, deadline int64, body []byte) {
	q.parent, q.deadline, q.body = parent, deadline, body
	if r.Trailer != nil || r.Form != nil || r.PostForm != nil || r.MultipartForm != nil || r.TransferEncoding != nil || hasPathValues(r) {
		q.clone = r.Clone(r.Context())
		return
	}
	q.src = r
	if r.URL != nil {
		q.url = *r.URL
	}
	for k, vs := range r.Header {
		hk := headerKey{key: k, lo: -1}
		if vs != nil {
			hk.lo = len(q.vals)
			q.vals = append(q.vals, vs...)
			hk.hi = len(q.vals)
		}
		q.keys = append(q.keys, hk)
	}
}

// build returns the second attempt, as r.Clone would have made it when
// take was called, numbered 2.
func (q *secondRequest) build(attemptHeader string) *attemptCtx {
	if q.clone != nil {
		a := newAttempt(q.clone, q.parent, q.deadline)
		q.stampOn(a)
		setAttempt(a.req.Header, attemptHeader, 2)
		withBody(&a.req, q.body)
		return a
	}
	a := newAttempt(q.src, q.parent, q.deadline)
	if a.req.URL != nil {
		u := q.url
		a.req.URL = &u
	}
	if a.req.Header != nil {
		h := make(http.Header, len(q.keys))
		vals := slices.Clone(q.vals)
		for _, k := range q.keys {
			if k.lo < 0 {
				h[k.key] = nil
				continue
			}
			h[k.key] = vals[k.lo:k.hi:k.hi]
		}
		a.req.Header = h
	}
	q.stampOn(a)
	setAttempt(a.req.Header, attemptHeader, 2)
	withBody(&a.req, q.body)
	return a
}

// stampOn gives the second attempt the deadline header's value for the
// time left when it leaves. A lent attempt's sibling carries the lending
// timeout's stamp; otherwise the stamp is found under the parent.
func (q *secondRequest) stampOn(a *attemptCtx) {
	if q.stamp != nil {
		a.stamp = q.stamp
	}
	restampDeadline(&a.req)
}

func (q *secondRequest) release() {
	q.src, q.url, q.body, q.clone, q.stamp = nil, url.URL{}, nil, nil, nil
	q.parent, q.deadline = nil, 0
	clear(q.keys)
	clear(q.vals)
	if cap(q.vals) > maxKeptHeaderValues {
		q.keys, q.vals = nil, nil
	}
	q.keys, q.vals = q.keys[:0], q.vals[:0]
}

// maxKeptHeaderValues bounds the buffers a pooled state keeps after a
// request with an unusually large header.
const maxKeptHeaderValues = 256

// pathValueFields are the indexes of http.Request's matches and
// otherValues: the path values SetPathValue changes in place and Clone
// copies. They are unexported, and only their lengths are read.
var pathValueFields = func() []int {
	t := reflect.TypeFor[http.Request]()
	var idx []int
	for _, name := range []string{"matches", "otherValues"} {
		f, ok := t.FieldByName(name)
		if !ok || (f.Type.Kind() != reflect.Slice && f.Type.Kind() != reflect.Map) {
			return nil
		}
		idx = append(idx, f.Index[0])
	}
	return idx
}()

// hasPathValues reports whether r carries path values, or may: when
// net/http no longer has the fields looked for, it says yes.
func hasPathValues(r *http.Request) bool {
	if pathValueFields == nil {
		return true
	}
	v := reflect.ValueOf(r).Elem()
	for _, i := range pathValueFields {
		if v.Field(i).Len() > 0 {
			return true
		}
	}
	return false
}

// record notes the latency of a call that started at start, for a
// quantile delay; a fixed delay needs none.
func (h *Hedge) record(start int64) {
	if h.cfg.Quantile > 0 {
		h.lat.record(h.clk.nanos() - start)
	}
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

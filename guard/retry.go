package guard

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resctl/resctl/quantity"
)

// RetryConfig configures retries of what follows the retry in its chain.
// What is retried is explicit and safe by default: transport errors,
// timeouts, 502/503/504, 429 and 408 (after their Retry-After), gRPC
// UNAVAILABLE and RESOURCE_EXHAUSTED; only idempotent methods; only
// requests whose body fits MaxBody. A response a guard policy wrote itself
// (a rejection) is never retried.
type RetryConfig struct {
	// Attempts is the most calls made for one request, the first
	// included: 1 … 10.
	Attempts int `yaml:"attempts"`
	// Backoff is the wait before each retry.
	Backoff RetryBackoff `yaml:"backoff"`
	// MaxElapsed bounds the time from the first attempt to the start of
	// the last: no retry starts after it.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
	// Budget bounds retries as a share of recent requests.
	Budget BudgetConfig `yaml:"budget"`
	// RetryOn lists what is retried; 4xx statuses other than 408, 425
	// and 429 are the request's own fault and are refused.
	RetryOn FailureConfig `yaml:"retry_on"`
	// Methods are the HTTP methods retried; default: the idempotent ones.
	// A route whose POSTs are idempotent lists POST.
	Methods []string `yaml:"methods"`
	// MaxBody is the largest request body buffered to be replayed; a
	// larger one is sent once.
	MaxBody quantity.Bytes `yaml:"max_body"`
	// RetryAfter waits at least a response's Retry-After before retrying
	// it (a wait beyond MaxElapsed gives up instead).
	RetryAfter bool `yaml:"retry_after"`
	// AttemptHeader numbers each attempt and RequestIDHeader carries the
	// request's id on each (one is made when the client sent none), so
	// an upstream can deduplicate; empty leaves them out.
	AttemptHeader string `yaml:"attempt_header"`
	// RequestIDHeader carries one id for every attempt of a request, so the
	// upstream can tell retries.
	RequestIDHeader string `yaml:"request_id_header"`
}

// RetryBackoff is exponential backoff: retry n waits
// min(Max, Base × Multiplier^(n-1)), jittered.
type RetryBackoff struct {
	// Base is the wait before the first retry.
	Base time.Duration `yaml:"base"`
	// Max is the longest wait.
	Max time.Duration `yaml:"max"`
	// Multiplier lengthens each wait: Base × Multiplier^(n-1).
	Multiplier float64 `yaml:"multiplier"`
	// Jitter spreads the waits so that clients failed together do not
	// retry together: "none"; "full", uniform in [0, wait]; "equal",
	// uniform in [wait/2, wait]; "decorrelated", uniform in
	// [Base, 3 × the previous wait], at most Max.
	Jitter string `yaml:"jitter"`
}

// Jitter names.
const (
	JitterNone         = "none"
	JitterFull         = "full"
	JitterEqual        = "equal"
	JitterDecorrelated = "decorrelated"
)

// DefaultRetryConfig: three attempts, 25ms doubling to 1s with full
// jitter, 5s in all, within the default budget.
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{
		Attempts:        3,
		Backoff:         RetryBackoff{Base: 25 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: JitterFull},
		MaxElapsed:      5 * time.Second,
		Budget:          DefaultBudgetConfig(),
		RetryOn:         DefaultRetryOn(),
		Methods:         slices.Clone(idempotent),
		MaxBody:         64 << 10,
		RetryAfter:      true,
		AttemptHeader:   AttemptHeader,
		RequestIDHeader: RequestIDHeader,
	}
}

// DefaultRetryOn is what retries retry by default: failures a second
// attempt may not meet.
func DefaultRetryOn() FailureConfig {
	return FailureConfig{
		Status:   []string{"502", "503", "504", "429", "408"},
		GRPC:     []string{"UNAVAILABLE", "RESOURCE_EXHAUSTED"},
		Errors:   true,
		Timeouts: true,
	}
}

// maxAttempts bounds Attempts: more is an amplifier, not a retry policy.
const maxAttempts = 10

var _ Config = (*RetryConfig)(nil)

// Kind implements Config.
func (*RetryConfig) Kind() string { return "retry" }

// Check implements Config.
func (c *RetryConfig) Check(problem func(field, msg string)) {
	if c.Attempts < 1 || c.Attempts > maxAttempts {
		problem("attempts", fmt.Sprintf("%d is not 1..%d: retries must be bounded", c.Attempts, maxAttempts))
	}
	c.Backoff.check(prefixed("backoff", problem))
	if c.MaxElapsed <= 0 {
		problem("max_elapsed", "must be above zero: retries must stop in time, e.g. 5s")
	}
	c.Budget.Check(prefixed("budget", problem))
	c.RetryOn.Check(prefixed("retry_on", problem))
	for i, s := range c.RetryOn.Status {
		lo, hi, err := parseStatus(s)
		if err != nil {
			continue
		}
		for n := lo; n <= hi; n++ {
			if n < 500 && n != 408 && n != 425 && n != 429 {
				problem(fmt.Sprintf("retry_on.status[%d]", i), fmt.Sprintf("%q: a %d is the request's own fault and fails again; retry 5xx, 408, 425 or 429", s, n))
				break
			}
		}
	}
	checkMethods("methods", c.Methods, problem)
	if c.MaxBody < 0 {
		problem("max_body", "must be at least 0")
	}
}

func (b *RetryBackoff) check(problem func(field, msg string)) {
	if b.Base <= 0 {
		problem("base", "must be above zero, e.g. 25ms")
	}
	if b.Max < b.Base {
		problem("max", fmt.Sprintf("%v is below base %v", b.Max, b.Base))
	}
	if math.IsNaN(b.Multiplier) || b.Multiplier < 1 {
		problem("multiplier", "must be at least 1")
	}
	switch b.Jitter {
	case JitterNone, JitterFull, JitterEqual, JitterDecorrelated:
	default:
		problem("jitter", fmt.Sprintf("%q is not none, full, equal or decorrelated", b.Jitter))
	}
}

// delay is the wait before retry n (1 for the first retry), given the
// previous wait (for decorrelated jitter) and u uniform in [0, 1).
func (b *RetryBackoff) delay(n int, prev time.Duration, u float64) time.Duration {
	exp := float64(b.Base) * math.Pow(b.Multiplier, float64(n-1))
	exp = min(exp, float64(b.Max))
	switch b.Jitter {
	case JitterFull:
		return time.Duration(u * exp)
	case JitterEqual:
		return time.Duration(exp/2 + u*exp/2)
	case JitterDecorrelated:
		prev = max(prev, b.Base)
		d := float64(b.Base) + u*(3*float64(prev)-float64(b.Base))
		return time.Duration(min(d, float64(b.Max)))
	}
	return time.Duration(exp)
}

// Build implements Config.
func (c *RetryConfig) Build(name string, o Options) (Policy, error) {
	return build(NewRetry(name, *c, o))
}

// Retry re-sends a failed call to what follows it in the chain, with
// backoff, within a budget. Its states are "passing" and "exhausted" (its
// budget refused a retry within the last second).
type Retry struct {
	passive
	pressure
	cfg     RetryConfig
	retryOn classifier
	methods methodSet
	budget  *budget
	rand    *rng
	ids     requestIDs
	pool    sync.Pool

	calls, success, retried, gaveUp, exhausted, unretryable atomic.Uint64
}

var _ Wrapper = (*Retry)(nil)

// NewRetry returns a retry policy with a fresh budget.
func NewRetry(name string, c RetryConfig, o Options) (*Retry, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	r := &Retry{cfg: c, retryOn: newClassifier(c.RetryOn), methods: newMethodSet(c.Methods), rand: newRNG(o.Seed, name)}
	r.init("retry", name, o, []string{"passing", "exhausted"}, nil, answer{})
	r.ids = newRequestIDs(c.RequestIDHeader, o.Seed, name)
	r.budget = newBudget(c.Budget, &r.clk)
	r.pool.New = func() any { return &retryState{r: r} }
	return r, nil
}

// WrapHTTP implements Wrapper.
func (r *Retry) WrapHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serve(w, req, next) })
}

// retryState is one request's progress through its attempts, pooled.
type retryState struct {
	r     *Retry
	ctx   context.Context
	aw    attemptWriter
	start int64
	n     int
	wait  time.Duration
	again bool
}

func (r *Retry) serve(w http.ResponseWriter, req *http.Request, next http.Handler) {
	now := r.begin()
	if !r.methods.has(req.Method) {
		r.unretryable.Add(1)
		next.ServeHTTP(w, req)
		return
	}
	body, ok, err := replayable(req, int64(r.cfg.MaxBody))
	if err != nil {
		w.WriteHeader(statusClientGone)
		return
	}
	if !ok {
		r.unretryable.Add(1)
		next.ServeHTTP(w, req)
		return
	}
	r.ids.ensure(req.Header)
	if body != nil {
		now = r.clk.nanos() // the first attempt starts once the body is read
	}
	st := r.pool.Get().(*retryState)
	st.ctx, st.start, st.wait = req.Context(), now, 0
	for st.n = 1; ; st.n++ {
		setAttempt(req.Header, r.cfg.AttemptHeader, st.n)
		if st.n > 1 {
			restampDeadline(req)
		}
		withBody(req, body)
		st.again = false
		st.aw.reset(w, st)
		next.ServeHTTP(&st.aw, req)
		if st.aw.state == undecided {
			st.aw.WriteHeader(http.StatusOK)
		}
		if !st.again {
			break
		}
		if !sleep(req.Context(), &r.clk, st.wait) {
			w.WriteHeader(statusClientGone)
			break
		}
	}
	st.aw.release()
	st.ctx = nil
	r.pool.Put(st)
}

// begin counts a call handed to the retry, as one its budget is a share
// of, and returns the time it began.
func (r *Retry) begin() int64 {
	r.calls.Add(1)
	r.onAdmit(&r.core, -1) // back to passing after a quiet second
	now := r.clk.nanos()
	r.budget.request(now)
	return now
}

// decide implements judge: an attempt is retried when its answer is one
// RetryOn lists and attempts, time and budget allow another.
func (st *retryState) decide(a *attemptWriter, status int) int {
	res := classifyAttempt(status, a.own)
	value := func() string { return headerGet(a.own, "Retry-After") }
	wait, again := st.r.again(st.ctx, res.outcome(), res.rejected, value, st.n, st.start, st.wait)
	if !again {
		return status
	}
	st.again, st.wait = true, wait
	return 0
}

// again decides whether attempt n of a call, which ended with o, is
// retried, and after how long: the one judgement behind the proxy's
// retries and the outgoing calls' (Transport, client interceptors, Call).
// start is when the first attempt left, prev the previous wait; value
// reads the answer's Retry-After value (nil: it has none), only for an
// answer that is retried, as most are not; rejected marks an answer a
// guard policy gave, which is never retried.
func (r *Retry) again(ctx context.Context, o Outcome, rejected bool, value func() string, n int, start int64, prev time.Duration) (time.Duration, bool) {
	if rejected || r.retryOn.classify(&o) != failure {
		r.success.Add(1)
		return 0, false
	}
	if n >= r.cfg.Attempts || ctx.Err() != nil {
		r.gaveUp.Add(1)
		return 0, false
	}
	wait := r.cfg.Backoff.delay(n, prev, r.rand.float64())
	if r.cfg.RetryAfter && value != nil {
		wait = max(wait, retryAfter(value(), r.clk.c))
	}
	now := r.clk.nanos()
	if time.Duration(now-start)+wait > r.cfg.MaxElapsed {
		r.gaveUp.Add(1)
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
		r.gaveUp.Add(1)
		return 0, false
	}
	if !r.budget.withdraw() {
		r.gaveUp.Add(1)
		r.exhausted.Add(1)
		r.onReject(&r.core, now)
		return 0, false
	}
	r.onAdmit(&r.core, -1)
	r.retried.Add(1)
	return wait, true
}

// retryAfter reads a Retry-After value: seconds, or an HTTP date.
func retryAfter(v string, c Clock) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(0, n)) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	now := time.Now()
	if c != nil {
		now = c.Now()
	}
	return max(0, t.Sub(now))
}

// RetryStats counts a retry policy's work.
type RetryStats struct {
	// Calls is the requests the policy was handed (downstream), and
	// Attempts the calls it made for them (upstream).
	Calls, Attempts uint64
	// Retried is attempts answered with a failure that was retried;
	// Succeeded attempts whose answer was final and not a retryable
	// failure; GaveUp retryable failures not retried (out of attempts,
	// time or budget); BudgetExhausted those refused by the budget.
	Retried, Succeeded, GaveUp, BudgetExhausted uint64
	// Unretryable is calls passed through once: a method not retried,
	// or a body over max_body.
	Unretryable uint64
}

// RetryStats returns the policy's counters.
func (r *Retry) RetryStats() RetryStats {
	s := RetryStats{
		Calls: r.calls.Load(), Retried: r.retried.Load(), Succeeded: r.success.Load(),
		GaveUp: r.gaveUp.Load(), BudgetExhausted: r.exhausted.Load(), Unretryable: r.unretryable.Load(),
	}
	s.Attempts = s.Retried + s.Succeeded + s.GaveUp + s.Unretryable
	return s
}

var (
	descCalls    = prometheus.NewDesc("resctl_guard_calls_total", "Requests a call wrapper was handed (downstream).", []string{"policy", "kind"}, nil)
	descAttempts = prometheus.NewDesc("resctl_guard_attempts_total", "Attempts a retry or hedge policy made (upstream), by outcome.", []string{"policy", "kind", "outcome"}, nil)
	descRetries  = prometheus.NewDesc("resctl_guard_retries_total", "Retries sent.", []string{"policy", "kind"}, nil)
	descBudget   = prometheus.NewDesc("resctl_guard_budget_exhausted_total", "Retries or hedges the budget refused.", []string{"policy", "kind"}, nil)
)

func (r *Retry) collect(ch chan<- prometheus.Metric) {
	s := r.RetryStats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{r.name, r.kind}, labels...)...)
	}
	counter(descCalls, s.Calls)
	counter(descAttempts, s.Succeeded, "success")
	counter(descAttempts, s.Retried, "retried")
	counter(descAttempts, s.GaveUp, "gave_up")
	counter(descAttempts, s.Unretryable, "unretryable")
	counter(descRetries, s.Retried)
	counter(descBudget, s.BudgetExhausted)
}

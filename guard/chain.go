package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Headers and metadata keys guard reads and writes.
const (
	// GuardHeader names, on a rejected HTTP response, the policy that
	// rejected it.
	GuardHeader = "X-Resctl-Guard"
	// GuardMetadata is GuardHeader for gRPC (metadata keys are lower case).
	GuardMetadata = "x-resctl-guard"
	// UpstreamErrorHeader marks a response the harness proxy wrote itself
	// because the upstream could not be reached (its 502s): the chain
	// records those as transport errors.
	UpstreamErrorHeader = "X-Resctl-Error"
)

// ErrTransport is the Outcome.Err the middleware records for a response
// marked with UpstreamErrorHeader.
var ErrTransport = errors.New("upstream unreachable")

// errPanicked is the Outcome.Err of a call whose handler panicked.
var errPanicked = errors.New("handler panicked")

// Chain runs policies in order around a call: each admits it in turn, and
// they hear its outcome in reverse order. A policy that rejects frees the
// permits taken before it, marked Skipped so that they learn nothing.
type Chain struct {
	policies []Policy
	clk      clock
	// steps are the policies as the chain calls them: with the clock
	// readings it hands to those that read the time on every call, when
	// they and the chain share the system clock. timeCalls: some policy
	// learns from every call's duration, so the chain times each; a
	// sampler's permit asks for the calls it learns from.
	steps     []step
	timeCalls bool
	// out is the chain composed for outgoing calls, made once.
	outOnce sync.Once
	out     stage
}

// NewChain returns a chain of the policies, applied in the order given.
func NewChain(policies ...Policy) *Chain {
	return newChain(policies, newClock(nil))
}

func newChain(policies []Policy, clk clock) *Chain {
	c := &Chain{policies: policies}
	c.setClock(clk)
	return c
}

// SetClock sets the clock that times calls whose Outcome has no Duration;
// call it before the chain serves.
func (c *Chain) SetClock(k Clock) { c.setClock(newClock(k)) }

func (c *Chain) setClock(k clock) {
	c.clk = k
	timed := k.c == nil
	c.steps = make([]step, len(c.policies))
	c.timeCalls = !timed
	for i, p := range c.policies {
		c.steps[i] = newStep(p, timed)
		c.timeCalls = c.timeCalls || c.steps[i].needsTime
	}
}

// The chain and its policies share the clock's readings; a negative
// reading stands for none.
//
// A chain on the system clock hands a reading from one policy to the next
// while none of them waits, and reads the clock itself only to time the
// call, when a policy learns from its duration: a call through a breaker
// reads no clock at all, and one through a breaker, an adaptive limit and
// a rate limit reads it once (the rate limit's), and twice when the
// limit samples the call.
//
// The policies that take the chain's readings are the breaker, the
// adaptive limit and the rate limit. Each has Acquire at now (read when
// negative and needed): the breaker's acquireSlow (after admitClosed) and
// the rate limit's acquireAt return the time after (now, the reading they
// took, or a fresh one if they waited), and the limit's acquire does not
// wait; the breaker and the limit have a releaseAt, Release at now with
// the Outcome by pointer. The chain calls these methods directly, not
// through interfaces, and the Outcome is not copied for each. What the
// chain needs to know of other policies, it learns through these optional
// interfaces:
type (
	// instant is implemented by policies whose Acquire never waits, so
	// that a reading taken before it is still the time after it.
	instant interface{ instant() }
	// timeless is implemented by policies whose Release reads neither
	// the time nor the Outcome's Duration.
	timeless interface{ timeless() }
	// deaf is implemented by policies whose Release does nothing, so
	// that a chain need not call it.
	deaf interface{ deaf() }
	// sampler is implemented by policies that learn from the durations
	// of some calls only (a busy adaptive limit): a permit of theirs
	// with timedFlag asks for its call to be timed, and one without
	// needs neither the call's Duration nor the time it ended.
	sampler interface{ sampling() }
)

// timedFlag is the bit of a Permit's flag with which a sampler asks the
// chain to time the call; policies keep their own flags below it.
const timedFlag = 1 << 31

// step is one policy of a chain and how the chain calls it.
type step struct {
	p         Policy
	kind      stepKind
	instant   bool   // Acquire leaves a reading of the clock current
	needsTime bool   // the call must be timed for Release
	sampled   uint32 // timedFlag for a sampler: the call must be timed if its permit has it
	deaf      bool   // Release does nothing
	// The policy, when it takes the chain's readings (kind says which).
	breaker *Breaker
	limit   *AdaptiveLimit
	rate    *RateLimit
}

// stepKind says how the chain calls a step's policy: through Policy, or
// by the methods of a policy that takes its readings of the clock.
type stepKind uint8

const (
	anyPolicy stepKind = iota
	breakerStep
	limitStep
	rateStep
)

func newStep(p Policy, timed bool) step {
	s := step{p: p, needsTime: true}
	_, s.instant = p.(instant)
	_, s.deaf = p.(deaf)
	if _, ok := p.(timeless); ok {
		s.needsTime = false
	}
	if !timed {
		return s
	}
	if sc, ok := p.(interface{ self() *core }); !ok || sc.self().clk.c != nil {
		return s // readings of the chain's clock are not the policy's
	}
	if _, ok := p.(sampler); ok {
		s.sampled = timedFlag
	}
	switch p := p.(type) {
	case *Breaker:
		s.kind, s.breaker, s.needsTime = breakerStep, p, p.needsTime()
	case *AdaptiveLimit:
		s.kind, s.limit, s.needsTime = limitStep, p, false
	case *RateLimit:
		s.kind, s.rate = rateStep, p
	}
	return s
}

// Policies returns the chain's policies, in order.
func (c *Chain) Policies() []Policy { return c.policies }

// Close closes the policies that hold resources (a rate limiter's Redis
// connection).
func (c *Chain) Close() error {
	var errs []error
	for _, p := range c.policies {
		if cl, ok := p.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	return errors.Join(errs...)
}

// maxInline is how many permits Do keeps on its stack; longer chains
// allocate.
const maxInline = 8

// Do runs call if every policy admits it, and returns the first rejection
// otherwise (a *Rejection, or ctx's error from a policy that waited). The
// Outcome call returns is what the policies learn from; its Duration is
// measured, when left zero, if a policy learns from it. If call panics,
// the policies hear of a failure (or of nothing, for
// http.ErrAbortHandler, which says the client went away) and the panic
// goes on; so it does for runtime.Goexit.
func (c *Chain) Do(ctx context.Context, r *Request, call func(context.Context) Outcome) error {
	var buf [maxInline]Permit
	permits, start, err := c.acquire(ctx, r, buf[:0])
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if done {
			return
		}
		v := recover()
		o := Outcome{Err: errPanicked}
		if v == http.ErrAbortHandler {
			o.Err = context.Canceled
		}
		c.releaseAt(permits, c.timeCall(&o, start), &o)
		if v != nil {
			panic(v)
		}
	}()
	o := call(ctx)
	done = true
	c.releaseAt(permits, c.timeCall(&o, start), &o)
	return nil
}

// timeCall reads the clock as a call that started at start ends, and
// fills in o's Duration when it is left zero, if a policy needs either
// (start is not negative); it returns the reading, or -1.
func (c *Chain) timeCall(o *Outcome, start int64) int64 {
	if start < 0 {
		return -1
	}
	end := c.clk.nanos()
	if o.Duration == 0 {
		o.Duration = time.Duration(end - start)
	}
	return end
}

// acquire takes a permit of every policy in turn, into permits (which
// grows when the chain is longer than its capacity), and returns the time
// after the last, when the call starts (-1 when no policy needs the call
// timed); on a rejection it frees those taken and returns the rejection.
func (c *Chain) acquire(ctx context.Context, r *Request, permits []Permit) ([]Permit, int64, error) {
	steps := c.steps
	if len(steps) > cap(permits) {
		permits = make([]Permit, len(steps))
	}
	permits = permits[:len(steps)]
	now := int64(-1) // a reading of the clock that is still current
	var asked uint32 // the samplers' permits' flags
	for i := range steps {
		s := &steps[i]
		var err error
		switch s.kind {
		case breakerStep:
			var ok bool
			if permits[i], ok = s.breaker.admitClosed(); !ok {
				permits[i], now, err = s.breaker.acquireSlow(s.breaker.cur.Load(), now)
			}
		case limitStep:
			permits[i], err = s.limit.acquire(now)
		case rateStep:
			permits[i], now, err = s.rate.acquireAt(ctx, r, now)
		default:
			permits[i], err = s.p.Acquire(ctx, r)
			if !s.instant {
				now = -1
			}
		}
		if err != nil {
			c.release(permits[:i], Outcome{Skipped: true})
			return nil, 0, err
		}
		asked |= permits[i].flag & s.sampled
	}
	switch {
	case !c.timeCalls && asked == 0:
		now = -1
	case now < 0:
		now = c.clk.nanos()
	}
	return permits, now, nil
}

// release hands the permits back with o.
func (c *Chain) release(permits []Permit, o Outcome) { c.releaseAt(permits, -1, &o) }

// releaseAt is release with a reading of the clock taken as the call
// ended, or -1: what the steps of a chain on the system clock read, or read for
// themselves.
func (c *Chain) releaseAt(permits []Permit, now int64, o *Outcome) {
	for i := len(permits) - 1; i >= 0; i-- {
		switch s := &c.steps[i]; {
		case s.deaf:
		case s.kind == breakerStep:
			s.breaker.releaseAt(permits[i], o, now)
		case s.kind == limitStep:
			s.limit.releaseAt(permits[i], o, now)
		default:
			s.p.Release(permits[i], *o)
		}
	}
}

// Middleware guards an HTTP handler: the request's path is its Route, its
// headers are the Request's Header, and the status the handler writes is
// its Outcome. A rejected request is answered with the rejection's status,
// GuardHeader and Retry-After when known.
//
// Call wrappers (retry, timeout, hedge) wrap what follows them in the
// chain: `breaker, retry, timeout` admits once, retries the attempts and
// bounds each attempt. A fallback answers for the whole chain wherever it
// is written.
func (c *Chain) Middleware(next http.Handler) http.Handler {
	if c.hasWrappers() {
		return c.compose(next)
	}
	return c.admit(next)
}

// admit is Middleware for a chain of admission policies only.
func (c *Chain) admit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := &httpCall{statusWriter: statusWriter{ResponseWriter: w, status: http.StatusOK}}
		call.req = Request{Route: r.URL.Path, Method: r.Method, Header: r.Header}
		err := c.Do(r.Context(), &call.req, func(ctx context.Context) Outcome {
			next.ServeHTTP(&call.statusWriter, r)
			o := Outcome{Status: call.status}
			if code, ok := grpcStatusOf(r, call.Header()); ok && code != codes.OK {
				// A gRPC call travels in a 200: its outcome is its status.
				o.Status, o.GRPCCode = 0, code
			}
			if call.Header().Get(UpstreamErrorHeader) != "" {
				o.Err = ErrTransport
			}
			if call.Header().Get(TimeoutHeader) != "" {
				o.Timeout = true
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				o.Timeout = true
			}
			return o
		})
		if err != nil {
			writeRejection(w, r, err)
		}
	})
}

// grpcStatusOf reads the status a gRPC call ended with, once its handler
// returned: from the headers of a trailers-only answer, or from the
// trailers the handler set after the body.
func grpcStatusOf(r *http.Request, h http.Header) (codes.Code, bool) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		return codes.OK, false
	}
	s := h.Get("Grpc-Status")
	if s == "" {
		s = h.Get(http.TrailerPrefix + "Grpc-Status")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return codes.OK, false
	}
	return codes.Code(n), true
}

// httpCall is the per-request state of the middleware, in one allocation.
type httpCall struct {
	statusWriter
	req Request
}

// writeRejection answers a request a policy refused, in its protocol: a
// gRPC call gets its status in a trailers-only response, which a gRPC
// client reads, rather than an HTTP error it would report as a protocol
// error.
func writeRejection(w http.ResponseWriter, r *http.Request, err error) {
	var rej *Rejection
	refused := errors.As(err, &rej)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		if refused {
			rej.WriteGRPC(w)
		} else {
			writeGRPCStatus(w, status.FromContextError(err))
		}
		return
	}
	if refused {
		rej.WriteHTTP(w)
		return
	}
	// The request's context ended while a policy made it wait: the client
	// has gone (or its deadline passed) and reads nothing.
	code := statusClientGone
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
}

// WriteHTTP answers an HTTP request with the rejection: its status, the
// name of the policy in GuardHeader, Retry-After in whole seconds (rounded
// up) when known, and a small JSON body.
func (r *Rejection) WriteHTTP(w http.ResponseWriter) {
	h := w.Header()
	h.Set(GuardHeader, r.Policy)
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(r.RetryAfter.Seconds()))))
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(r.Status)
	fmt.Fprintf(w, `{"error":%q,"guard":%q,"kind":%q,"reason":%q}`+"\n", http.StatusText(r.Status), r.Policy, r.Kind, r.Reason)
}

// statusWriter remembers the status written through it. Unwrap lets
// http.ResponseController reach the underlying writer's Flush, Hijack and
// deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

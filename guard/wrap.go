package guard

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// Headers the call wrappers read and write.
const (
	// AttemptHeader numbers the attempts of one request (1, 2, …) on their
	// way upstream, so that an upstream can tell a retry or a hedge from a
	// new request; with RequestIDHeader it can deduplicate them.
	AttemptHeader = "X-Resctl-Attempt"
	// RequestIDHeader carries the original request's id on every attempt;
	// the retry and hedge policies set one when the client sent none.
	RequestIDHeader = "X-Request-Id"
	// TimeoutHeader marks a response a timeout policy wrote itself (a 504)
	// because its deadline passed; its value is the policy's name.
	TimeoutHeader = "X-Resctl-Timeout"
	// FallbackHeader marks a response a fallback policy served instead of
	// the upstream's; its value is the fallback's kind: "static",
	// "last_good" or "file".
	FallbackHeader = "X-Resctl-Fallback"
	// DeadlineHeader is the default header a timeout policy propagates
	// the remaining deadline in, in milliseconds, to HTTP upstreams.
	DeadlineHeader = "X-Request-Timeout"
)

// Wrapper is a policy that acts around the rest of its chain rather than
// admitting calls: a retry re-invokes what follows it, a timeout bounds it,
// a hedge races a second call against it, a fallback answers for it. Its
// Acquire always admits and its Release learns nothing, so Chain.Do (and
// the gRPC interceptors) pass over it; Chain.Middleware composes it.
type Wrapper interface {
	Policy
	// WrapHTTP returns next guarded by the wrapper.
	WrapHTTP(next http.Handler) http.Handler
}

// outermost is implemented by wrappers that answer for their whole chain
// wherever they are written: the fallback, which must hear the rejections
// of every admission policy.
type outermost interface{ outermost() }

// passive is the Policy half of a wrapper.
type passive struct{ core }

// Acquire implements Policy: a wrapper admits every call.
func (*passive) Acquire(context.Context, *Request) (Permit, error) { return Permit{}, nil }

func (*passive) instant() {}

// Release implements Policy: a wrapper learns from its own attempts, not
// from the chain.
func (*passive) Release(Permit, Outcome) {}

func (*passive) timeless() {}

func (*passive) deaf() {}

// hasWrappers reports whether the chain holds a Wrapper.
func (c *Chain) hasWrappers() bool {
	for _, p := range c.policies {
		if _, ok := p.(Wrapper); ok {
			return true
		}
	}
	return false
}

// compose nests the chain around next: runs of admission policies become
// sub-chains, each Wrapper wraps what follows it, and outermost wrappers
// (fallbacks) wrap the whole. A hedge shares the budget of a retry in the
// same chain. A timeout whose next wrapper is a hedge (admission policies
// between pass the request on unchanged, once) lends it its attempts.
func (c *Chain) compose(next http.Handler) http.Handler {
	var retry *Retry
	for _, p := range c.policies {
		if r, ok := p.(*Retry); ok && retry == nil {
			retry = r
		}
	}
	h := next
	var run []Policy
	flush := func() {
		if len(run) > 0 {
			sub := newChain(run, c.clk)
			h = sub.admit(h)
			run = nil
		}
	}
	var outer []Wrapper
	var inner Wrapper // the wrapper h starts with, if any
	for i := len(c.policies) - 1; i >= 0; i-- {
		p := c.policies[i]
		w, ok := p.(Wrapper)
		switch {
		case !ok:
			run = append([]Policy{p}, run...)
		case isOutermost(w):
			outer = append(outer, w)
		default:
			flush()
			if hd, ok := w.(*Hedge); ok && retry != nil {
				hd.shareBudget(retry.budget)
			}
			if t, ok := w.(*Timeout); ok {
				_, lend := inner.(*Hedge)
				h = t.wrap(h, lend)
			} else {
				h = w.WrapHTTP(h)
			}
			inner = w
		}
	}
	flush()
	for _, w := range outer {
		h = w.WrapHTTP(h)
	}
	return h
}

func isOutermost(w Wrapper) bool { _, ok := w.(outermost); return ok }

// attemptWriter stands between one attempt and the client's writer. The
// attempt's headers go to a map of its own until it writes its status;
// then its judge decides: commit (the headers go to the client and the
// rest streams through) or discard (what the attempt writes is dropped, or
// kept up to a limit when the judge wants it replayed).
type attemptWriter struct {
	w      http.ResponseWriter
	own    http.Header
	judge  judge
	state  uint8
	status int
	// keep buffers a discarded response's body up to keepLimit.
	keep      bool
	keepLimit int
	body      bytes.Buffer
	// tee copies a committed response's body up to teeLimit, for the
	// fallback's last good responses.
	tee      bool
	teeLimit int
	teeOver  bool
}

const (
	undecided uint8 = iota
	committed
	discarded
)

// judge decides an attempt's fate when it writes its status: it returns
// the status to commit with, or 0 to discard the attempt.
type judge interface {
	decide(a *attemptWriter, status int) int
}

func (a *attemptWriter) reset(w http.ResponseWriter, j judge) {
	a.w, a.judge = w, j
	if a.own == nil {
		a.own = make(http.Header, 8)
	} else {
		clear(a.own)
	}
	a.state, a.status = undecided, 0
	a.keep, a.keepLimit, a.tee, a.teeLimit, a.teeOver = false, 0, false, 0, false
	a.body.Reset()
}

// release drops references to the request's writer so a pooled
// attemptWriter keeps nothing alive.
func (a *attemptWriter) release() {
	a.w, a.judge = nil, nil
	clear(a.own)
	if a.body.Cap() > 64<<10 {
		a.body = bytes.Buffer{}
	}
	a.body.Reset()
}

func (a *attemptWriter) Header() http.Header {
	if a.state == committed {
		return a.w.Header()
	}
	return a.own
}

func (a *attemptWriter) WriteHeader(code int) {
	switch a.state {
	case committed:
		a.w.WriteHeader(code)
		return
	case discarded:
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		return // informational responses are not passed on while undecided
	}
	a.status = code
	if c := a.judge.decide(a, code); c != 0 {
		a.commit(c)
		return
	}
	a.state = discarded
}

// commit sends the attempt's headers and status to the client.
func (a *attemptWriter) commit(code int) {
	a.state = committed
	dst := a.w.Header()
	for k, v := range a.own {
		dst[k] = v
	}
	a.status = code
	a.w.WriteHeader(code)
}

func (a *attemptWriter) Write(b []byte) (int, error) {
	if a.state == undecided {
		a.WriteHeader(http.StatusOK)
	}
	if a.state == discarded {
		if a.keep && a.body.Len() < a.keepLimit {
			a.body.Write(b[:min(len(b), a.keepLimit-a.body.Len())])
		}
		return len(b), nil
	}
	if a.tee && !a.teeOver {
		if a.body.Len()+len(b) > a.teeLimit {
			a.teeOver = true
		} else {
			a.body.Write(b)
		}
	}
	return a.w.Write(b)
}

func (a *attemptWriter) Flush() {
	if a.state == undecided {
		a.WriteHeader(http.StatusOK)
	}
	if a.state != committed {
		return
	}
	if f, ok := a.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the client's writer for
// deadlines.
func (a *attemptWriter) Unwrap() http.ResponseWriter { return a.w }

// attemptResult classifies what an attempt answered, from its status and
// headers, for the wrappers that decide on it.
type attemptResult struct {
	status    int
	grpc      codes.Code
	transport bool // the proxy could not reach the upstream
	timeout   bool // a timeout policy ran out of time
	rejected  bool // a guard policy answered it locally
	isGRPC    bool
}

func classifyAttempt(status int, h http.Header) attemptResult {
	r := attemptResult{status: status}
	r.transport = headerGet(h, UpstreamErrorHeader) != ""
	r.timeout = headerGet(h, TimeoutHeader) != ""
	r.rejected = headerGet(h, GuardHeader) != ""
	if s := headerGet(h, "Grpc-Status"); s != "" {
		r.isGRPC = true
		if n, err := strconv.Atoi(s); err == nil {
			r.grpc = codes.Code(n)
		}
	}
	return r
}

// outcome turns the result into an Outcome a classifier can judge.
func (r attemptResult) outcome() Outcome {
	o := Outcome{Status: r.status, Timeout: r.timeout}
	if r.transport {
		o.Err = ErrTransport
	}
	if r.isGRPC && r.grpc != codes.OK {
		o.Status, o.GRPCCode = 0, r.grpc
	}
	return o
}

// idempotent methods may be sent twice: RFC 9110 §9.2.2.
var idempotent = []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete}

// methodSet is the methods a retry or a hedge sends again. It is asked on
// every request, so the standard methods are bits found by comparing
// strings, which costs less than hashing one; others are in a map.
type methodSet struct {
	std   uint16
	other map[string]bool
}

func newMethodSet(ms []string) methodSet {
	var s methodSet
	for _, m := range ms {
		if i := stdMethod(m); i >= 0 {
			s.std |= 1 << i
			continue
		}
		if s.other == nil {
			s.other = map[string]bool{}
		}
		s.other[m] = true
	}
	return s
}

func (s *methodSet) has(m string) bool {
	if i := stdMethod(m); i >= 0 {
		return s.std&(1<<i) != 0
	}
	return s.other[m]
}

// stdMethod numbers the methods of RFC 9110 and PATCH; -1 for any other.
func stdMethod(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodConnect:
		return 6
	case http.MethodOptions:
		return 7
	case http.MethodTrace:
		return 8
	}
	return -1
}

func checkMethods(field string, ms []string, problem func(field, msg string)) {
	for i, m := range ms {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t/") {
			problem(field+"["+strconv.Itoa(i)+"]", "\""+m+"\" is not an HTTP method in upper case, e.g. GET")
		}
	}
}

// replayable buffers a request's body, up to limit bytes, so that it can
// be sent more than once. It reports false for a body over the limit, and
// then puts back what it read so the request can still be sent once.
func replayable(r *http.Request, limit int64) ([]byte, bool, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, true, nil
	}
	if r.ContentLength > limit {
		return nil, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		return nil, false, nil
	}
	r.Body.Close()
	return b, true, nil
}

// withBody sets a fresh reader over a buffered body on an attempt.
func withBody(r *http.Request, body []byte) {
	if body == nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// attemptValues are the AttemptHeader values, shared read-only so that
// numbering an attempt allocates nothing.
var attemptValues = func() [][]string {
	v := make([][]string, 17)
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

func setAttempt(h http.Header, header string, n int) {
	if header == "" {
		return
	}
	if n < len(attemptValues) {
		h[header] = attemptValues[n]
		return
	}
	h.Set(header, strconv.Itoa(n))
}

// requestIDs makes ids for requests that came without one, in header
// (canonical; empty sends none).
type requestIDs struct {
	rng    *rng
	header string
}

func newRequestIDs(header string, seed uint64, policy string) requestIDs {
	return requestIDs{rng: newRNG(seed, policy+"/id"), header: http.CanonicalHeaderKey(header)}
}

func (g *requestIDs) ensure(h http.Header) {
	if g.header == "" || headerGet(h, g.header) != "" {
		return
	}
	h[g.header] = []string{g.make()}
}

// make returns a new request id.
func (g *requestIDs) make() string { return "resctl-" + strconv.FormatUint(g.rng.uint64(), 36) }

// headerGet is http.Header.Get for a key already in canonical form: it
// skips canonicalizing the key again, which the wrappers' few lookups per
// attempt would otherwise spend most of their time on.
func headerGet(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// sleep waits d on the wall clock, or until ctx is done; it reports
// whether the full wait passed.
func sleep(ctx context.Context, k *clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	done := make(chan struct{})
	stop := k.afterFunc(d, func() { close(done) })
	select {
	case <-done:
		return true
	case <-ctx.Done():
		stop()
		return false
	}
}

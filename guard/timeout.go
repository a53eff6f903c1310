package guard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/internal/strictyaml"
)

// TimeoutConfig bounds what follows the timeout in its chain: written
// before a retry it bounds the whole request, after one each attempt. The
// remaining time travels to the upstream — as grpc-timeout for gRPC, in
// Header (milliseconds) for HTTP — and a request whose deadline has already
// passed is not sent. A scenario may write it as a bare duration,
// `timeout: 500ms`.
type TimeoutConfig struct {
	After time.Duration `yaml:"after"`
	// Header carries the remaining milliseconds to HTTP upstreams; a
	// caller that sends a smaller value in it keeps its deadline. Empty
	// sends and reads none.
	Header string `yaml:"header"`
}

// DefaultTimeoutConfig: one second, propagated in X-Request-Timeout.
func DefaultTimeoutConfig() TimeoutConfig {
	return TimeoutConfig{After: time.Second, Header: DeadlineHeader}
}

var _ Config = (*TimeoutConfig)(nil)

// Kind implements Config.
func (*TimeoutConfig) Kind() string { return "timeout" }

// DecodeNode implements strictyaml.NodeDecoder: a scalar is After.
func (c *TimeoutConfig) DecodeNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		d.Decode(n, reflect.ValueOf(&c.After).Elem(), path)
		return
	}
	d.DecodeStruct(n, reflect.ValueOf(c).Elem(), path)
}

// Check implements Config.
func (c *TimeoutConfig) Check(problem func(field, msg string)) {
	if c.After <= 0 {
		problem("after", "must be above zero, e.g. 500ms")
	}
	if strings.ContainsAny(c.Header, " :\t") {
		problem("header", fmt.Sprintf("%q is not a header name", c.Header))
	}
}

// Build implements Config.
func (c *TimeoutConfig) Build(name string, o Options) (Policy, error) {
	return build(NewTimeout(name, *c, o))
}

// Timeout gives what follows it a deadline. A call that runs out of time
// is answered 504 (gRPC: DEADLINE_EXCEEDED) with TimeoutHeader, which the
// policies around it count as a timeout; a gRPC response already under way
// ends with both in its trailers. Its one state is "passing".
type Timeout struct {
	passive
	cfg  TimeoutConfig
	pool sync.Pool
	// header is cfg.Header in canonical form; headerVals and grpcVals
	// the values sent lately in it and in grpc-timeout.
	header               string
	headerVals, grpcVals headerValues

	calls, timedOut, expired atomic.Uint64
}

var _ Wrapper = (*Timeout)(nil)

// NewTimeout returns a timeout policy.
func NewTimeout(name string, c TimeoutConfig, o Options) (*Timeout, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	t := &Timeout{cfg: c, header: http.CanonicalHeaderKey(c.Header)}
	t.headerVals.format = func(ms int64) string { return strconv.FormatInt(ms, 10) }
	t.grpcVals.format = func(ms int64) string { return strconv.FormatInt(ms, 10) + "m" }
	t.init("timeout", name, o, []string{"passing"}, nil, answer{})
	t.pool.New = func() any { return &timeoutState{} }
	return t, nil
}

// WrapHTTP implements Wrapper.
func (t *Timeout) WrapHTTP(next http.Handler) http.Handler { return t.wrap(next, false) }

// wrap is WrapHTTP, lending each attempt to next when next is a hedge.
func (t *Timeout) wrap(next http.Handler, lend bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.serve(w, r, next, lend) })
}

type timeoutState struct {
	aw  attemptWriter
	ctx *attemptCtx
}

// decide implements judge: an answer written because the deadline passed
// (the proxy's 502 for a cancelled upstream call) is replaced by a 504.
func (s *timeoutState) decide(a *attemptWriter, status int) int {
	if (headerGet(a.own, UpstreamErrorHeader) != "" || status == statusClientGone) && errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
		return 0
	}
	return status
}

func (t *Timeout) serve(w http.ResponseWriter, r *http.Request, next http.Handler, lend bool) {
	t.calls.Add(1)
	parent := r.Context()
	now := sysTime(sysNanos()) // without time.Now's wall-clock read
	deadline := now.Add(t.cfg.After)
	own := deadline // zero when the parent's deadline is as soon
	isGRPC := strings.HasPrefix(headerGet(r.Header, "Content-Type"), "application/grpc")
	if !isGRPC {
		// A caller's grpc-timeout is already the parent's deadline; an
		// HTTP caller's, in the header, becomes the attempt's own.
		if dl, ok := t.callerDeadline(r, now); ok && dl.Before(deadline) {
			deadline, own = dl, dl
		}
	}
	if dl, ok := parent.Deadline(); ok && !dl.After(deadline) {
		deadline, own = dl, time.Time{}
	}
	d := deadline.Sub(now)
	if d <= 0 || parent.Err() != nil {
		t.expired.Add(1)
		t.answer(w, r)
		return
	}
	ctx := newAttempt(r, parent, sysDeadline(own))
	if lend {
		ctx.lendable(r)
	}
	defer ctx.cancel(context.Canceled)
	switch ms := max(1, d.Milliseconds()); {
	case isGRPC && ms < 1e8:
		r.Header["Grpc-Timeout"] = t.grpcVals.get(ms)
	case isGRPC:
		r.Header.Set("Grpc-Timeout", grpcTimeout(d))
	case t.header != "":
		r.Header[t.header] = t.headerVals.get(ms)
		ctx.stamp = t
	}
	s := t.pool.Get().(*timeoutState)
	s.ctx = ctx
	s.aw.reset(w, s)
	if cut := t.forward(next, s, isGRPC); cut {
		t.timedOut.Add(1)
		h := w.Header()
		h[http.TrailerPrefix+"Grpc-Status"] = []string{"4"}
		h[http.TrailerPrefix+"Grpc-Message"] = []string{"deadline exceeded"}
		h[http.TrailerPrefix+TimeoutHeader] = []string{t.name}
	}
	switch {
	case s.aw.state == discarded:
		t.timedOut.Add(1)
		t.answer(w, r)
	case s.aw.state == undecided && ctx.Err() != nil:
		t.timedOut.Add(1)
		t.answer(w, r)
	case s.aw.state == undecided:
		s.aw.WriteHeader(http.StatusOK)
	}
	s.aw.release()
	s.ctx = nil
	t.pool.Put(s)
}

// forward sends the attempt on, and reports whether the deadline cut a
// gRPC response already under way. The reverse proxy aborts such a
// response (http.ErrAbortHandler), which resets the stream and leaves the
// client with INTERNAL; a gRPC server ends it with DEADLINE_EXCEEDED in
// the trailers, and so does the timeout, which serve writes.
func (t *Timeout) forward(next http.Handler, s *timeoutState, isGRPC bool) (cut bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler || !isGRPC || s.aw.state != committed || !errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
				panic(v)
			}
			cut = true
		}
	}()
	next.ServeHTTP(&s.aw, &s.ctx.req)
	return false
}

// callerDeadline reads the deadline an HTTP caller sent in the timeout's
// header (milliseconds, as the policy sends it), so that a caller with
// less time than the policy gives keeps its own: the upstream is told the
// smaller of the two and the call is cut at it. A value that is not a
// whole number of milliseconds is no deadline.
func (t *Timeout) callerDeadline(r *http.Request, now time.Time) (time.Time, bool) {
	if t.header == "" {
		return time.Time{}, false
	}
	v := headerGet(r.Header, t.header)
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return time.Time{}, false
	}
	return now.Add(time.Duration(ms) * time.Millisecond), true
}

// headerValues keeps the header values a timeout sent lately, one a slot
// by their number modulo the slots, so that the common deadline (a whole
// After, or a parent's counting down) is sent without formatting or
// allocating. The values are shared read-only, as attemptValues are.
type headerValues struct {
	slots  [64]atomic.Pointer[headerValue]
	format func(n int64) string
}

type headerValue struct {
	n int64
	v [1]string
}

func (c *headerValues) get(n int64) []string {
	slot := &c.slots[uint64(n)%uint64(len(c.slots))]
	if hv := slot.Load(); hv != nil && hv.n == n {
		return hv.v[:]
	}
	hv := &headerValue{n: n, v: [1]string{c.format(n)}}
	slot.Store(hv)
	return hv.v[:]
}

// answer writes the timeout's own response: 504, or DEADLINE_EXCEEDED in a
// trailers-only gRPC response.
func (t *Timeout) answer(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set(TimeoutHeader, t.name)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", "4")
		h.Set("Grpc-Message", "deadline exceeded")
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusGatewayTimeout)
	fmt.Fprintf(w, `{"error":%q,"guard":%q,"kind":"timeout"}`+"\n", http.StatusText(http.StatusGatewayTimeout), t.name)
}

// grpcTimeout writes d as a grpc-timeout value: at most eight digits and a
// unit.
func grpcTimeout(d time.Duration) string {
	if ms := d.Milliseconds(); ms < 1e8 {
		return strconv.FormatInt(max(1, ms), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "S"
}

var descTimeouts = prometheus.NewDesc("resctl_guard_timeouts_total", "Calls a timeout policy ended: timed_out (the deadline passed in flight) or expired (it had passed before the call was sent).", []string{"policy", "kind", "reason"}, nil)

func (t *Timeout) collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(t.calls.Load()), t.name, t.kind)
	ch <- prometheus.MustNewConstMetric(descTimeouts, prometheus.CounterValue, float64(t.timedOut.Load()), t.name, t.kind, "timed_out")
	ch <- prometheus.MustNewConstMetric(descTimeouts, prometheus.CounterValue, float64(t.expired.Load()), t.name, t.kind, "expired")
}

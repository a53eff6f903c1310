package harness

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/resctl/resctl/inject"
)

// ProtocolGRPC proxies gRPC on the same reverse proxy as http and h2c:
// clients speak h2c (or h2 over TLS when the proxy has a certificate), the
// upstream h2c for an http:// URL and h2 over TLS for https://. Calls of
// every kind (unary and streaming) pass through as HTTP/2 streams, so the
// proxy needs no protobuf types; headers, trailers and statuses travel
// untouched. Its faults are the grpc layer's (inject.LayerGRPC).
//
// What the proxy says itself to a gRPC call, on any proxy, it says in
// gRPC: an unreachable upstream is UNAVAILABLE, a deadline that passed
// DEADLINE_EXCEEDED, a guard's refusal its gRPC code — each a
// trailers-only response, never an HTTP error page.
const ProtocolGRPC = "grpc"

// isGRPC reports whether a request is a gRPC call. gRPC-Web, which
// carries its trailers in the body and may run over HTTP/1.1, is left to
// the HTTP paths.
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// grpcCalls is what the proxy does around every gRPC call: it bounds the
// call by its grpc-timeout, so that an upstream that outlives the
// client's deadline is cancelled by the proxy too (and faults that wait
// give up with it), and counts how calls ended by their gRPC status.
type grpcCalls struct {
	codes *prometheus.CounterVec
}

func newGRPCCalls(reg prometheus.Registerer) *grpcCalls {
	g := &grpcCalls{codes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resctl_proxy_grpc_calls_total",
		Help: "gRPC calls the harness proxy answered, by the status code their client saw, " +
			`named as grpc-go names them ("OK", "Unavailable"); "none" when the call ended ` +
			"without one: its stream was reset, or its client went away first.",
	}, []string{"grpc_code"})}
	reg.MustRegister(g.codes)
	return g
}

func (g *grpcCalls) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isGRPC(r) {
			next.ServeHTTP(w, r)
			return
		}
		if d, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout")); ok {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			r = r.WithContext(ctx)
		}
		code := "none" // unless the handler returns: a reset stream panics
		defer func() { g.codes.WithLabelValues(code).Inc() }()
		next.ServeHTTP(w, r)
		code = grpcCode(w.Header())
	})
}

// grpcCode reads the status a response ended with from its trailers, or
// from its headers for a trailers-only response, as the handler left
// them.
func grpcCode(h http.Header) string {
	v, ok := h[http.TrailerPrefix+"Grpc-Status"]
	if !ok {
		v, ok = h["Grpc-Status"]
	}
	if !ok || len(v) == 0 {
		return "none"
	}
	n, err := strconv.ParseUint(v[0], 10, 32)
	if err != nil {
		return "none"
	}
	return codes.Code(n).String()
}

// parseGRPCTimeout reads a grpc-timeout value: up to eight digits and a
// unit (H, M, S, m, u, n). A value beyond what a time.Duration holds
// (99999999H is 11,000 years) is no bound at all.
func parseGRPCTimeout(s string) (time.Duration, bool) {
	if len(s) < 2 || len(s) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > math.MaxInt64/int64(unit) {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// formatGRPCTimeout writes d as a grpc-timeout value in the finest unit
// that fits eight digits, rounding up so the upstream never gets more time
// than the call has.
func formatGRPCTimeout(d time.Duration) string {
	d = max(d, 1)
	ceil := func(size time.Duration) int64 {
		n := int64(d / size)
		if d%size != 0 {
			n++
		}
		return n
	}
	for _, u := range []struct {
		unit byte
		size time.Duration
	}{{'n', time.Nanosecond}, {'u', time.Microsecond}, {'m', time.Millisecond}, {'S', time.Second}, {'M', time.Minute}} {
		if n := ceil(u.size); n < 1e8 {
			return strconv.FormatInt(n, 10) + string(u.unit)
		}
	}
	return strconv.FormatInt(ceil(time.Hour), 10) + "H"
}

// rewriteGRPC passes on how long a gRPC call has left when it leaves for
// the upstream: the client's grpc-timeout less the time the call spent in
// the proxy (in a delay fault, a guard's queue), or a guard timeout's
// shorter deadline. A call that no longer carries a grpc-timeout (a
// metadata fault removed it) leaves without one.
func rewriteGRPC(r *httputil.ProxyRequest) {
	if !isGRPC(r.In) || r.Out.Header.Get("Grpc-Timeout") == "" {
		return
	}
	if dl, ok := r.Out.Context().Deadline(); ok {
		r.Out.Header.Set("Grpc-Timeout", formatGRPCTimeout(time.Until(dl)))
	}
}

// writeGRPCUpstreamError answers a gRPC call the proxy could not complete
// upstream with the status a gRPC client expects: DEADLINE_EXCEEDED when
// the call's deadline passed, CANCELLED when its client went away (nobody
// reads it), UNAVAILABLE otherwise — as a channel that cannot connect
// reports. It is marked with ErrorHeader, as the HTTP 502 is.
func writeGRPCUpstreamError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := codes.Unavailable, "upstream unreachable: "+err.Error()
	switch ctxErr := r.Context().Err(); {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		code, msg = codes.DeadlineExceeded, "deadline exceeded before the upstream answered"
	case ctxErr != nil:
		inject.WriteGRPCStatus(w, codes.Canceled, "the client cancelled the call")
		return
	}
	w.Header().Set(ErrorHeader, "upstream")
	inject.WriteGRPCStatus(w, code, msg)
}

package harness

import (
	"bufio"
	"context"
	"errors"
	"math"
	"net"
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
		gw := &grpcWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil && !gw.endPastDeadline(r, v) {
				panic(v)
			}
			code = grpcCode(w.Header())
		}()
		next.ServeHTTP(gw, r)
	})
}

// grpcWriter writes a gRPC call's response as the upstream (or the
// proxy's own answer) framed it, which the reverse proxy alone does not:
//
//   - A trailers-only response (grpc-status in the headers, no body) must
//     leave as one HEADERS frame that ends the stream, and the HTTP/2
//     server only ends the stream with the headers if they are still
//     unsent when the handler returns. The reverse proxy flushes the
//     headers before it knows the body is empty — from a timer it starts
//     at once (FlushInterval -1), so whether the headers went out alone
//     depended on which goroutine ran first — and a client then read
//     them as response headers, followed by an empty DATA frame ending
//     the stream, and failed the call with INTERNAL ("server closed the
//     stream without sending trailers"). A flush is therefore held
//     while the headers carry grpc-status and no body has been written.
//   - The HTTP/2 server adds a date header, and content-length: 0 to a
//     response without a body, which a gRPC client hands to the caller
//     as metadata the upstream never sent. They are left out unless the
//     response has them.
type grpcWriter struct {
	http.ResponseWriter
	wroteHeader, wroteBody bool
}

func (w *grpcWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.wroteHeader = true
		h := w.Header()
		for _, k := range []string{"Date", "Content-Length"} {
			if _, ok := h[k]; !ok {
				h[k] = nil // present but empty: the server adds none
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *grpcWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.wroteBody = true
	return w.ResponseWriter.Write(b)
}

// FlushError flushes unless the response is trailers-only so far.
func (w *grpcWriter) FlushError() error {
	if _, trailersOnly := w.Header()["Grpc-Status"]; trailersOnly && !w.wroteBody {
		return nil
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for handlers that look for http.Flusher.
func (w *grpcWriter) Flush() { _ = w.FlushError() }

// Unwrap lets http.ResponseController reach the server's writer for
// deadlines.
func (w *grpcWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// deadlinePassed reports whether ctx's deadline has passed, before its
// timer may have fired: the upstream, whose deadline is the same or
// later, resets a call it timed out the moment its own timer fires, and
// the proxy may hear of it first.
func deadlinePassed(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// endPastDeadline ends a response whose copy from the upstream was cut
// because the call's deadline passed, as a gRPC server ends such a call:
// with DEADLINE_EXCEEDED in its trailers. The reverse proxy aborts the
// handler instead (panicked is http.ErrAbortHandler), which resets the
// stream with INTERNAL_ERROR, and a client whose own timer had not fired
// yet reported INTERNAL. It reports whether it ended the response; any
// other abort, or one before the headers went out, is not its to end.
func (w *grpcWriter) endPastDeadline(r *http.Request, panicked any) bool {
	if panicked != http.ErrAbortHandler || !w.wroteHeader || !deadlinePassed(r.Context()) {
		return false
	}
	h := w.Header()
	h[http.TrailerPrefix+"Grpc-Status"] = []string{strconv.Itoa(int(codes.DeadlineExceeded))}
	h[http.TrailerPrefix+"Grpc-Message"] = []string{"deadline exceeded while the upstream answered"}
	return true
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
	switch {
	case deadlinePassed(r.Context()):
		code, msg = codes.DeadlineExceeded, "deadline exceeded before the upstream answered"
	case r.Context().Err() != nil:
		inject.WriteGRPCStatus(w, codes.Canceled, "the client cancelled the call")
		return
	}
	w.Header().Set(ErrorHeader, "upstream")
	inject.WriteGRPCStatus(w, code, msg)
}

// h2ReadBuffer is the read buffer of an h2c or gRPC client's
// connection: a request's frames, and many requests' at once, in one
// read.
const h2ReadBuffer = 16 << 10

// bufferedListener hands out connections whose reads are buffered, for
// the h2c and grpc proxies. The HTTP/2 server reads an h2c connection's
// frames straight from it, a frame header and then its payload, two
// system calls a frame: at saturation most of a call's reads. TLS
// connections buffer their records already.
type bufferedListener struct{ net.Listener }

func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, h2ReadBuffer)}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

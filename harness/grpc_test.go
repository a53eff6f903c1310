package harness_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// callResult is what a client saw of one call, whatever its kind.
type callResult struct {
	code     codes.Code
	msg      string
	header   metadata.MD
	trailer  metadata.MD
	messages int   // response messages received
	size     int32 // response bytes received, or the aggregate a client stream reported
}

// grpcCall is one call of each kind the proxy must forward, with the echo
// metadata set; ask says what to ask the upstream for: n response
// messages (or request messages, for the client stream) and a status.
type grpcCall func(ctx context.Context, c testgrpc.TestServiceClient, n int, st *testgrpc.EchoStatus) callResult

func unary(ctx context.Context, c testgrpc.TestServiceClient, _ int, st *testgrpc.EchoStatus) callResult {
	var r callResult
	resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 100, ResponseStatus: st}, grpc.Header(&r.header), grpc.Trailer(&r.trailer))
	if err == nil {
		r.messages, r.size = 1, int32(len(resp.GetPayload().GetBody()))
	}
	s := status.Convert(err)
	r.code, r.msg = s.Code(), s.Message()
	return r
}

// warmDeadline makes a first call through c, so that the connections from
// client to proxy and proxy to upstream are open, and returns a deadline
// for a call that must reach the upstream before it passes: 200ms, or
// twenty times what the first call took, connections and all, on a
// machine busy enough to need it.
func warmDeadline(t *testing.T, c testgrpc.TestServiceClient) time.Duration {
	t.Helper()
	start := time.Now()
	if r := unary(t.Context(), c, 1, nil); r.code != codes.OK {
		t.Fatalf("first call: %v %q", r.code, r.msg)
	}
	return max(200*time.Millisecond, 20*time.Since(start))
}

func serverStream(ctx context.Context, c testgrpc.TestServiceClient, n int, st *testgrpc.EchoStatus) callResult {
	var r callResult
	req := &testgrpc.StreamingOutputCallRequest{ResponseStatus: st}
	for range n {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: 100})
	}
	stream, err := c.StreamingOutputCall(ctx, req)
	if err != nil {
		r.code, r.msg = status.Code(err), err.Error()
		return r
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			r.header, _ = stream.Header()
			r.trailer = stream.Trailer()
			if !errors.Is(err, io.EOF) {
				s := status.Convert(err)
				r.code, r.msg = s.Code(), s.Message()
			}
			return r
		}
		r.messages++
		r.size += int32(len(resp.GetPayload().GetBody()))
	}
}

func clientStream(ctx context.Context, c testgrpc.TestServiceClient, n int, _ *testgrpc.EchoStatus) callResult {
	var r callResult
	stream, err := c.StreamingInputCall(ctx)
	if err != nil {
		r.code = status.Code(err)
		return r
	}
	for range n {
		if err := stream.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(100)}); err != nil {
			break // the status comes with CloseAndRecv
		}
	}
	resp, err := stream.CloseAndRecv()
	r.header, _ = stream.Header()
	r.trailer = stream.Trailer()
	if err == nil {
		r.messages, r.size = 1, resp.AggregatedPayloadSize
	}
	s := status.Convert(err)
	r.code, r.msg = s.Code(), s.Message()
	return r
}

// bidi sends n requests one at a time, each asking for one response that
// it waits for before sending the next: the exchange only completes if
// the proxy forwards both directions at once. The status comes with the
// last request.
func bidi(ctx context.Context, c testgrpc.TestServiceClient, n int, st *testgrpc.EchoStatus) callResult {
	var r callResult
	stream, err := c.FullDuplexCall(ctx)
	if err != nil {
		r.code = status.Code(err)
		return r
	}
	finish := func(err error) callResult {
		r.header, _ = stream.Header()
		r.trailer = stream.Trailer()
		if !errors.Is(err, io.EOF) {
			s := status.Convert(err)
			r.code, r.msg = s.Code(), s.Message()
		}
		return r
	}
	for i := range n {
		req := &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 100}}}
		if i == n-1 {
			req.ResponseStatus = st
		}
		if err := stream.Send(req); err != nil {
			_, err = stream.Recv()
			return finish(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			return finish(err)
		}
		r.messages++
		r.size += int32(len(resp.GetPayload().GetBody()))
	}
	if err := stream.CloseSend(); err != nil {
		return finish(err)
	}
	_, err = stream.Recv()
	return finish(err)
}

var callKinds = []struct {
	name string
	call grpcCall
	// messages and size are what a client receives when asked for 3
	// messages and no error.
	messages int
	size     int32
}{
	{"unary", unary, 1, 100},
	{"server streaming", serverStream, 3, 300},
	{"client streaming", clientStream, 1, 300},
	{"bidi streaming", bidi, 3, 300},
}

// withEcho is a context whose calls carry the echo metadata.
func withEcho(t *testing.T, v string) context.Context {
	return metadata.AppendToOutgoingContext(t.Context(), echoKey, v)
}

// TestGRPCProxy_PassThrough calls the upstream directly and through the
// proxy, with every kind of call, ending well and badly: the client sees
// the same messages, headers, trailers and status either way.
func TestGRPCProxy_PassThrough(t *testing.T) {
	svc := newTestService()
	up := startGRPCUpstream(t, svc)
	p := startGRPCProxy(t, up, nil)
	direct, proxied := dialGRPC(t, up), dialGRPC(t, p.Addr())
	statuses := []struct {
		name string
		st   *testgrpc.EchoStatus
	}{
		{"ok", nil},
		{"error", &testgrpc.EchoStatus{Code: int32(codes.FailedPrecondition), Message: "not now: ünïcode 100%"}},
	}
	for _, k := range callKinds {
		for _, st := range statuses {
			if k.name == "client streaming" && st.st != nil {
				continue // its requests carry no status to echo
			}
			t.Run(k.name+" "+st.name, func(t *testing.T) {
				want := k.call(withEcho(t, "e1"), direct, 3, st.st)
				got := k.call(withEcho(t, "e1"), proxied, 3, st.st)
				if got.code != want.code || got.msg != want.msg {
					t.Errorf("status %v %q through the proxy, %v %q directly", got.code, got.msg, want.code, want.msg)
				}
				if st.st == nil && (got.messages != k.messages || got.size != k.size) {
					t.Errorf("%d messages, %d bytes through the proxy; want %d, %d", got.messages, got.size, k.messages, k.size)
				}
				if got.messages != want.messages || got.size != want.size {
					t.Errorf("%d messages, %d bytes through the proxy, %d, %d directly", got.messages, got.size, want.messages, want.size)
				}
				if h := got.header.Get(echoKey); len(h) != 1 || h[0] != "e1" {
					t.Errorf("header %s = %q, want [e1] (all: %v)", echoKey, h, got.header)
				}
				if tr := got.trailer.Get(trailerKey); len(tr) != 1 || tr[0] != "t-e1" {
					t.Errorf("trailer %s = %q, want [t-e1] (all: %v)", trailerKey, tr, got.trailer)
				}
			})
		}
	}
}

// TestGRPCProxy_Deadline: a client whose deadline is shorter than the
// upstream takes sees DEADLINE_EXCEEDED, and the upstream's call carries
// the deadline (grpc-timeout went through) and ends with it.
func TestGRPCProxy_Deadline(t *testing.T) {
	svc := newTestService()
	p := startGRPCProxy(t, startGRPCUpstream(t, svc), nil)
	c := dialGRPC(t, p.Addr())
	d := warmDeadline(t, c)
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(t.Context(), hangKey, "1"), d)
	defer cancel()
	start := time.Now()
	_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	if took := time.Since(start); took > d+hangGuard/2 {
		t.Errorf("the call took %v; the upstream would have waited for ever", took)
	}
	select {
	case h := <-svc.ended:
		if !h.hadDeadline || h.err == nil {
			t.Errorf("upstream call: deadline %v, ended by %v; want a deadline that ended it", h.hadDeadline, h.err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the upstream call never ended")
	}
}

// TestGRPCProxy_DeadlineBoundsUpstream sends a call with grpc-timeout from
// a client that does not enforce it, to an upstream that ignores it: the
// proxy ends the call itself with DEADLINE_EXCEEDED and cancels the
// upstream's request, and passes on the time left, not more.
func TestGRPCProxy_DeadlineBoundsUpstream(t *testing.T) {
	seen := make(chan string, 1)
	cancelled := make(chan struct{})
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Grpc-Timeout")
		<-r.Context().Done()
		close(cancelled)
	}), true)
	p := startProxy(t, harness.Options{Upstream: up.URL, Protocol: harness.ProtocolGRPC})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL()+"/grpc.testing.TestService/UnaryCall", strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Grpc-Timeout", "300m")
	r := do(t, newClient(t, true), req)
	if r.status != http.StatusOK || r.header.Get("Grpc-Status") != "4" {
		t.Errorf("answer %d, grpc-status %q; want 200 and 4 (DEADLINE_EXCEEDED)", r.status, r.header.Get("Grpc-Status"))
	}
	if got := <-seen; got == "" || !strings.HasSuffix(got, "n") && !strings.HasSuffix(got, "u") && !strings.HasSuffix(got, "m") {
		t.Errorf("upstream grpc-timeout = %q, want what was left of 300ms", got)
	}
	select {
	case <-cancelled:
	case <-time.After(hangGuard):
		t.Fatal("the upstream request was not cancelled")
	}
}

// TestGRPCProxy_UnreachableUpstream: a call the proxy cannot forward ends
// with UNAVAILABLE, as from a channel that cannot connect, and is counted
// by its code.
func TestGRPCProxy_UnreachableUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := startGRPCProxy(t, addr, nil)
	for _, k := range callKinds {
		t.Run(k.name, func(t *testing.T) {
			got := k.call(t.Context(), dialGRPC(t, p.Addr()), 1, nil)
			if got.code != codes.Unavailable || !strings.Contains(got.msg, "upstream unreachable") {
				t.Errorf("status %v %q, want UNAVAILABLE: upstream unreachable", got.code, got.msg)
			}
		})
	}
	series := `resctl_proxy_grpc_calls_total{grpc_code="Unavailable"}`
	if m := scrapeUntil(t, p, series, float64(len(callKinds))); m[series] != float64(len(callKinds)) {
		t.Errorf("%s = %v, want %d", series, m[series], len(callKinds))
	}
}

// TestGRPCProxy_Metrics counts calls by the status in their trailers.
func TestGRPCProxy_Metrics(t *testing.T) {
	p := startGRPCProxy(t, startGRPCUpstream(t, newTestService()), nil)
	c := dialGRPC(t, p.Addr())
	unary(t.Context(), c, 1, nil)
	serverStream(t.Context(), c, 2, &testgrpc.EchoStatus{Code: int32(codes.NotFound)})
	serverStream(t.Context(), c, 2, &testgrpc.EchoStatus{Code: int32(codes.NotFound)})
	m := scrapeUntil(t, p, `resctl_proxy_grpc_calls_total{grpc_code="NotFound"}`, 2)
	for series, want := range map[string]float64{
		`resctl_proxy_grpc_calls_total{grpc_code="OK"}`:       1,
		`resctl_proxy_grpc_calls_total{grpc_code="NotFound"}`: 2,
		`resctl_proxy_requests_total{code="200"}`:             3,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
}

// refuse is a guard policy that refuses every call, as a full bulkhead
// or an open breaker would.
type refuse struct{}

func (refuse) Name() string { return "refuse-all" }
func (refuse) Acquire(context.Context, *guard.Request) (guard.Permit, error) {
	return guard.Permit{}, &guard.Rejection{Policy: "refuse-all", Kind: "test", Reason: "limit", RetryAfter: 2 * time.Second, Status: http.StatusTooManyRequests, GRPC: codes.ResourceExhausted}
}
func (refuse) Release(guard.Permit, guard.Outcome) {}

// TestGRPCProxy_GuardRejection: a guard's refusal reaches a gRPC client as
// the rejection's gRPC code, with the policy's name in the metadata.
func TestGRPCProxy_GuardRejection(t *testing.T) {
	svc := newTestService()
	p := startProxy(t, harness.Options{Upstream: "http://" + startGRPCUpstream(t, svc), Protocol: harness.ProtocolGRPC, Guard: guard.NewChain(refuse{})})
	var trailer metadata.MD // a trailers-only answer's metadata are trailers
	_, err := dialGRPC(t, p.Addr()).UnaryCall(t.Context(), &testgrpc.SimpleRequest{}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), `"refuse-all"`) {
		t.Fatalf("err = %v, want RESOURCE_EXHAUSTED from refuse-all", err)
	}
	if g, ra := trailer.Get(guard.GuardMetadata), trailer.Get("retry-after"); len(g) != 1 || g[0] != "refuse-all" || len(ra) != 1 || ra[0] != "2" {
		t.Errorf("metadata = %v, want the policy's name and retry-after: 2", trailer)
	}
	if n := svc.calls.Load(); n != 0 {
		t.Errorf("the upstream served %d calls, want none", n)
	}
}

// TestGRPCProxy_TLS: clients speak TLS (h2 by ALPN) to a proxy with a
// certificate, which speaks TLS to an https:// upstream it checks against
// the CA it was given.
func TestGRPCProxy_TLS(t *testing.T) {
	certFile, keyFile, cert, roots := testCert(t)
	up := startGRPCUpstream(t, newTestService(), grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	p := startProxy(t, harness.Options{
		Upstream: "https://" + up, Protocol: harness.ProtocolGRPC,
		TLSCert: certFile, TLSKey: keyFile, UpstreamCA: certFile,
	})
	if !strings.HasPrefix(p.URL(), "https://") {
		t.Errorf("URL = %s, want https", p.URL())
	}
	c := dialGRPC(t, p.Addr(), tlsCreds(roots))
	for _, k := range callKinds {
		t.Run(k.name, func(t *testing.T) {
			got := k.call(withEcho(t, "tls"), c, 3, nil)
			if got.code != codes.OK || got.messages != k.messages || got.size != k.size {
				t.Errorf("status %v %q, %d messages, %d bytes; want OK, %d, %d", got.code, got.msg, got.messages, got.size, k.messages, k.size)
			}
		})
	}
}

func TestGRPCProxy_TLSOptions(t *testing.T) {
	certFile, keyFile, _, _ := testCert(t)
	tests := []struct {
		name string
		opts harness.Options
		want string
	}{
		{"key without certificate", harness.Options{TLSKey: keyFile}, "set both"},
		{"certificate that is not one", harness.Options{TLSCert: keyFile, TLSKey: keyFile}, "proxy TLS"},
		{"CA file that holds none", harness.Options{UpstreamCA: keyFile}, "no PEM certificate"},
		{"CA file that is not there", harness.Options{UpstreamCA: certFile + ".missing"}, "upstream CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Upstream, tt.opts.Listen, tt.opts.Protocol = "https://127.0.0.1:1", "127.0.0.1:0", harness.ProtocolGRPC
			p, err := harness.Start(tt.opts)
			if err == nil {
				_ = p.Close(t.Context())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestGRPCProxy_AdminLayer: the admin API of a grpc proxy takes the grpc
// layer's kinds, and points HTTP-only kinds to the proxies that have them.
func TestGRPCProxy_AdminLayer(t *testing.T) {
	board := inject.NewBoard(1, nil)
	admin := harness.NewAdmin(harness.AdminOptions{})
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	p := startProxy(t, harness.Options{Upstream: "http://" + startGRPCUpstream(t, newTestService()), Protocol: harness.ProtocolGRPC, Board: board, Admin: admin})
	if err := admin.Add("orders", harness.ProtocolGRPC, p); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, false)
	post := func(body string) response {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.AdminURL()+"/api/v1/proxies/orders/faults", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return do(t, c, req)
	}
	if r := post(`{"kind": "abort", "params": {"code": "PERMISSION_DENIED", "message": "nope"}}`); r.status != http.StatusCreated || !strings.Contains(r.body, `"code": "PERMISSION_DENIED"`) {
		t.Fatalf("POST abort: %d %s", r.status, r.body)
	}
	if _, err := dialGRPC(t, p.Addr()).UnaryCall(t.Context(), &testgrpc.SimpleRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("err = %v, want the abort's PERMISSION_DENIED", err)
	}
	if r := post(`{"kind": "truncate", "params": {"bytes": 10}}`); r.status != http.StatusBadRequest || !strings.Contains(r.body, "http proxies") {
		t.Errorf("POST truncate: %d %s; want a pointer to http proxies", r.status, r.body)
	}
}

// TestReadProxyConfig_GRPC: a proxy config may name grpc proxies and their
// TLS files, and says what is wrong with them.
func TestReadProxyConfig_GRPC(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"grpc", "- {name: orders, upstream: 'http://127.0.0.1:9000', protocol: grpc}", ""},
		{"grpc over TLS", "- {name: orders, upstream: 'https://orders:9000', protocol: grpc, tls_cert: c.pem, tls_key: k.pem, upstream_ca: ca.pem}", ""},
		{"certificate without key", "- {name: orders, upstream: 'http://127.0.0.1:9000', protocol: grpc, tls_cert: c.pem}", "tls_cert and tls_key go together"},
		{"TLS on a tcp proxy", "- {name: db, upstream: '127.0.0.1:5432', protocol: tcp, tls_cert: c.pem, tls_key: k.pem}", "TLS needs an http, h2c or grpc proxy"},
		{"guard on a grpc proxy", "- {name: orders, upstream: 'http://127.0.0.1:9000', protocol: grpc, guard: [{timeout: 1s}]}", ""},
		{"several upstreams", "- {name: orders, upstreams: ['http://127.0.0.1:9000', 'http://127.0.0.1:9001'], protocol: grpc}", ""},
		{"upstream and upstreams", "- {name: orders, upstream: 'http://127.0.0.1:9002', upstreams: ['http://127.0.0.1:9000'], protocol: grpc}", "set upstream or upstreams, not both"},
		{"upstreams on a tcp proxy", "- {name: db, upstreams: ['127.0.0.1:5432'], protocol: tcp}", "upstreams needs an http, h2c or grpc proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "proxies.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			pcs, err := harness.ReadProxyConfig(path)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ReadProxyConfig: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			case err == nil && pcs[0].Protocol != harness.ProtocolGRPC && pcs[0].Protocol != harness.ProtocolTCP:
				t.Errorf("protocol = %q", pcs[0].Protocol)
			}
		})
	}
}

// unavailable is a TestService that answers every unary call UNAVAILABLE,
// as a gRPC server in trouble does.
type unavailable struct {
	testgrpc.UnimplementedTestServiceServer
}

func (unavailable) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return nil, status.Error(codes.Unavailable, "down for maintenance")
}

// The balancer judges gRPC calls by their status, not the HTTP 200 they
// all travel in: an upstream that answers UNAVAILABLE is ejected like one
// that answers 503, and the calls go to the healthy one.
func TestGRPCProxy_EjectsUnavailableUpstream(t *testing.T) {
	good := startGRPCUpstream(t, newTestService())
	bad := startGRPCUpstream(t, unavailable{})
	cfg := harness.DefaultBalanceConfig()
	cfg.Ejection.ConsecutiveFailures = 2
	p := startProxy(t, harness.Options{Upstreams: []string{"http://" + good, "http://" + bad}, Protocol: harness.ProtocolGRPC, Balance: cfg})
	c := dialGRPC(t, p.Addr())
	failed := 0
	for range 40 {
		if _, err := c.UnaryCall(t.Context(), &testgrpc.SimpleRequest{}); status.Code(err) == codes.Unavailable {
			failed++
		}
	}
	var badStats harness.UpstreamStats
	for _, st := range p.Balancer().Stats() {
		if st.Addr == "http://"+bad {
			badStats = st
		}
	}
	if !badStats.Ejected || failed > 10 {
		t.Errorf("bad upstream ejected %v after %d UNAVAILABLE calls of 40, stats %+v; want ejected after a few", badStats.Ejected, failed, badStats)
	}
	if badStats.Requests[harness.Outcome5xx] == 0 {
		t.Errorf("bad upstream's outcomes %v: UNAVAILABLE was not counted as a failure", badStats.Requests)
	}
}

// A breaker on a gRPC proxy judges calls by their gRPC status, not the
// HTTP 200 they travel in: an upstream answering UNAVAILABLE opens it, in
// a trailers-only answer as in trailers after a stream's messages.
func TestGRPCProxy_BreakerOpensOnStatus(t *testing.T) {
	cfg := guard.DefaultBreakerConfig()
	cfg.Window = guard.Window{Calls: 10}
	cfg.MinCalls = 5
	br, err := guard.NewBreaker("orders", cfg, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain := guard.NewChain(br)
	t.Cleanup(func() { _ = chain.Close() })
	up := startGRPCUpstream(t, unavailable{})
	p := startProxy(t, harness.Options{Upstream: "http://" + up, Protocol: harness.ProtocolGRPC, Guard: chain})
	c := dialGRPC(t, p.Addr())
	for range 10 {
		_, _ = c.UnaryCall(t.Context(), &testgrpc.SimpleRequest{})
	}
	if got := br.State(); got != "open" {
		t.Errorf("breaker %s after 10 UNAVAILABLE calls, want open", got)
	}
}

// The same for a stream that ends with UNAVAILABLE after its messages: the
// status comes in the trailers.
func TestGRPCProxy_BreakerOpensOnTrailerStatus(t *testing.T) {
	cfg := guard.DefaultBreakerConfig()
	cfg.Window = guard.Window{Calls: 10}
	cfg.MinCalls = 5
	br, err := guard.NewBreaker("orders", cfg, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain := guard.NewChain(br)
	t.Cleanup(func() { _ = chain.Close() })
	up := startGRPCUpstream(t, newTestService())
	p := startProxy(t, harness.Options{Upstream: "http://" + up, Protocol: harness.ProtocolGRPC, Guard: chain})
	c := dialGRPC(t, p.Addr())
	for range 10 {
		res := serverStream(t.Context(), c, 2, &testgrpc.EchoStatus{Code: int32(codes.Unavailable), Message: "gone"})
		if res.code == codes.Unavailable && res.messages != 2 && br.State() == "closed" {
			t.Fatalf("the stream ended UNAVAILABLE after %d messages, want 2 before its status", res.messages)
		}
	}
	if got := br.State(); got != "open" {
		t.Errorf("breaker %s after 10 streams ending UNAVAILABLE, want open", got)
	}
}

package harness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/inject"
)

// TestGRPCFaults runs each fault of the grpc layer through the real proxy
// against a real gRPC upstream: what the client sees is what the fault
// promises, and the upstream sees the call or not as the fault says.
func TestGRPCFaults(t *testing.T) {
	tests := []struct {
		name, kind, params string
		call               grpcCall
		n                  int // messages to ask for
		md                 []string
		// wantUpstream is whether the call reaches the upstream;
		// unmatched, whether the fault's selector passes it over.
		wantUpstream, unmatched bool
		check                   func(t *testing.T, r callResult, took time.Duration)
	}{
		{
			name: "abort with a code name and a message", kind: "abort", params: "code: RESOURCE_EXHAUSTED, message: 'slow down: ünïcode 100%'",
			call: unary, n: 1,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.ResourceExhausted || r.msg != "slow down: ünïcode 100%" {
					t.Errorf("status %v %q, want RESOURCE_EXHAUSTED with the message", r.code, r.msg)
				}
				if f := r.trailer.Get(strings.ToLower(inject.FaultHeader)); len(f) != 1 || f[0] != "abort" {
					t.Errorf("metadata %v, want the fault named", r.trailer)
				}
			},
		},
		{
			name: "abort by number, with the default message", kind: "abort", params: "code: 5",
			call: bidi, n: 2,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.NotFound || r.msg != "injected by resctl" || r.messages != 0 {
					t.Errorf("status %v %q after %d messages, want NOT_FOUND, injected by resctl, none", r.code, r.msg, r.messages)
				}
			},
		},
		{
			name: "abort of one method leaves the others", kind: "abort", params: "method: /grpc.testing.TestService/EmptyCall",
			call: unary, n: 1, wantUpstream: true, unmatched: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.OK {
					t.Errorf("status %v %q, want OK", r.code, r.msg)
				}
			},
		},
		{
			name: "abort of a service", kind: "abort", params: "service: grpc.testing.TestService",
			call: clientStream, n: 2,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Unavailable {
					t.Errorf("status %v %q, want the default UNAVAILABLE", r.code, r.msg)
				}
			},
		},
		{
			name: "abort by metadata, matching", kind: "abort", params: "metadata: {x-tenant: beta}",
			call: unary, n: 1, md: []string{"x-tenant", "beta"},
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Unavailable {
					t.Errorf("status %v, want UNAVAILABLE", r.code)
				}
			},
		},
		{
			name: "abort by metadata, another value", kind: "abort", params: "metadata: {x-tenant: beta}",
			call: unary, n: 1, md: []string{"x-tenant", "prod"}, wantUpstream: true, unmatched: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.OK {
					t.Errorf("status %v, want OK", r.code)
				}
			},
		},
		{
			name: "delay", kind: "delay", params: "delay: 300ms",
			call: unary, n: 1, wantUpstream: true,
			check: func(t *testing.T, r callResult, took time.Duration) {
				if r.code != codes.OK || took < 300*time.Millisecond {
					t.Errorf("status %v after %v, want OK after at least 300ms", r.code, took)
				}
			},
		},
		{
			name: "delay with jitter on a stream", kind: "delay", params: "delay: 200ms, jitter: 100ms, method_pattern: 'Streaming'",
			call: serverStream, n: 3, wantUpstream: true,
			check: func(t *testing.T, r callResult, took time.Duration) {
				if r.code != codes.OK || r.messages != 3 || took < 100*time.Millisecond {
					t.Errorf("status %v, %d messages after %v; want OK, 3, at least 100ms", r.code, r.messages, took)
				}
			},
		},
		{
			name: "reset before any message", kind: "reset", params: "",
			call: unary, n: 1, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Internal || !strings.Contains(r.msg, "RST_STREAM") {
					t.Errorf("status %v %q, want INTERNAL from RST_STREAM", r.code, r.msg)
				}
			},
		},
		{
			name: "reset after two messages", kind: "reset", params: "after: 2",
			call: serverStream, n: 5, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Internal || r.messages != 2 {
					t.Errorf("status %v %q after %d messages, want INTERNAL after 2", r.code, r.msg, r.messages)
				}
			},
		},
		{
			name: "reset of a call that ends early", kind: "reset", params: "after: 10",
			call: serverStream, n: 3, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Internal || r.messages != 3 {
					t.Errorf("status %v %q after %d messages, want INTERNAL after all 3", r.code, r.msg, r.messages)
				}
			},
		},
		{
			name: "stream error after three messages", kind: "stream_error", params: "after: 3, code: ABORTED, message: lost the backend",
			call: serverStream, n: 10, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Aborted || r.msg != "lost the backend" || r.messages != 3 {
					t.Errorf("status %v %q after %d messages, want ABORTED: lost the backend after 3", r.code, r.msg, r.messages)
				}
				if f := r.trailer.Get(strings.ToLower(inject.FaultHeader)); len(f) != 1 || f[0] != "stream_error" {
					t.Errorf("trailer %v, want the fault named", r.trailer)
				}
				if h := r.header.Get(echoKey); len(h) != 1 {
					t.Errorf("header %v, want the upstream's", r.header)
				}
			},
		},
		{
			name: "stream error in a bidi stream", kind: "stream_error", params: "after: 2, code: DATA_LOSS",
			call: bidi, n: 5, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.DataLoss || r.messages != 2 {
					t.Errorf("status %v %q after %d messages, want DATA_LOSS after 2", r.code, r.msg, r.messages)
				}
			},
		},
		{
			name: "stream error before the first message", kind: "stream_error", params: "after: 0",
			call: unary, n: 1, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Unavailable || r.messages != 0 {
					t.Errorf("status %v %q after %d messages, want UNAVAILABLE before any", r.code, r.msg, r.messages)
				}
			},
		},
		{
			name: "stream error replaces an upstream's trailers-only status", kind: "stream_error", params: "after: 0, code: INTERNAL",
			call: func(ctx context.Context, c testgrpc.TestServiceClient, n int, _ *testgrpc.EchoStatus) callResult {
				return unary(ctx, c, n, &testgrpc.EchoStatus{Code: int32(codes.NotFound)})
			},
			n: 1, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.Internal {
					t.Errorf("status %v %q, want the fault's INTERNAL", r.code, r.msg)
				}
			},
		},
		{
			name: "stream shorter than the error leaves its status", kind: "stream_error", params: "after: 5",
			call: serverStream, n: 3, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.OK || r.messages != 3 {
					t.Errorf("status %v %q after %d messages, want OK after 3", r.code, r.msg, r.messages)
				}
			},
		},
		{
			name: "response metadata", kind: "metadata", params: "set: {x-added: 'yes'}, remove: [x-echo]",
			call: unary, n: 1, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.OK || len(r.header.Get("x-added")) != 1 || len(r.header.Get(echoKey)) != 0 {
					t.Errorf("status %v, header %v; want OK, x-added, no x-echo", r.code, r.header)
				}
			},
		},
		{
			name: "request metadata", kind: "metadata", params: "side: request, remove: [x-echo]",
			call: serverStream, n: 1, wantUpstream: true,
			check: func(t *testing.T, r callResult, _ time.Duration) {
				if r.code != codes.OK || len(r.header.Get(echoKey)) != 0 || len(r.trailer.Get(trailerKey)) != 0 {
					t.Errorf("header %v, trailer %v; the upstream saw the removed key", r.header, r.trailer)
				}
			},
		},
		{
			name: "bandwidth", kind: "bandwidth", params: "rate: 100KB",
			call: func(ctx context.Context, c testgrpc.TestServiceClient, _ int, _ *testgrpc.EchoStatus) callResult {
				var r callResult
				resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 30_000})
				r.code, r.size = status.Code(err), int32(len(resp.GetPayload().GetBody()))
				return r
			},
			wantUpstream: true,
			check: func(t *testing.T, r callResult, took time.Duration) {
				// 30 kB at 100 kB/s: 0.3 s; the pacer never runs ahead.
				if r.code != codes.OK || r.size != 30_000 || took < 270*time.Millisecond {
					t.Errorf("status %v, %d bytes in %v; want OK, 30000 in about 300ms", r.code, r.size, took)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newTestService()
			board := inject.NewBoard(1, nil)
			p := startGRPCProxy(t, startGRPCUpstream(t, svc), board)
			a := grpcFault(t, board, tt.kind, "{"+tt.params+"}")
			ctx := metadata.AppendToOutgoingContext(withEcho(t, "f"), tt.md...)
			start := time.Now()
			r := tt.call(ctx, dialGRPC(t, p.Addr()), tt.n, nil)
			tt.check(t, r, time.Since(start))
			if got := svc.calls.Load() > 0; got != tt.wantUpstream {
				t.Errorf("upstream called: %v, want %v", got, tt.wantUpstream)
			}
			want := uint64(1)
			if tt.unmatched {
				want = 0
			}
			if st := a.Stats(); st.Matched != want || st.Injected != want {
				t.Errorf("stats = %+v, want %d matched and injected", st, want)
			}
		})
	}
}

// TestGRPCFaults_StreamErrorCancelsUpstream: a stream error ends the call
// as soon as the last message allowed through has passed, even when the
// upstream then goes quiet, and cancels the upstream's call.
func TestGRPCFaults_StreamErrorCancelsUpstream(t *testing.T) {
	for _, kind := range []string{"stream_error", "reset"} {
		t.Run(kind, func(t *testing.T) {
			svc := newTestService()
			board := inject.NewBoard(1, nil)
			p := startGRPCProxy(t, startGRPCUpstream(t, svc), board)
			grpcFault(t, board, kind, "after: 2")
			ctx := metadata.AppendToOutgoingContext(t.Context(), hangKey, "1")
			r := serverStream(ctx, dialGRPC(t, p.Addr()), 2, nil)
			if r.code == codes.OK || r.messages != 2 {
				t.Errorf("status %v %q after %d messages, want an error after 2", r.code, r.msg, r.messages)
			}
			select {
			case h := <-svc.ended:
				if h.err == nil {
					t.Error("the upstream call ended without an error")
				}
			case <-time.After(hangGuard):
				t.Fatal("the upstream call was not cancelled")
			}
		})
	}
}

// TestGRPCFaults_DropDeadline: a metadata fault that removes grpc-timeout
// sends the call upstream without a deadline, as a gateway that drops
// deadlines would; the proxy still ends the call at the client's.
func TestGRPCFaults_DropDeadline(t *testing.T) {
	svc := newTestService()
	board := inject.NewBoard(1, nil)
	p := startGRPCProxy(t, startGRPCUpstream(t, svc), board)
	grpcFault(t, board, "metadata", "{side: request, remove: [grpc-timeout]}")
	c := dialGRPC(t, p.Addr())
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(t.Context(), hangKey, "1"), warmDeadline(t, c))
	defer cancel()
	if r := unary(ctx, c, 1, nil); r.code != codes.DeadlineExceeded {
		t.Errorf("status %v %q, want DEADLINE_EXCEEDED", r.code, r.msg)
	}
	select {
	case h := <-svc.ended:
		if h.hadDeadline {
			t.Error("the upstream call carried a deadline")
		}
	case <-time.After(hangGuard):
		t.Fatal("the upstream call never ended")
	}
}

// TestGRPCFaults_DelayPastDeadline: a call whose deadline passes in a
// delay fault ends with DEADLINE_EXCEEDED and is never forwarded.
func TestGRPCFaults_DelayPastDeadline(t *testing.T) {
	svc := newTestService()
	board := inject.NewBoard(1, nil)
	p := startGRPCProxy(t, startGRPCUpstream(t, svc), board)
	grpcFault(t, board, "delay", "delay: 1h")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if r := unary(ctx, dialGRPC(t, p.Addr()), 1, nil); r.code != codes.DeadlineExceeded {
		t.Errorf("status %v %q, want DEADLINE_EXCEEDED", r.code, r.msg)
	}
	// Once the proxy has counted the call, it is done with it. Its code
	// is DEADLINE_EXCEEDED if the proxy's deadline passed first, none if
	// the client's cancellation came first.
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		m := scrape(t, p)
		if m[`resctl_proxy_grpc_calls_total{grpc_code="DeadlineExceeded"}`]+m[`resctl_proxy_grpc_calls_total{grpc_code="none"}`] == 1 {
			break
		}
	}
	if n := svc.calls.Load(); n != 0 {
		t.Errorf("the upstream served %d calls, want none", n)
	}
}

// TestGRPCFaults_ZeroPercent: at 0% no fault of the grpc layer touches a
// call, of any kind: status, messages, headers and trailers are the
// upstream's, and every call is counted as matched, none as injected.
func TestGRPCFaults_ZeroPercent(t *testing.T) {
	params := map[string]string{
		"abort":        "",
		"delay":        "delay: 1h",
		"reset":        "",
		"stream_error": "",
		"metadata":     "remove: [x-echo]",
		"bandwidth":    "rate: 1",
	}
	for _, kind := range inject.KindsFor(inject.LayerGRPC) {
		t.Run(kind, func(t *testing.T) {
			p, ok := params[kind]
			if !ok {
				t.Fatalf("kind %q has no parameters in this test: add them", kind)
			}
			board := inject.NewBoard(1, nil)
			proxy := startGRPCProxy(t, startGRPCUpstream(t, newTestService()), board)
			a := grpcFault(t, board, kind, "{"+p+sepIf(p)+"percent: 0}")
			c := dialGRPC(t, proxy.Addr())
			for _, k := range callKinds {
				r := k.call(withEcho(t, "z"), c, 3, nil)
				if r.code != codes.OK || r.messages != k.messages || r.size != k.size || len(r.header.Get(echoKey)) != 1 || len(r.trailer.Get(trailerKey)) != 1 {
					t.Errorf("%s: status %v %q, %d messages, %d bytes, header %v, trailer %v; want it untouched", k.name, r.code, r.msg, r.messages, r.size, r.header, r.trailer)
				}
			}
			if st := a.Stats(); st.Matched != uint64(len(callKinds)) || st.Injected != 0 {
				t.Errorf("stats = %+v, want %d matched, none injected", st, len(callKinds))
			}
		})
	}
}

func sepIf(params string) string {
	if params == "" {
		return ""
	}
	return ", "
}

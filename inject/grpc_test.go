package inject_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/inject"
)

func TestGRPCCode_UnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    codes.Code
		wantErr bool
	}{
		{"UNAVAILABLE", codes.Unavailable, false},
		{"resource_exhausted", codes.ResourceExhausted, false},
		{" DEADLINE_EXCEEDED ", codes.DeadlineExceeded, false},
		{"CANCELED", codes.Canceled, false},
		{"14", codes.Unavailable, false},
		{"0", codes.OK, false},
		{"17", 0, true},
		{"-1", 0, true},
		{"Unavailable!", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var c inject.GRPCCode
			err := c.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.wantErr || (err == nil && codes.Code(c) != tt.want) {
				t.Fatalf("UnmarshalText(%q) = %v, %v; want %v, error %v", tt.in, codes.Code(c), err, tt.want, tt.wantErr)
			}
			if err != nil {
				return
			}
			text, _ := c.MarshalText()
			var back inject.GRPCCode
			if err := back.UnmarshalText(text); err != nil || back != c {
				t.Errorf("%q does not read back: %v, %v", text, back, err)
			}
		})
	}
}

func TestEncodeGRPCMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain message", "plain message"},
		{"100%", "100%25"},
		{"ünï", "%C3%BCn%C3%AF"},
		{"line\nbreak", "line%0Abreak"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := inject.EncodeGRPCMessage(tt.in); got != tt.want {
			t.Errorf("EncodeGRPCMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKindsFor_GRPC(t *testing.T) {
	want := []string{"abort", "bandwidth", "delay", "metadata", "reset", "stream_error"}
	if got := inject.KindsFor(inject.LayerGRPC); !slices.Equal(got, want) {
		t.Errorf("KindsFor(grpc) = %v, want %v", got, want)
	}
	for _, kind := range want {
		s, ok := inject.NewSpecFor(inject.LayerGRPC, kind)
		if !ok || inject.LayerOf(s) != inject.LayerGRPC || s.Kind() != kind {
			t.Errorf("NewSpecFor(grpc, %s) = %T (layer %s, kind %s)", kind, s, inject.LayerOf(s), s.Kind())
		}
	}
}

// TestParseSpecFor_GRPC: kinds of another layer are pointed to their
// proxies, whichever layers have them.
func TestParseSpecFor_GRPC(t *testing.T) {
	tests := []struct {
		layer      inject.Layer
		kind, want string
	}{
		{inject.LayerGRPC, "truncate", `"truncate" is a fault of http proxies; this proxy speaks grpc`},
		{inject.LayerTCP, "abort", `"abort" is a fault of grpc and http proxies; this proxy speaks tcp`},
		{inject.LayerHTTP, "stream_error", `"stream_error" is a fault of grpc proxies`},
		{inject.LayerGRPC, "stream_eror", `did you mean "stream_error"`},
	}
	for _, tt := range tests {
		t.Run(string(tt.layer)+" "+tt.kind, func(t *testing.T) {
			_, err := inject.ParseSpecFor(tt.layer, tt.kind, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestGRPCSpec_Check(t *testing.T) {
	tests := []struct {
		kind, params string
		want         []string // fields with problems
	}{
		{"abort", "", nil},
		{"abort", "code: OK", []string{"code"}},
		{"abort", "code: 99", []string{"code"}},
		{"abort", "code: SOMETIMES", []string{"code"}},
		{"abort", "method: grpc.testing.TestService/UnaryCall", []string{"method"}},
		{"abort", "method: /grpc.testing.TestService", []string{"method"}},
		{"abort", "method: /a/b/c", []string{"method"}},
		{"abort", "service: grpc.testing.TestService/UnaryCall", []string{"service"}},
		{"abort", "method_pattern: '('", []string{"method_pattern"}},
		{"abort", "method: /a.B/C, method_pattern: 'C$'", []string{"method_pattern"}},
		{"abort", "metadata: {'a b': c}", []string{"metadata"}},
		{"abort", "percent: 50, schedule: {ramp: {to: 50%, over: 10s}}", []string{"percent"}},
		{"abort", "schedule: {on: 5s}", []string{"schedule.on"}},
		{"abort", "path: /grpc.testing.TestService/", []string{"path"}},
		{"delay", "", []string{"delay"}},
		{"delay", "delay: 100ms, jitter: 200ms", []string{"jitter"}},
		{"delay", "delay: 100ms, distribution: zipf", []string{"distribution"}},
		{"reset", "after: -1", []string{"after"}},
		{"stream_error", "code: 0", []string{"code"}},
		{"stream_error", "after: lots", []string{"after"}},
		{"metadata", "", []string{"set"}},
		{"metadata", "side: both, set: {a: b}", []string{"side"}},
		{"metadata", "set: {grpc-status: '0'}", []string{"set"}},
		{"metadata", "side: request, remove: [grpc-timeout]", nil},
		{"bandwidth", "", []string{"rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.params, func(t *testing.T) {
			_, err := inject.ParseSpecFor(inject.LayerGRPC, tt.kind, []byte("{"+tt.params+"}"))
			var got []string
			var se *inject.SpecError
			if errors.As(err, &se) {
				for _, p := range se.Problems {
					got = append(got, p.Field)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems %v (%v), want fields %v", got, err, tt.want)
			}
		})
	}
}

// TestGRPCSpec_ParamsRoundTrip: what Params shows of a gRPC fault (in the
// admin API) parses back to the same spec.
func TestGRPCSpec_ParamsRoundTrip(t *testing.T) {
	tests := []struct{ kind, params string }{
		{"abort", "code: permission_denied, message: go away, method: /a.B/C, metadata: {x-tenant: beta}, percent: 25"},
		{"abort", ""},
		{"delay", "delay: 250ms, jitter: 50ms, service: a.B, schedule: {first: 10, every: 2}"},
		{"reset", "after: 3, method_pattern: 'Stream'"},
		{"stream_error", "after: 2, code: 10, message: lost"},
		{"metadata", "side: request, set: {x-a: b}, remove: [authorization]"},
		{"bandwidth", "rate: 64KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.params, func(t *testing.T) {
			s, err := inject.ParseSpecFor(inject.LayerGRPC, tt.kind, []byte("{"+tt.params+"}"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(inject.Params(s))
			if err != nil {
				t.Fatal(err)
			}
			back, err := inject.ParseSpecFor(inject.LayerGRPC, tt.kind, b)
			if err != nil {
				t.Fatalf("Params %s does not parse: %v", b, err)
			}
			if !reflect.DeepEqual(back, s) {
				t.Errorf("Params %s parse to %+v, want %+v", b, back, s)
			}
		})
	}
}

// TestGRPCKinds_Match checks the gRPC selectors: exact method, service,
// method pattern and metadata, each alone and together.
func TestGRPCKinds_Match(t *testing.T) {
	const unaryCall = "/grpc.testing.TestService/UnaryCall"
	tests := []struct {
		name, params, path string
		md                 map[string]string
		want               bool
	}{
		{"everything", "", unaryCall, nil, true},
		{"exact method", "method: " + unaryCall, unaryCall, nil, true},
		{"exact method, another", "method: " + unaryCall, "/grpc.testing.TestService/UnaryCallX", nil, false},
		{"service", "service: grpc.testing.TestService", unaryCall, nil, true},
		{"service, another", "service: grpc.testing.Test", unaryCall, nil, false},
		{"pattern", "method_pattern: '/Streaming[A-Z]'", "/grpc.testing.TestService/StreamingInputCall", nil, true},
		{"pattern, no match", "method_pattern: '/Streaming[A-Z]'", unaryCall, nil, false},
		{"metadata", "metadata: {x-tenant: beta}", unaryCall, map[string]string{"x-tenant": "beta"}, true},
		{"metadata, upper-case key", "metadata: {X-Tenant: beta}", unaryCall, map[string]string{"x-tenant": "beta"}, true},
		{"metadata, another value", "metadata: {x-tenant: beta}", unaryCall, map[string]string{"x-tenant": "prod"}, false},
		{"metadata, any value", "metadata: {x-debug: ''}", unaryCall, map[string]string{"x-debug": "1"}, true},
		{"metadata absent", "metadata: {x-debug: ''}", unaryCall, nil, false},
		{"service and metadata", "service: grpc.testing.TestService, metadata: {x-a: '1'}", unaryCall, map[string]string{"x-a": "1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := inject.ParseSpecFor(inject.LayerGRPC, "abort", []byte("{"+tt.params+"}"))
			if err != nil {
				t.Fatal(err)
			}
			b := inject.NewBoard(1, nil)
			activate(t, b, "f", s)
			r := httptest.NewRequest(http.MethodPost, tt.path, nil)
			r.Header.Set("Content-Type", "application/grpc")
			for k, v := range tt.md {
				r.Header.Set(k, v)
			}
			w := &headerRecorder{h: http.Header{}}
			b.Middleware(&upstream{}).ServeHTTP(w, r)
			if got := w.h.Get(inject.FaultHeader) != ""; got != tt.want {
				t.Errorf("aborted = %v, want %v", got, tt.want)
			}
		})
	}
}

// streamService is a gRPC upstream: StreamingOutputCall sends the
// messages asked for, UnaryCall answers at once.
type streamService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (streamService) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{}, nil
}

func (streamService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range req.ResponseParameters {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.Size)}}); err != nil {
			return err
		}
	}
	return nil
}

// TestGRPCKinds_ThroughBoard puts a Board's middleware straight in front
// of a gRPC server (grpc-go's http.Handler), on an h2c server, with no
// proxy: the gRPC faults work wherever the Board does.
func TestGRPCKinds_ThroughBoard(t *testing.T) {
	tests := []struct {
		kind, params string
		wantCode     codes.Code
		wantMsgs     int
		minTook      time.Duration
	}{
		{"abort", "code: UNAUTHENTICATED, message: who are you", codes.Unauthenticated, 0, 0},
		{"stream_error", "after: 2, code: ABORTED", codes.Aborted, 2, 0},
		{"reset", "after: 1", codes.Internal, 1, 0},
		{"delay", "delay: 100ms", codes.OK, 4, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			gs := grpc.NewServer()
			testgrpc.RegisterTestServiceServer(gs, streamService{})
			t.Cleanup(gs.Stop)
			s, err := inject.ParseSpecFor(inject.LayerGRPC, tt.kind, []byte("{"+tt.params+"}"))
			if err != nil {
				t.Fatal(err)
			}
			b := inject.NewBoard(1, nil)
			activate(t, b, tt.kind, s)
			srv := httptest.NewUnstartedServer(b.Middleware(gs))
			var protos http.Protocols
			protos.SetUnencryptedHTTP2(true)
			srv.Config.Protocols = &protos
			srv.Start()
			t.Cleanup(srv.Close)

			conn, err := grpc.NewClient("passthrough:///"+srv.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			req := &testgrpc.StreamingOutputCallRequest{}
			for range 4 {
				req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: 10})
			}
			start := time.Now()
			stream, err := testgrpc.NewTestServiceClient(conn).StreamingOutputCall(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			msgs := 0
			for {
				if _, err = stream.Recv(); err != nil {
					break
				}
				msgs++
			}
			took := time.Since(start)
			if errors.Is(err, io.EOF) {
				err = nil // the stream ended well
			}
			if code := status.Code(err); code != tt.wantCode || msgs != tt.wantMsgs || took < tt.minTook {
				t.Errorf("%v (%v) after %d messages in %v; want %v after %d, at least %v", code, err, msgs, took, tt.wantCode, tt.wantMsgs, tt.minTook)
			}
		})
	}
}

// FuzzParseSpecFor_GRPC throws arbitrary parameters at every gRPC kind:
// each is refused with a SpecError or builds, and what Params shows of it
// parses back.
func FuzzParseSpecFor_GRPC(f *testing.F) {
	kinds := inject.KindsFor(inject.LayerGRPC)
	for _, s := range []string{
		`{"code": "UNAVAILABLE", "message": "x", "method": "/a.B/C"}`,
		`{"delay": "10ms", "jitter": "1ms", "metadata": {"x-a": ""}}`,
		`{"after": 3, "code": 14, "service": "a.B"}`,
		`{"side": "request", "remove": ["grpc-timeout"]}`,
		`{"rate": "1KiB", "method_pattern": "(", "percent": 50}`,
		`code: -1`, `after: 1e30`, `[]`, ``,
	} {
		for i := range kinds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, params string) {
		kind := kinds[int(k)%len(kinds)]
		s, err := inject.ParseSpecFor(inject.LayerGRPC, kind, []byte(params))
		if err != nil {
			var se *inject.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("%s %q: %T %v, want a SpecError", kind, params, err, err)
			}
			return
		}
		_ = s.(inject.HTTPSpec).Build()
		b, err := json.Marshal(inject.Params(s))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inject.ParseSpecFor(inject.LayerGRPC, kind, b); err != nil {
			t.Fatalf("%s %q: Params %s do not parse back: %v", kind, params, b, err)
		}
	})
}

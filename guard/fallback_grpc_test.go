package guard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/internal/demo/demopb"
)

// How the orders upstream of the gRPC fallback tests answers.
const (
	ordersUp       int32 = iota // every call succeeds
	ordersDown                  // every call fails with UNAVAILABLE before it sends anything
	ordersBreaking              // a stream sends one order, then fails with UNAVAILABLE
)

// orders is the upstream of the gRPC fallback tests: a real gRPC service
// whose health the test sets.
type orders struct {
	demopb.UnimplementedOrdersServer
	mode  atomic.Int32
	calls atomic.Int32
}

func (o *orders) GetOrder(_ context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
	o.calls.Add(1)
	if o.mode.Load() != ordersUp {
		return nil, status.Error(codes.Unavailable, "orders are down")
	}
	return &demopb.Order{Id: req.GetId(), Status: "shipped", Currency: "EUR", TotalCents: 1250}, nil
}

func (o *orders) ListOrders(_ *demopb.ListOrdersRequest, stream grpc.ServerStreamingServer[demopb.Order]) error {
	o.calls.Add(1)
	mode := o.mode.Load()
	if mode == ordersDown {
		return status.Error(codes.Unavailable, "orders are down")
	}
	if err := stream.Send(&demopb.Order{Id: 1, Status: "shipped"}); err != nil {
		return err
	}
	if mode == ordersBreaking {
		return status.Error(codes.Unavailable, "orders went down mid-stream")
	}
	return nil
}

// guardedOrders serves svc on loopback behind a reverse proxy guarded by
// chain, built as the harness proxy is: h2c from the client, h2c to the
// upstream, and an unreachable upstream answered UNAVAILABLE with
// UpstreamErrorHeader. It returns a client of the proxy and a function
// that stops the upstream; everything stops at the test's end.
func guardedOrders(t *testing.T, svc demopb.OrdersServer, chain *guard.Chain) (demopb.OrdersClient, func()) {
	t.Helper()
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	demopb.RegisterOrdersServer(gs, svc)
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(upLn) })
	stopUpstream := sync.OnceFunc(gs.Stop)
	t.Cleanup(func() { stopUpstream(); wg.Wait() })

	var upProtos http.Protocols
	upProtos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &upProtos}
	up := &url.URL{Scheme: "http", Host: upLn.Addr().String()}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(up) },
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			h := w.Header()
			h.Set(guard.UpstreamErrorHeader, "upstream")
			h.Set("Content-Type", "application/grpc")
			h.Set("Grpc-Status", "14")
			w.WriteHeader(http.StatusOK)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: chain.Middleware(rp), Protocols: &protos}
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })

	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return demopb.NewOrdersClient(conn), stopUpstream
}

// newGRPCFallback builds a fallback from the default config with edit
// applied.
func newGRPCFallback(t *testing.T, edit func(*guard.FallbackConfig)) *guard.Fallback {
	t.Helper()
	c := guard.DefaultFallbackConfig()
	edit(&c)
	f, err := guard.NewFallback("orders", c, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// getOrder calls GetOrder and returns the order, the fallback kind its
// header metadata names and the call's error.
func getOrder(t *testing.T, c demopb.OrdersClient, id int64) (*demopb.Order, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var md metadata.MD
	o, err := c.GetOrder(ctx, &demopb.GetOrderRequest{Id: id}, grpc.Header(&md))
	return o, first(md, guard.FallbackHeader), err
}

// listOrders reads a ListOrders stream to its end and returns the orders,
// the fallback kind and the error it ended with (nil for OK).
func listOrders(t *testing.T, c demopb.OrdersClient) ([]*demopb.Order, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := c.ListOrders(ctx, &demopb.ListOrdersRequest{})
	if err != nil {
		return nil, "", err
	}
	var got []*demopb.Order
	for {
		o, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if err != nil || o == nil {
			md, _ := stream.Header()
			return got, first(md, guard.FallbackHeader), err
		}
		got = append(got, o)
	}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFallback_GRPCStub: a gRPC client whose upstream fails gets the stub
// — a serialized message, inline or from a file — as a successful call.
func TestFallback_GRPCStub(t *testing.T) {
	stub := &demopb.Order{Id: 7, Status: "unknown", Currency: "EUR"}
	file := filepath.Join(t.TempDir(), "order.binpb")
	if err := os.WriteFile(file, mustMarshal(t, stub), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		edit     func(*guard.FallbackConfig)
		want     *demopb.Order
		wantKind string
	}{
		{"inline body", func(c *guard.FallbackConfig) { c.Body = string(mustMarshal(t, stub)) }, stub, guard.FallbackStatic},
		{"stub file", func(c *guard.FallbackConfig) { c.File = file }, stub, guard.FallbackFile},
		{"an empty body is an empty message", func(*guard.FallbackConfig) {}, &demopb.Order{}, guard.FallbackStatic},
		{"the HTTP status and content type are not the call's", func(c *guard.FallbackConfig) {
			c.Body, c.Status, c.ContentType = string(mustMarshal(t, stub)), http.StatusAccepted, "application/json"
		}, stub, guard.FallbackStatic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &orders{}
			svc.mode.Store(ordersDown)
			f := newGRPCFallback(t, tt.edit)
			client, _ := guardedOrders(t, svc, guard.NewChain(f))
			got, kind, err := getOrder(t, client, 42)
			if err != nil {
				t.Fatalf("GetOrder: %v; want the fallback's stub as a successful call", err)
			}
			if !proto.Equal(got, tt.want) || kind != tt.wantKind {
				t.Errorf("GetOrder = %v, fallback %q; want %v, %q", got, kind, tt.want, tt.wantKind)
			}
			if svc.calls.Load() != 1 {
				t.Errorf("upstream calls %d, want 1", svc.calls.Load())
			}
		})
	}
	t.Run("a stream gets the stub as its one message", func(t *testing.T) {
		svc := &orders{}
		svc.mode.Store(ordersDown)
		f := newGRPCFallback(t, func(c *guard.FallbackConfig) { c.File = file })
		client, _ := guardedOrders(t, svc, guard.NewChain(f))
		got, kind, err := listOrders(t, client)
		if err != nil || len(got) != 1 || !proto.Equal(got[0], stub) || kind != guard.FallbackFile {
			t.Errorf("ListOrders = %v, %v, fallback %q; want the stub, OK, %q", got, err, kind, guard.FallbackFile)
		}
	})
	t.Run("a successful call passes untouched", func(t *testing.T) {
		f := newGRPCFallback(t, func(c *guard.FallbackConfig) { c.File = file })
		client, _ := guardedOrders(t, &orders{}, guard.NewChain(f))
		got, kind, err := getOrder(t, client, 42)
		if err != nil || got.GetId() != 42 || got.GetStatus() != "shipped" || kind != "" {
			t.Errorf("GetOrder = %v, %v, fallback %q; want the upstream's order", got, err, kind)
		}
		if st := f.FallbackStats(); st.Served != 1 || st.File != 0 {
			t.Errorf("stats %+v, want one served by the upstream", st)
		}
	})
}

// TestFallback_GRPCLastGood: once the upstream fails, a gRPC client gets
// the last good reply of the same method; a call that failed after it
// had started is never kept.
func TestFallback_GRPCLastGood(t *testing.T) {
	stub := &demopb.Order{Status: "stub"}
	lastGood := func(c *guard.FallbackConfig) {
		c.Body = string(mustMarshal(t, stub))
		c.LastGood.Entries = 10
	}
	t.Run("unary", func(t *testing.T) {
		svc := &orders{}
		f := newGRPCFallback(t, lastGood)
		client, stopUpstream := guardedOrders(t, svc, guard.NewChain(f))
		good, _, err := getOrder(t, client, 42)
		if err != nil {
			t.Fatalf("GetOrder while the upstream is up: %v", err)
		}
		svc.mode.Store(ordersDown)
		got, kind, err := getOrder(t, client, 42)
		if err != nil || !proto.Equal(got, good) || kind != guard.FallbackLastGood {
			t.Errorf("GetOrder while the upstream fails = %v, %v, fallback %q; want %v, OK, %q", got, err, kind, good, guard.FallbackLastGood)
		}
		stopUpstream()
		got, kind, err = getOrder(t, client, 42)
		if err != nil || !proto.Equal(got, good) || kind != guard.FallbackLastGood {
			t.Errorf("GetOrder with the upstream gone = %v, %v, fallback %q; want %v, OK, %q", got, err, kind, good, guard.FallbackLastGood)
		}
		if st := f.FallbackStats(); st.LastGood != 2 || st.Served != 1 {
			t.Errorf("stats %+v, want one served, two last good", st)
		}
	})
	t.Run("a compressed reply is replayed with its encoding", func(t *testing.T) {
		svc := &orders{}
		f := newGRPCFallback(t, lastGood)
		client, _ := guardedOrders(t, svc, guard.NewChain(f))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		good, err := client.GetOrder(ctx, &demopb.GetOrderRequest{Id: 42}, grpc.UseCompressor(gzip.Name))
		if err != nil {
			t.Fatalf("GetOrder while the upstream is up: %v", err)
		}
		svc.mode.Store(ordersDown)
		got, kind, err := getOrder(t, client, 42) // a client that asks for no compression, accepting gzip
		if err != nil || !proto.Equal(got, good) || kind != guard.FallbackLastGood {
			t.Errorf("GetOrder while the upstream fails = %v, %v, fallback %q; want %v, OK, %q", got, err, kind, good, guard.FallbackLastGood)
		}
	})
	t.Run("a stream that failed after its first message is not kept", func(t *testing.T) {
		svc := &orders{}
		f := newGRPCFallback(t, lastGood)
		client, _ := guardedOrders(t, svc, guard.NewChain(f))
		steps := []struct {
			mode     int32
			want     []*demopb.Order
			wantCode codes.Code
			wantKind string
		}{
			// Too late for a fallback: the client sees the order and the failure.
			{ordersBreaking, []*demopb.Order{{Id: 1, Status: "shipped"}}, codes.Unavailable, ""},
			// Had the broken stream been kept, this would replay it.
			{ordersDown, []*demopb.Order{stub}, codes.OK, guard.FallbackStatic},
			{ordersUp, []*demopb.Order{{Id: 1, Status: "shipped"}}, codes.OK, ""},
			{ordersDown, []*demopb.Order{{Id: 1, Status: "shipped"}}, codes.OK, guard.FallbackLastGood},
		}
		for i, s := range steps {
			svc.mode.Store(s.mode)
			got, kind, err := listOrders(t, client)
			if status.Code(err) != s.wantCode || kind != s.wantKind || len(got) != len(s.want) {
				t.Fatalf("call %d: %v, %v, fallback %q; want %v, %v, %q", i+1, got, err, kind, s.want, s.wantCode, s.wantKind)
			}
			for j := range got {
				if !proto.Equal(got[j], s.want[j]) {
					t.Errorf("call %d, message %d: %v, want %v", i+1, j+1, got[j], s.want[j])
				}
			}
		}
	})
}

// grpcAnswer writes a gRPC response as an HTTP handler sees one: a framed
// message and grpc-status in a trailer, or (with no message) a
// trailers-only response with grpc-status in the headers.
func grpcAnswer(w http.ResponseWriter, msg []byte, code codes.Code) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc+proto")
	if msg == nil {
		h.Set("Grpc-Status", itoa(int(code)))
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	w.Write(append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...))
	// The header map is asked for again, as a handler must: the guard's
	// writer gives out the client's only once the answer is committed.
	w.Header().Set("Grpc-Status", itoa(int(code)))
}

// TestFallback_GRPCAnswer checks the fallback's gRPC answer as an HTTP
// handler writes it: status 200, the call's content type, the framed
// message, grpc-status 0 in a trailer and FallbackHeader in the headers.
func TestFallback_GRPCAnswer(t *testing.T) {
	good := []byte("\x08\x2a") // an Order with id 42
	tests := []struct {
		name     string
		edit     func(*guard.FallbackConfig)
		answers  []func(http.ResponseWriter) // the upstream's, in turn
		wantBody string
		wantKind string
	}{
		{"a failure gets the static stub", func(c *guard.FallbackConfig) { c.Body = "\x08\x07" },
			[]func(http.ResponseWriter){func(w http.ResponseWriter) { grpcAnswer(w, nil, codes.Unavailable) }},
			"\x00\x00\x00\x00\x02\x08\x07", guard.FallbackStatic},
		{"an empty stub is one empty message", nil,
			[]func(http.ResponseWriter){func(w http.ResponseWriter) { grpcAnswer(w, nil, codes.Internal) }},
			"\x00\x00\x00\x00\x00", guard.FallbackStatic},
		{"the last good reply is replayed", func(c *guard.FallbackConfig) { c.LastGood.Entries = 1 },
			[]func(http.ResponseWriter){
				func(w http.ResponseWriter) { grpcAnswer(w, good, codes.OK) },
				func(w http.ResponseWriter) { grpcAnswer(w, nil, codes.Unavailable) },
			}, "\x00\x00\x00\x00\x02\x08\x2a", guard.FallbackLastGood},
		{"a reply that ended in an error is not kept", func(c *guard.FallbackConfig) { c.LastGood.Entries = 1 },
			[]func(http.ResponseWriter){
				func(w http.ResponseWriter) { grpcAnswer(w, good, codes.DataLoss) },
				func(w http.ResponseWriter) { grpcAnswer(w, nil, codes.Unavailable) },
			}, "\x00\x00\x00\x00\x00", guard.FallbackStatic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newGRPCFallback(t, func(c *guard.FallbackConfig) {
				if tt.edit != nil {
					tt.edit(c)
				}
			})
			var n atomic.Int32
			h := guard.NewChain(f).Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				tt.answers[int(n.Add(1))-1](w)
			}))
			var res *http.Response
			for range tt.answers {
				r := httptest.NewRequest(http.MethodPost, "/resctl.demo.v1.Orders/GetOrder", nil)
				r.Header.Set("Content-Type", "application/grpc+proto")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				res = rec.Result()
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/grpc+proto" {
				t.Errorf("status %d, content type %q; want 200, the call's", res.StatusCode, res.Header.Get("Content-Type"))
			}
			if string(body) != tt.wantBody || res.Header.Get(guard.FallbackHeader) != tt.wantKind {
				t.Errorf("body %q, fallback %q; want %q, %q", body, res.Header.Get(guard.FallbackHeader), tt.wantBody, tt.wantKind)
			}
			if res.Trailer.Get("Grpc-Status") != "0" || res.Header.Get("Grpc-Status") != "" {
				t.Errorf("trailer grpc-status %q, header grpc-status %q; want 0 in the trailer alone",
					res.Trailer.Get("Grpc-Status"), res.Header.Get("Grpc-Status"))
			}
		})
	}
	t.Run("an HTTP response is not replayed to a gRPC call", func(t *testing.T) {
		f := newGRPCFallback(t, func(c *guard.FallbackConfig) { c.LastGood.Entries = 1 })
		h := guard.NewChain(f).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				io.WriteString(w, `{"orders":[]}`)
				return
			}
			grpcAnswer(w, nil, codes.Unavailable)
		}))
		const path = "/resctl.demo.v1.Orders/GetOrder"
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("Content-Type", "application/grpc")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if kind := rec.Header().Get(guard.FallbackHeader); kind != guard.FallbackStatic || rec.Body.String() != "\x00\x00\x00\x00\x00" {
			t.Errorf("fallback %q, body %q; want the static stub as an empty message", kind, rec.Body)
		}
	})
}

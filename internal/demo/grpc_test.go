package demo

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/resctl/resctl/internal/demo/demopb"
)

// dialGRPC opens a real gRPC connection (h2c) to r, closed at test end.
func dialGRPC(t *testing.T, r *Running) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(r.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// noDelay makes a server whose calls take no sampled time, so tests
// exercise behaviour rather than the latency model.
func noDelay() *Server {
	s := New(Options{Seed: 1})
	s.delay = func(latencyProfile) time.Duration { return 0 }
	return s
}

func TestGRPC_GetOrder(t *testing.T) {
	r := startTest(t, noDelay())
	c := demopb.NewOrdersClient(dialGRPC(t, r))
	tests := []struct {
		name string
		id   int64
		want codes.Code
	}{
		{"found", 7, codes.OK},
		{"zero", 0, codes.NotFound},
		{"negative", -3, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.GetOrder(t.Context(), &demopb.GetOrderRequest{Id: tt.id})
			if code := status.Code(err); code != tt.want {
				t.Fatalf("GetOrder(%d): code %v (%v), want %v", tt.id, code, err, tt.want)
			}
			if tt.want != codes.OK {
				return
			}
			if want := orderPB(orderFor(tt.id)); !proto.Equal(got, want) {
				t.Errorf("GetOrder(%d) = %v, want %v", tt.id, got, want)
			}
		})
	}
}

func TestGRPC_ListOrders(t *testing.T) {
	r := startTest(t, noDelay())
	c := demopb.NewOrdersClient(dialGRPC(t, r))
	tests := []struct {
		name  string
		limit int32
		want  int // orders streamed
		code  codes.Code
	}{
		{"default", 0, 5, codes.OK},
		{"limit", 12, 12, codes.OK},
		{"at most", maxListLimit, maxListLimit, codes.OK},
		{"too many", maxListLimit + 1, 0, codes.InvalidArgument},
		{"negative", -1, 0, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := c.ListOrders(t.Context(), &demopb.ListOrdersRequest{Limit: tt.limit})
			if err != nil {
				t.Fatalf("ListOrders: %v", err)
			}
			var ids []int64
			for {
				o, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if code := status.Code(err); code != tt.code {
						t.Fatalf("Recv: code %v (%v), want %v", code, err, tt.code)
					}
					break
				}
				ids = append(ids, o.GetId())
			}
			if len(ids) != tt.want {
				t.Fatalf("streamed %d orders, want %d", len(ids), tt.want)
			}
			for i, id := range ids {
				if id != int64(i+1) {
					t.Fatalf("order %d has id %d, want %d", i, id, i+1)
				}
			}
		})
	}
}

func TestGRPC_RecordOrders(t *testing.T) {
	r := startTest(t, noDelay())
	c := demopb.NewOrdersClient(dialGRPC(t, r))
	tests := []struct {
		name   string
		orders []*demopb.Order
		want   *demopb.RecordOrdersResponse
		code   codes.Code
	}{
		{"none", nil, &demopb.RecordOrdersResponse{}, codes.OK},
		{"three", []*demopb.Order{
			{Items: []*demopb.Item{{Sku: "A", Quantity: 2, PriceCents: 100}}},
			{Items: []*demopb.Item{{Sku: "B", Quantity: 1, PriceCents: 250}, {Sku: "C", Quantity: 3, PriceCents: 10}}},
			{},
		}, &demopb.RecordOrdersResponse{Count: 3, TotalCents: 480}, codes.OK},
		{"negative quantity", []*demopb.Order{{Items: []*demopb.Item{{Quantity: -1}}}}, nil, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := c.RecordOrders(t.Context())
			if err != nil {
				t.Fatalf("RecordOrders: %v", err)
			}
			for _, o := range tt.orders {
				if err := stream.Send(o); err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("Send: %v", err)
				}
			}
			got, err := stream.CloseAndRecv()
			if code := status.Code(err); code != tt.code {
				t.Fatalf("CloseAndRecv: code %v (%v), want %v", code, err, tt.code)
			}
			if tt.code == codes.OK && !proto.Equal(got, tt.want) {
				t.Errorf("response %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGRPC_Track(t *testing.T) {
	r := startTest(t, noDelay())
	c := demopb.NewOrdersClient(dialGRPC(t, r))
	stream, err := c.Track(t.Context())
	if err != nil {
		t.Fatalf("Track: %v", err)
	}
	// Each request is answered before the next is sent: a real
	// conversation, not a batch.
	for _, id := range []int64{3, 1, 42} {
		if err := stream.Send(&demopb.TrackRequest{OrderId: id}); err != nil {
			t.Fatalf("Send(%d): %v", id, err)
		}
		u, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv after %d: %v", id, err)
		}
		if u.GetOrderId() != id || u.GetStatus() != orderFor(id).Status {
			t.Errorf("update %v, want order %d with status %q", u, id, orderFor(id).Status)
		}
	}
	if err := stream.Send(&demopb.TrackRequest{OrderId: 0}); err != nil {
		t.Fatalf("Send(0): %v", err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.NotFound {
		t.Fatalf("Recv after id 0: %v, want NotFound", err)
	}

	// A stream the client ends cleanly ends cleanly.
	ok, err := c.Track(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := ok.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after CloseSend: %v, want EOF", err)
	}
}

func TestGRPC_Reflection(t *testing.T) {
	r := startTest(t, noDelay())
	rc := reflectionpb.NewServerReflectionClient(dialGRPC(t, r))
	stream, err := rc.ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "resctl.demo.v1.Orders") {
		t.Errorf("reflection lists %v, want resctl.demo.v1.Orders among them", names)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after CloseSend: %v, want EOF", err)
	}
}

// The gRPC service shares the port with the HTTP API: both answer, each
// counted in its own metrics.
func TestGRPC_SamePortAsHTTP(t *testing.T) {
	s := noDelay()
	r := startTest(t, s)
	c := demopb.NewOrdersClient(dialGRPC(t, r))
	for _, id := range []int64{1, 2, 0} {
		_, _ = c.GetOrder(t.Context(), &demopb.GetOrderRequest{Id: id})
	}
	if resp := do(t, newClient(t), "GET", r.URL()+"/api/orders/1", ""); resp.status != 200 {
		t.Fatalf("HTTP GET /api/orders/1 beside gRPC: status %d", resp.status)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	h2 := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if resp := do(t, h2, "GET", r.URL()+"/api/orders/1", ""); resp.status != 200 || resp.proto != 2 {
		t.Fatalf("h2c GET /api/orders/1 beside gRPC: status %d, HTTP/%d", resp.status, resp.proto)
	}

	resp := do(t, newClient(t), "GET", r.URL()+"/metrics", "")
	lines := metricLines(resp.body)
	want := map[string]string{
		`demo_grpc_requests_total{code="OK",method="resctl.demo.v1.Orders/GetOrder"}`:       "2",
		`demo_grpc_requests_total{code="NotFound",method="resctl.demo.v1.Orders/GetOrder"}`: "1",
		`demo_grpc_request_duration_seconds_count{method="resctl.demo.v1.Orders/GetOrder"}`: "3",
		// Pre-initialised even though never called.
		`demo_grpc_request_duration_seconds_count{method="resctl.demo.v1.Orders/Track"}`: "0",
		// gRPC calls are not HTTP requests of the API.
		`demo_http_requests_total{code="200",method="GET",route="GET /api/orders/{id}"}`: "2",
	}
	for k, v := range want {
		if got, ok := lines[k]; !ok || got != v {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if _, ok := lines[`demo_http_requests_total{code="404",method="POST",route="unmatched"}`]; ok {
		t.Error("gRPC calls counted as unmatched HTTP requests")
	}
}

// A call whose client gives up during its sampled delay ends at once, with
// the client's cancellation, and is counted as CANCELLED.
func TestGRPC_CancelledCallStopsHandler(t *testing.T) {
	s := New(Options{})
	delaying := make(chan struct{}, 1)
	s.delay = func(latencyProfile) time.Duration {
		delaying <- struct{}{}
		return time.Hour
	}
	r := startTest(t, s)
	c := demopb.NewOrdersClient(dialGRPC(t, r))

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.GetOrder(ctx, &demopb.GetOrderRequest{Id: 1})
		errc <- err
	}()
	<-delaying
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Fatalf("GetOrder after cancel: %v, want Canceled", err)
	}
	waitFor(t, "handler to finish", func() bool {
		return grpcCount(t, s, "resctl.demo.v1.Orders/GetOrder", "Canceled") == 1
	})
}

// Latencies are drawn as for the HTTP endpoints: a call takes the delay
// the sampler picked for its profile.
func TestGRPC_UsesLatencyProfiles(t *testing.T) {
	s := New(Options{Seed: 1})
	var asked []latencyProfile
	done := make(chan struct{}, 10)
	s.delay = func(p latencyProfile) time.Duration {
		asked = append(asked, p)
		done <- struct{}{}
		return 0
	}
	r := startTest(t, s)
	c := demopb.NewOrdersClient(dialGRPC(t, r))
	if _, err := c.GetOrder(t.Context(), &demopb.GetOrderRequest{Id: 1}); err != nil {
		t.Fatal(err)
	}
	<-done
	ls, err := c.ListOrders(t.Context(), &demopb.ListOrdersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ls.Recv(); err != nil {
			break
		}
	}
	<-done
	rs, err := c.RecordOrders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	<-done
	want := []latencyProfile{latOrderGet, latOrdersList, latOrderCreate}
	if !slices.Equal(asked, want) {
		t.Errorf("profiles drawn %v, want %v", asked, want)
	}
}

func grpcCount(t *testing.T, s *Server, method, code string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "demo_grpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var gotMethod, gotCode string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "method":
					gotMethod = l.GetValue()
				case "code":
					gotCode = l.GetValue()
				}
			}
			if gotMethod == method && gotCode == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

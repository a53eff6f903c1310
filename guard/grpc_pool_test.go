package guard_test

import (
	"context"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/internal/demo/demopb"
)

// TestGRPCPool spreads a gRPC client's calls over three instances, one of
// them answering UNAVAILABLE to everything: every instance gets calls (the
// pool tries one that has not answered before others), the failing one's
// failure ejects it and the client interceptor's retry sends that call
// again, to an instance that answers — so every call succeeds —, the
// ejected one gets no more calls, and nothing is left in flight.
func TestGRPCPool(t *testing.T) {
	var calls [3]atomic.Int32
	var urls []string
	for i := range calls {
		urls = append(urls, "http://"+serveOrders(t, &counted{calls: &calls[i], down: i == 0}))
	}
	ej := guard.DefaultEjectionConfig()
	ej.ConsecutiveFailures = 1
	pool, err := guard.NewBalancer(urls, ej, guard.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	target, opt := guard.GRPCPool(pool)
	conn, err := grpc.NewClient(target, opt, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(chainOf(t, fastRetry(""), guard.Options{Seed: 1}))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := demopb.NewOrdersClient(conn)
	call := func(i int) {
		t.Helper()
		o, err := client.GetOrder(context.Background(), &demopb.GetOrderRequest{Id: int64(i)})
		if err != nil || o.GetId() != int64(i) {
			t.Fatalf("call %d: %v, %v", i, o, err)
		}
	}
	// Bounded: a pool that never spreads or never ejects fails here.
	for i := 0; calls[1].Load() == 0 || calls[2].Load() == 0 || !pool.Stats()[0].Ejected; i++ {
		if i == 1000 {
			t.Fatalf("after 1000 calls the instances served %d, %d and %d; pool %+v", calls[0].Load(), calls[1].Load(), calls[2].Load(), pool.Stats())
		}
		call(i)
	}
	failed := calls[0].Load()
	for i := range 50 {
		call(i)
	}
	s := pool.Stats()
	if failed == 0 || calls[0].Load() != failed || s[0].Requests[guard.Upstream5xx] != uint64(failed) {
		t.Errorf("the failing instance: %+v; %d calls before its ejection, %d after, want some before and none after", s[0], failed, calls[0].Load()-failed)
	}
	for _, st := range s {
		if st.InFlight != 0 {
			t.Errorf("%s: %d in flight after every call ended", st.Addr, st.InFlight)
		}
	}

	// A second pool in the same process resolves under a scheme of its
	// own, to its own instances.
	other, err := guard.NewBalancer(urls[1:2], ej, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target2, opt2 := guard.GRPCPool(other)
	if target2 == target {
		t.Fatalf("two pools share the target %s", target)
	}
	conn2, err := grpc.NewClient(target2, opt2, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	before := calls[1].Load()
	if _, err := demopb.NewOrdersClient(conn2).GetOrder(context.Background(), &demopb.GetOrderRequest{Id: 1}); err != nil || calls[1].Load() != before+1 {
		t.Errorf("the second pool's call: %v, instance 1 served %d more", err, calls[1].Load()-before)
	}
}

// counted serves orders, or, if down, answers UNAVAILABLE; it counts the
// calls it gets.
type counted struct {
	demopb.UnimplementedOrdersServer
	calls *atomic.Int32
	down  bool
}

func (s *counted) GetOrder(_ context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
	s.calls.Add(1)
	if s.down {
		return nil, status.Error(codes.Unavailable, "down")
	}
	return &demopb.Order{Id: req.GetId()}, nil
}

package harness_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// clockFunc adapts a fakeClock to guard.Clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// TestProxy_Traffic: requests land in the second of the proxy's clock they
// end in; the admin API answers completed seconds only, after the one
// asked, with their counts, errors, statuses, percentiles and a histogram
// that adds up; a tcp proxy answers none.
func TestProxy_Traffic(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 300e6, time.UTC)}
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}), false)
	admin := harness.NewAdmin(harness.AdminOptions{})
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	p := startProxy(t, harness.Options{Upstream: up.URL, Admin: admin, Clock: clockFunc(clk.now)})
	if err := admin.Add("web", harness.ProtocolHTTP, p); err != nil {
		t.Fatal(err)
	}
	db := startTCP(t, tcpServer(t, echo), inject.NewBoard(1, nil))
	if err := admin.Add("db", harness.ProtocolTCP, db); err != nil {
		t.Fatal(err)
	}
	hc := newClient(t, false)
	c := &harness.AdminClient{BaseURL: p.AdminURL(), HTTP: hc}
	send := func(paths ...string) {
		t.Helper()
		for _, path := range paths {
			get(t, hc, p.URL()+path)
		}
		// Every request is counted once none is in flight.
		if m := scrapeUntil(t, p, "resctl_proxy_in_flight_requests", 0); m["resctl_proxy_in_flight_requests"] != 0 {
			t.Fatal("requests still in flight")
		}
	}
	send("/ok", "/ok", "/ok")
	clk.advance(time.Second)
	send("/ok", "/fail", "/fail")

	page, err := c.Traffic(t.Context(), "web", -1)
	if err != nil {
		t.Fatal(err)
	}
	if !page.Start.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || page.Now != 1 || len(page.Seconds) != 1 {
		t.Fatalf("page %+v, want second 0 only, from the start of the proxy's second", page)
	}
	s0 := page.Seconds[0]
	if s0.S != 0 || s0.Requests != 3 || s0.Errors != 0 || s0.Codes["200"] != 3 || s0.P50Ms <= 0 || s0.P99Ms < s0.P50Ms || s0.MaxMs < s0.P99Ms*0.99 {
		t.Errorf("second 0 = %+v", s0)
	}
	var n int64
	for i, b := range s0.Hist {
		n += b[1]
		if i > 0 && b[0] <= s0.Hist[i-1][0] {
			t.Errorf("hist %v is not in ascending order", s0.Hist)
		}
	}
	if n != 3 {
		t.Errorf("hist %v counts %d requests, want 3", s0.Hist, n)
	}

	clk.advance(time.Second)
	page, err = c.Traffic(t.Context(), "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if page.Now != 2 || len(page.Seconds) != 1 {
		t.Fatalf("page %+v, want second 1 only", page)
	}
	if s1 := page.Seconds[0]; s1.S != 1 || s1.Requests != 3 || s1.Errors != 2 || s1.Codes["503"] != 2 || s1.Codes["200"] != 1 {
		t.Errorf("second 1 = %+v", s1)
	}
	if page, err := c.Traffic(t.Context(), "web", 1); err != nil || len(page.Seconds) != 0 {
		t.Errorf("after the last completed second: %+v %v, want none", page, err)
	}
	if page, err := c.Traffic(t.Context(), "db", -1); err != nil || page.Seconds == nil || len(page.Seconds) != 0 {
		t.Errorf("tcp proxy: %+v %v, want an empty list", page, err)
	}
}

// TestProxy_TrafficGRPC: a gRPC call that ends with a status other than
// OK is an error of its second, though its HTTP status is 200.
func TestProxy_TrafficGRPC(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	board := inject.NewBoard(1, nil)
	p := startProxy(t, harness.Options{Upstream: "http://" + startGRPCUpstream(t, newTestService()), Protocol: harness.ProtocolGRPC, Board: board, Clock: clockFunc(clk.now)})
	client := dialGRPC(t, p.Addr())
	if _, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	spec, err := inject.ParseSpecFor(inject.LayerGRPC, "abort", []byte(`{"code": "UNAVAILABLE"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := board.Activate("abort", spec); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want the abort's UNAVAILABLE", err)
	}
	scrapeUntil(t, p, "resctl_proxy_in_flight_requests", 0)
	clk.advance(time.Second)
	page := p.Traffic(-1)
	if len(page.Seconds) != 1 {
		t.Fatalf("page %+v, want one second", page)
	}
	if s := page.Seconds[0]; s.Requests != 2 || s.Errors != 1 || s.GRPC["OK"] != 1 || s.GRPC["Unavailable"] != 1 || s.Codes["200"] != 2 {
		t.Errorf("second 0 = %+v, want 2 calls, the UNAVAILABLE one an error", s)
	}
}

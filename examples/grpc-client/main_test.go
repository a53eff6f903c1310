package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestServe runs payments and orders over loopback, then stops payments:
// orders answers from the fallback, and its own /metrics shows its breaker
// open.
func TestServe(t *testing.T) {
	listen := func() net.Listener {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	pln, oln := listen(), listen()
	pctx, stopPayments := context.WithCancel(context.Background())
	paymentsDone := make(chan error, 1)
	go func() { paymentsDone <- servePayments(pctx, pln) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, oln, pln.Addr().String()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + oln.Addr().String()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}

	if got := get("/api/orders"); !strings.Contains(got, `"payments":"SERVING"`) {
		t.Errorf("healthy: %s", got)
	}
	stopPayments()
	<-paymentsDone
	for range 20 {
		if got := get("/api/orders"); !strings.Contains(got, `"payments":"UNKNOWN"`) {
			t.Errorf("payments down: %s, want the fallback's UNKNOWN", got)
		}
	}
	m := get("/metrics")
	for _, want := range []string{
		`resctl_guard_state{kind="breaker",policy="payments",state="open"} 1`,
		`orders_payments_unknown_total 20`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

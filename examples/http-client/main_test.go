package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestServe runs the service over loopback in front of a payments API the
// test breaks: its answers carry payments' body while payments is up, the
// fallback's once it fails, and its own /metrics shows its breaker open.
func TestServe(t *testing.T) {
	var down atomic.Bool
	var calls atomic.Int32
	payments := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"paid":true}`)
	}))
	defer payments.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, payments.URL) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + ln.Addr().String()
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

	if got := get("/api/orders"); !strings.Contains(got, `"payments":{"paid":true}`) {
		t.Errorf("healthy: %s", got)
	}
	down.Store(true)
	for range 20 {
		if got := get("/api/orders"); !strings.Contains(got, `"stale":true`) {
			t.Errorf("payments down: %s, want the fallback", got)
		}
	}
	m := get("/metrics")
	for _, want := range []string{
		`resctl_guard_state{kind="breaker",policy="payments",state="open"} 1`,
		`resctl_guard_retries_total{kind="retry",policy="payments"}`,
		`orders_fallbacks_total 20`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The breaker opened after min_calls failures: payments saw far fewer
	// calls than the 20 orders with their retries would have made.
	if n := calls.Load(); n >= 30 {
		t.Errorf("payments saw %d calls while down; the breaker should have stopped most", n)
	}
}

package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/resctl/resctl/inject/agent"
)

// startTest starts a demo server on loopback and closes it at test end.
func startTest(t *testing.T, s *Server) *Running {
	t.Helper()
	if s == nil {
		s = New(Options{Seed: 1})
	}
	r, err := start("127.0.0.1:0", s)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// newClient returns an HTTP/1.1 client whose idle connections are closed at
// test end (so goleak sees no transport goroutines).
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   string
	proto  int
}

func do(t *testing.T, c *http.Client, method, url, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), proto: resp.ProtoMajor}
}

func TestEndpoints(t *testing.T) {
	r := startTest(t, nil)
	c := newClient(t)

	tests := []struct {
		name, method, path, body string
		status                   int
		ctype                    string
		check                    func(t *testing.T, body string)
	}{
		{name: "list orders", method: "GET", path: "/api/orders", status: 200, ctype: "application/json",
			check: func(t *testing.T, body string) {
				var orders []Order
				mustJSON(t, body, &orders)
				if len(orders) < 3 {
					t.Fatalf("got %d orders, want a few", len(orders))
				}
				for _, o := range orders {
					if o.ID <= 0 || len(o.Items) == 0 || o.TotalCents != total(o.Items) {
						t.Errorf("malformed order %+v", o)
					}
				}
			}},
		{name: "get order", method: "GET", path: "/api/orders/42", status: 200, ctype: "application/json",
			check: func(t *testing.T, body string) {
				var o Order
				mustJSON(t, body, &o)
				if o.ID != 42 {
					t.Errorf("id = %d, want 42", o.ID)
				}
			}},
		{name: "get order non-numeric", method: "GET", path: "/api/orders/abc", status: 404, ctype: "application/json",
			check: wantError(404)},
		{name: "get order zero", method: "GET", path: "/api/orders/0", status: 404, ctype: "application/json",
			check: wantError(404)},
		{name: "create order", method: "POST", path: "/api/orders",
			body:   `{"customer_id":7,"items":[{"sku":"WIDGET-1","quantity":2,"price_cents":499}]}`,
			status: 201, ctype: "application/json",
			check: func(t *testing.T, body string) {
				var o Order
				mustJSON(t, body, &o)
				if o.ID <= 0 || o.CustomerID != 7 || o.Status != "created" || len(o.Items) != 1 ||
					o.Items[0].SKU != "WIDGET-1" || o.TotalCents != 998 {
					t.Errorf("unexpected created order %+v", o)
				}
			}},
		{name: "create order bad json", method: "POST", path: "/api/orders", body: `{"customer_id":`,
			status: 400, ctype: "application/json", check: wantError(400)},
		{name: "create order too large", method: "POST", path: "/api/orders",
			body:   `{"customer_id":1,"pad":"` + strings.Repeat("x", 70<<10) + `"}`,
			status: 413, ctype: "application/json", check: wantError(413)},
		{name: "get user", method: "GET", path: "/api/users/3", status: 200, ctype: "application/json",
			check: func(t *testing.T, body string) {
				var u User
				mustJSON(t, body, &u)
				if u.ID != 3 || u.Name == "" || !strings.Contains(u.Email, "@") {
					t.Errorf("unexpected user %+v", u)
				}
			}},
		{name: "get user non-numeric", method: "GET", path: "/api/users/me", status: 404, ctype: "application/json",
			check: wantError(404)},
		{name: "slow", method: "GET", path: "/api/slow", status: 200, ctype: "application/json",
			check: func(t *testing.T, body string) {
				var m map[string]string
				mustJSON(t, body, &m)
				if m["status"] != "ok" {
					t.Errorf("body %q", body)
				}
			}},
		{name: "healthz", method: "GET", path: "/healthz", status: 200, ctype: "text/plain",
			check: func(t *testing.T, body string) {
				if body != "ok" {
					t.Errorf("body = %q, want %q", body, "ok")
				}
			}},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, ctype: "text/plain",
			check: func(t *testing.T, body string) {
				if !strings.Contains(body, "# TYPE demo_http_requests_total counter") {
					t.Error("metrics exposition lacks demo_http_requests_total")
				}
			}},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, ctype: "application/json",
			check: wantError(404)},
		{name: "wrong method", method: "DELETE", path: "/api/orders", status: 405, ctype: "application/json",
			check: wantError(405)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, c, tc.method, r.URL()+tc.path, tc.body)
			if resp.status != tc.status {
				t.Fatalf("status = %d, want %d; body %q", resp.status, tc.status, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type = %q, want prefix %q", ct, tc.ctype)
			}
			if tc.check != nil {
				tc.check(t, resp.body)
			}
		})
	}

	t.Run("latency header and location", func(t *testing.T) {
		resp := do(t, c, "POST", r.URL()+"/api/orders", `{"customer_id":1}`)
		if resp.status != 201 {
			t.Fatalf("status %d", resp.status)
		}
		if !strings.HasPrefix(resp.header.Get("Location"), "/api/orders/") {
			t.Errorf("Location = %q", resp.header.Get("Location"))
		}
		if _, err := time.ParseDuration(resp.header.Get("X-Demo-Latency")); err != nil {
			t.Errorf("X-Demo-Latency = %q: %v", resp.header.Get("X-Demo-Latency"), err)
		}
	})
	t.Run("allow header on 405", func(t *testing.T) {
		resp := do(t, c, "PUT", r.URL()+"/api/orders", "")
		if allow := resp.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
			t.Errorf("Allow = %q, want GET and POST", allow)
		}
	})
}

func TestMetricsExposition(t *testing.T) {
	r := startTest(t, nil)
	c := newClient(t)
	for range 3 {
		do(t, c, "GET", r.URL()+"/api/orders", "")
	}
	do(t, c, "GET", r.URL()+"/api/orders/17", "")
	do(t, c, "GET", r.URL()+"/api/orders/x", "")
	do(t, c, "GET", r.URL()+"/no/such/thing", "")

	resp := do(t, c, "GET", r.URL()+"/metrics", "")
	if resp.status != 200 {
		t.Fatalf("/metrics status %d", resp.status)
	}
	lines := metricLines(resp.body)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "demo_http_in_flight_requests"} {
		if _, ok := lines[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	want := map[string]string{
		`demo_http_requests_total{code="200",method="GET",route="GET /api/orders"}`:      "3",
		`demo_http_requests_total{code="200",method="GET",route="GET /api/orders/{id}"}`: "1",
		`demo_http_requests_total{code="404",method="GET",route="GET /api/orders/{id}"}`: "1",
		`demo_http_requests_total{code="404",method="GET",route="unmatched"}`:            "1",
		`demo_http_request_duration_seconds_count{route="GET /api/orders"}`:              "3",
		// Pre-initialised even though never requested.
		`demo_http_request_duration_seconds_count{route="GET /api/slow"}`: "0",
	}
	for k, v := range want {
		if got, ok := lines[k]; !ok || got != v {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if strings.Contains(resp.body, `route="/api/orders/17"`) || strings.Contains(resp.body, "/no/such/thing") {
		t.Error("raw request path leaked into route label")
	}
	if _, ok := lines[`demo_http_request_duration_seconds_bucket{route="GET /api/orders",le="0.001"}`]; !ok {
		t.Error("histogram lacks 1ms bucket")
	}
	if _, ok := lines[`demo_http_request_duration_seconds_bucket{route="GET /api/orders",le="2.5"}`]; !ok {
		t.Error("histogram lacks 2.5s bucket")
	}
}

// metricLines maps "name{labels}" to its value for every sample line.
func metricLines(body string) map[string]string {
	out := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}

func TestCancelledRequestStopsHandler(t *testing.T) {
	s := New(Options{})
	// Only cancellation can end a /api/slow request now.
	s.delay = func(p latencyProfile) time.Duration {
		if p == latSlow {
			return time.Hour
		}
		return 0
	}
	r := startTest(t, s)
	c := newClient(t)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", r.URL()+"/api/slow", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()

	waitFor(t, "request in flight", func() bool { return gaugeValue(t, s) == 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("client error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client did not return after cancel")
	}
	// The handler must observe cancellation long before its 1h delay.
	waitFor(t, "handler to finish", func() bool {
		return gaugeValue(t, s) == 0 && counterValue(t, s, "GET", "GET /api/slow", "499") == 1
	})
}

func TestH2C(t *testing.T) {
	r := startTest(t, nil)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	for _, path := range []string{"/healthz", "/api/orders/5"} {
		resp := do(t, c, "GET", r.URL()+path, "")
		if resp.status != 200 {
			t.Fatalf("%s: status %d", path, resp.status)
		}
		if resp.proto != 2 {
			t.Fatalf("%s: ProtoMajor = %d, want 2", path, resp.proto)
		}
	}
	// HTTP/1.1 on the same server still works.
	if resp := do(t, newClient(t), "GET", r.URL()+"/healthz", ""); resp.proto != 1 || resp.status != 200 {
		t.Fatalf("HTTP/1.1: proto %d status %d", resp.proto, resp.status)
	}
}

func TestTwoServersInOneProcess(t *testing.T) {
	a, err := Start("127.0.0.1:0", Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Start("127.0.0.1:0", Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers on %s", a.Addr())
	}
	c := newClient(t)
	do(t, c, "GET", a.URL()+"/api/users/1", "")
	do(t, c, "GET", a.URL()+"/api/users/1", "")
	do(t, c, "GET", b.URL()+"/api/users/1", "")

	key := `demo_http_requests_total{code="200",method="GET",route="GET /api/users/{id}"}`
	for srv, want := range map[*Running]string{a: "2", b: "1"} {
		lines := metricLines(do(t, c, "GET", srv.URL()+"/metrics", "").body)
		if got := lines[key]; got != want {
			t.Errorf("%s: %s = %q, want %q (registries must be separate)", srv.Addr(), key, got, want)
		}
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, "127.0.0.1:0", Options{}, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("Serve returned early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("ready not called")
	}
	c := newClient(t)
	if resp := do(t, c, "GET", "http://"+addr+"/healthz", ""); resp.status != 200 {
		t.Fatalf("status %d", resp.status)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after ctx cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx cancel")
	}
}

func TestServeListenError(t *testing.T) {
	r := startTest(t, nil)
	called := false
	err := Serve(t.Context(), r.Addr(), Options{}, func(string) { called = true })
	if err == nil {
		t.Fatal("Serve on a busy address succeeded")
	}
	if called {
		t.Error("ready called although listen failed")
	}
}

func TestCloseIdempotentAndConcurrent(t *testing.T) {
	r, err := Start("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.URL(), "http://"+r.Addr(); got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	c := newClient(t)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", r.URL()+"/healthz", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("server still answering after Close")
	}
}

func mustJSON(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

func wantError(code int) func(t *testing.T, body string) {
	return func(t *testing.T, body string) {
		t.Helper()
		var e errorBody
		mustJSON(t, body, &e)
		if e.Status != code || e.Error == "" {
			t.Errorf("error body = %q, want status %d and a message", body, code)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func gaugeValue(t *testing.T, s *Server) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.metrics.inFlight.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func counterValue(t *testing.T, s *Server, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.metrics.requests.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestServer_RuntimeFaultAgent(t *testing.T) {
	r, err := Start("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := &agent.Client{BaseURL: r.URL() + agent.MountPath}
	before := runtime.NumGoroutine()
	if _, err := c.Start(t.Context(), "flood", "goroutines", time.Minute, map[string]any{"count": 500}); err != nil {
		t.Fatal(err)
	}
	if got := runtime.NumGoroutine() - before; got < 500 {
		t.Errorf("%d more goroutines, want at least 500", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := runtime.NumGoroutine() - before; got > 20 {
		t.Errorf("%d goroutines left after the demo target closed", got)
	}
}

// TestServer_AgentRefusesWebPages checks that the demo target's agent is
// mounted behind the checks that keep web pages out: a cross-site
// text/plain POST, which a browser sends without asking, starts nothing.
func TestServer_AgentRefusesWebPages(t *testing.T) {
	r, err := Start("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, h := range []map[string]string{
		{"Content-Type": "text/plain", "Origin": "https://evil.example"},
		{"Content-Type": "text/plain"},
		{"Content-Type": "application/json", "Host": "rebind.evil.example"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL()+agent.MountPath+"/faults",
			strings.NewReader(`{"kind": "goroutines", "ttl": "1m", "params": {"count": 10}}`))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		req.Host = h["Host"]
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%v: status %d, want 403 or 415", h, resp.StatusCode)
		}
	}
	faults, err := (&agent.Client{BaseURL: r.URL() + agent.MountPath}).List(t.Context())
	if err != nil || len(faults) != 0 {
		t.Errorf("faults after refused requests: %v, %v", faults, err)
	}
}

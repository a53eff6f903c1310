package harness_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/quantity"
)

// hangGuard bounds waits for things that happen at once when the code
// works; it is not a performance assertion.
const hangGuard = 10 * time.Second

// startProxy starts a proxy on loopback in front of upstream and closes it
// at test end.
func startProxy(t testing.TB, opts harness.Options) *harness.Proxy {
	t.Helper()
	opts.Listen, opts.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	p, err := harness.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// serve starts an upstream on loopback, speaking only h2c when asked, and
// closes it at test end.
func serve(t testing.TB, h http.Handler, h2cOnly bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if h2cOnly {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client speaking HTTP/1.1, or h2c with prior
// knowledge, whose idle connections are closed at test end.
func newClient(t testing.TB, h2c bool) *http.Client {
	t.Helper()
	var p http.Protocols
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: hangGuard}
}

type response struct {
	status int
	header http.Header
	body   string
	proto  int
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), proto: resp.ProtoMajor}
}

func get(t *testing.T, c *http.Client, url string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// scrape reads the proxy's /metrics into series → value, e.g.
// `resctl_proxy_requests_total{code="200"}` → 1.
// scrapeUntil scrapes until series reaches want, or for at most 5 s: the
// proxy counts a request once its handler returns, which may be a moment
// after the client has read the whole response.
func scrapeUntil(t *testing.T, p *harness.Proxy, series string, want float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := scrape(t, p)
		if m[series] == want || time.Now().After(deadline) {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func scrape(t *testing.T, p *harness.Proxy) map[string]float64 {
	t.Helper()
	c := newClient(t, false)
	r := get(t, c, p.AdminURL()+"/metrics")
	c.CloseIdleConnections() // scrapes in a loop would fill the admin listener's cap
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.status)
	}
	return parseMetrics(t, strings.NewReader(r.body))
}

// parseMetrics reads the Prometheus text format into a map from each
// series, written as the format writes it, to its value; a series served
// twice fails the test.
func parseMetrics(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		if _, dup := out[line[:i]]; dup {
			t.Fatalf("series %s served twice", line[:i])
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// seen is what the upstream saw of a request.
type seen struct {
	method, path, rawQuery, host, body string
	header                             http.Header
	proto                              int
}

// recorder is an upstream that remembers the requests it served and
// answers with a fixed, recognisable response.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, seen{
		method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, host: r.Host,
		body: string(b), header: r.Header.Clone(), proto: r.ProtoMajor,
	})
	u.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Upstream", "yes")
	h.Add("Set-Cookie", "a=1")
	h.Add("Set-Cookie", "b=2")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "served %s %s", r.Method, r.URL.Path)
}

func (u *recorder) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func TestProxy_Forwards(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	tests := []struct {
		name     string
		base     string // upstream base path
		method   string
		target   string // path and query sent to the proxy
		body     string
		wantPath string
		wantQ    string
	}{
		{"GET with query", "", http.MethodGet, "/api/orders?page=2&sort=desc", "", "/api/orders", "page=2&sort=desc"},
		{"POST with body", "", http.MethodPost, "/api/orders", `{"item":42}`, "/api/orders", ""},
		{"PUT with a large body", "", http.MethodPut, "/api/blob", big, "/api/blob", ""},
		{"DELETE", "", http.MethodDelete, "/api/orders/7", "", "/api/orders/7", ""},
		{"escaped path", "", http.MethodGet, "/files/a%20b", "", "/files/a b", ""},
		{"upstream with a base path", "/base", http.MethodGet, "/api/orders?x=1", "", "/base/api/orders", "x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &recorder{}
			upSrv := serve(t, up, false)
			p := startProxy(t, harness.Options{Upstream: upSrv.URL + tt.base})

			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, p.URL()+tt.target, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Custom", "one")
			req.Header.Add("X-Multi", "a")
			req.Header.Add("X-Multi", "b")
			got := do(t, newClient(t, false), req)

			if got.status != http.StatusCreated || got.body != "served "+tt.method+" "+tt.wantPath {
				t.Errorf("response %d %q", got.status, got.body)
			}
			if v := got.header.Get("X-Upstream"); v != "yes" {
				t.Errorf("X-Upstream = %q", v)
			}
			if v := got.header.Values("Set-Cookie"); len(v) != 2 || v[0] != "a=1" || v[1] != "b=2" {
				t.Errorf("Set-Cookie = %q, want both cookies in order", v)
			}
			if v := got.header.Get("Content-Type"); v != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", v)
			}

			reqs := up.requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(reqs))
			}
			s := reqs[0]
			if s.method != tt.method || s.path != tt.wantPath || s.rawQuery != tt.wantQ || s.body != tt.body {
				t.Errorf("upstream saw %s %s?%s with a %d-byte body; want %s %s?%s with %d bytes",
					s.method, s.path, s.rawQuery, len(s.body), tt.method, tt.wantPath, tt.wantQ, len(tt.body))
			}
			if v := s.header.Get("X-Custom"); v != "one" {
				t.Errorf("upstream X-Custom = %q", v)
			}
			if v := s.header.Values("X-Multi"); len(v) != 2 || v[0] != "a" || v[1] != "b" {
				t.Errorf("upstream X-Multi = %q", v)
			}
			if v := s.header.Get("X-Forwarded-For"); v != "127.0.0.1" {
				t.Errorf("upstream X-Forwarded-For = %q, want 127.0.0.1", v)
			}
			if v := s.header.Get("X-Forwarded-Host"); v != p.Addr() {
				t.Errorf("upstream X-Forwarded-Host = %q, want %s", v, p.Addr())
			}
			if s.host != upSrv.Listener.Addr().String() {
				t.Errorf("upstream Host = %q, want its own address", s.host)
			}
		})
	}
}

func TestProxy_Metrics(t *testing.T) {
	board := inject.NewBoard(1, nil)
	up := serve(t, &recorder{}, false)
	p := startProxy(t, harness.Options{Upstream: up.URL, Board: board})
	c := newClient(t, false)

	if r := get(t, c, p.AdminURL()+"/healthz"); r.status != http.StatusOK || r.body != "ok\n" {
		t.Errorf("/healthz: %d %q", r.status, r.body)
	}
	get(t, c, p.URL()+"/api/orders")
	get(t, c, p.URL()+"/api/orders")

	m := scrapeUntil(t, p, `resctl_proxy_requests_total{code="201"}`, 2)
	if v := m[`resctl_proxy_requests_total{code="201"}`]; v != 2 {
		t.Errorf(`resctl_proxy_requests_total{code="201"} = %v, want 2`, v)
	}
	if v := m["resctl_proxy_request_duration_seconds_count"]; v != 2 {
		t.Errorf("resctl_proxy_request_duration_seconds_count = %v, want 2", v)
	}
	if v, ok := m["resctl_proxy_in_flight_requests"]; !ok || v != 0 {
		t.Errorf("resctl_proxy_in_flight_requests = %v (present %v), want 0", v, ok)
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	for k := range m {
		if strings.HasPrefix(k, "resctl_fault_") {
			t.Errorf("fault series %s before any fault was activated", k)
		}
	}

	if _, err := board.Activate("fault/abort", &inject.AbortSpec{Match: inject.Match{Path: "/admin", Percent: 100}, Status: 503}); err != nil {
		t.Fatal(err)
	}
	get(t, c, p.URL()+"/admin/x")
	m = scrapeUntil(t, p, `resctl_proxy_requests_total{code="503"}`, 1)
	for series, want := range map[string]float64{
		`resctl_fault_active{fault="fault/abort",kind="abort"}`:         1,
		`resctl_fault_matched_total{fault="fault/abort",kind="abort"}`:  1,
		`resctl_fault_injected_total{fault="fault/abort",kind="abort"}`: 1,
		`resctl_proxy_requests_total{code="503"}`:                       1,
		`resctl_proxy_requests_total{code="201"}`:                       2,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
}

func TestProxy_Faults(t *testing.T) {
	tests := []struct {
		name       string
		spec       inject.Spec
		path       string
		wantStatus int
		wantFault  string
		wantCalls  int
	}{
		{"abort", &inject.AbortSpec{Match: inject.Match{Percent: 100}, Status: http.StatusServiceUnavailable}, "/api/orders", 503, "abort", 0},
		{"abort on another path", &inject.AbortSpec{Match: inject.Match{Path: "/admin", Percent: 100}, Status: 500}, "/api/orders", 201, "", 1},
		{"abort at 0%", &inject.AbortSpec{Match: inject.Match{Percent: quantity.Percent(0)}, Status: 500}, "/api/orders", 201, "", 1},
		{"latency", &inject.LatencySpec{Match: inject.Match{Percent: 100}, Delay: time.Millisecond}, "/api/orders", 201, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			board := inject.NewBoard(1, nil)
			if _, err := board.Activate("f", tt.spec); err != nil {
				t.Fatal(err)
			}
			up := &recorder{}
			p := startProxy(t, harness.Options{Upstream: serve(t, up, false).URL, Board: board})
			r := get(t, newClient(t, false), p.URL()+tt.path)
			if r.status != tt.wantStatus || r.header.Get(inject.FaultHeader) != tt.wantFault {
				t.Errorf("got %d with fault header %q, want %d %q", r.status, r.header.Get(inject.FaultHeader), tt.wantStatus, tt.wantFault)
			}
			if n := len(up.requests()); n != tt.wantCalls {
				t.Errorf("upstream called %d times, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestProxy_LatencyFault(t *testing.T) {
	const delay = 30 * time.Millisecond
	board := inject.NewBoard(1, nil)
	if _, err := board.Activate("slow", &inject.LatencySpec{Match: inject.Match{Percent: 100}, Delay: delay}); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, harness.Options{Upstream: serve(t, &recorder{}, false).URL, Board: board})
	start := time.Now()
	r := get(t, newClient(t, false), p.URL()+"/api/orders")
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("request took %v through a %v latency fault", elapsed, delay)
	}
	if r.status != http.StatusCreated {
		t.Errorf("status %d, want the upstream's 201", r.status)
	}
}

func TestProxy_UpstreamDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close() // nothing listens there any more

	p := startProxy(t, harness.Options{Upstream: url})
	r := get(t, newClient(t, false), p.URL()+"/api/orders")
	if r.status != http.StatusBadGateway {
		t.Errorf("status = %d, want 502", r.status)
	}
	if v := r.header.Get(harness.ErrorHeader); v != "upstream" {
		t.Errorf("%s = %q, want upstream", harness.ErrorHeader, v)
	}
	if v := r.header.Get("Content-Type"); v != "application/json" || !strings.Contains(r.body, "upstream unreachable") {
		t.Errorf("body %q (%s), want a JSON error saying the upstream is unreachable", r.body, v)
	}
	if v := scrapeUntil(t, p, `resctl_proxy_requests_total{code="502"}`, 1)[`resctl_proxy_requests_total{code="502"}`]; v != 1 {
		t.Errorf(`resctl_proxy_requests_total{code="502"} = %v, want 1`, v)
	}
}

func TestProxy_Protocols(t *testing.T) {
	tests := []struct {
		name         string
		clientH2C    bool
		protocol     string
		upstreamH2C  bool // the upstream speaks only h2c
		wantClient   int  // protocol major version the client gets
		wantUpstream int  // … and the upstream sees
	}{
		{"HTTP/1.1 throughout", false, harness.ProtocolHTTP, false, 1, 1},
		{"h2c client, HTTP/1.1 upstream", true, harness.ProtocolHTTP, false, 2, 1},
		{"HTTP/1.1 client, h2c-only upstream", false, harness.ProtocolH2C, true, 1, 2},
		{"h2c throughout", true, harness.ProtocolH2C, true, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &recorder{}
			p := startProxy(t, harness.Options{Upstream: serve(t, up, tt.upstreamH2C).URL, Protocol: tt.protocol})
			r := get(t, newClient(t, tt.clientH2C), p.URL()+"/api/orders")
			if r.status != http.StatusCreated || r.proto != tt.wantClient {
				t.Errorf("client got %d over HTTP/%d, want 201 over HTTP/%d", r.status, r.proto, tt.wantClient)
			}
			reqs := up.requests()
			if len(reqs) != 1 || reqs[0].proto != tt.wantUpstream {
				t.Fatalf("upstream saw %+v, want one request over HTTP/%d", reqs, tt.wantUpstream)
			}
		})
	}
}

// TestProxy_InformationalResponse checks that an upstream's 103 Early Hints
// do not pass for the response's status in the proxy's metrics.
func TestProxy_InformationalResponse(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "page")
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	if r := get(t, newClient(t, false), p.URL()+"/"); r.status != http.StatusOK || r.body != "page" {
		t.Fatalf("got %d %q, want 200 page", r.status, r.body)
	}
	m := scrapeUntil(t, p, `resctl_proxy_requests_total{code="200"}`, 1)
	if v := m[`resctl_proxy_requests_total{code="200"}`]; v != 1 {
		t.Errorf(`resctl_proxy_requests_total{code="200"} = %v, want 1 (all: %v)`, v, requestsByCode(m))
	}
}

func requestsByCode(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, "resctl_proxy_requests_total") {
			out[k] = v
		}
	}
	return out
}

func TestProxy_ClientGoesAway(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), false)
	t.Cleanup(func() { close(release) })
	p := startProxy(t, harness.Options{Upstream: up.URL})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := newClient(t, false)
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/slow", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-arrived:
	case <-time.After(hangGuard):
		t.Fatal("request never reached the upstream")
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled request succeeded")
	}

	// The proxy notices the client has gone asynchronously; wait for it to
	// count the request, bounded.
	deadline := time.Now().Add(hangGuard)
	for {
		m := scrape(t, p)
		if m[`resctl_proxy_requests_total{code="499"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request counted as 499 (client closed request): %v", requestsByCode(m))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxy_Close(t *testing.T) {
	up := serve(t, &recorder{}, false)
	p, err := harness.Start(harness.Options{Upstream: up.URL, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, false)
	get(t, c, p.URL()+"/api/orders") // leaves a kept-alive connection each side
	addrs := []string{p.Addr(), strings.TrimPrefix(p.AdminURL(), "http://")}

	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for i := range 2 {
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	for _, addr := range addrs {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Close", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("port of %s not freed: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

func TestStart_Errors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name      string
		opts      harness.Options
		wantInErr string
	}{
		{name: "no upstream", opts: harness.Options{}, wantInErr: "not a URL with a host"},
		{name: "upstream without host", opts: harness.Options{Upstream: "/just/a/path"}, wantInErr: "not a URL with a host"},
		{name: "upstream not a URL", opts: harness.Options{Upstream: "http://[::1"}, wantInErr: "not a URL with a host"},
		{name: "listen address taken", opts: harness.Options{Upstream: "http://127.0.0.1:1", Listen: busy.Addr().String(), AdminListen: "127.0.0.1:0"}, wantInErr: "proxy listen"},
		{name: "admin address taken", opts: harness.Options{Upstream: "http://127.0.0.1:1", Listen: "127.0.0.1:0", AdminListen: busy.Addr().String()}, wantInErr: "proxy admin listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := harness.Start(tt.opts)
			if err == nil {
				p.Close(context.Background())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantInErr)
			}
		})
	}
}

// BenchmarkProxy_NoFault is a request through the proxy with an empty board,
// beside the same request sent directly to the upstream: the difference is
// what the proxy adds.
func BenchmarkProxy_NoFault(b *testing.B) {
	upstream := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"orders":[]}`)
	}), false)
	p := startProxy(b, harness.Options{Upstream: upstream.URL})
	for _, bm := range []struct{ name, url string }{
		{"direct", upstream.URL + "/api/orders"},
		{"proxy", p.URL() + "/api/orders"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			c := newClient(b, false)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Get(bm.url)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

package harness_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// counting is an upstream that counts the requests it served, answering
// 503 while failing is set and taking delay over each.
type counting struct {
	served  atomic.Int64
	failing atomic.Bool
	delay   time.Duration
}

func (u *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.served.Add(1)
	if u.delay > 0 {
		select {
		case <-time.After(u.delay):
		case <-r.Context().Done():
		}
	}
	if u.failing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// getN sends n GETs to url from workers goroutines and fails the test on
// any transport error; it returns the statuses seen, by code.
func getN(t *testing.T, url string, n, workers int) map[int]int {
	t.Helper()
	c := newClient(t, false)
	var mu sync.Mutex
	codes := map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("GET %s: %v", url, err)
					return
				}
				_ = resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return codes
}

// TestProxy_BalancesAwayFromSlowUpstream sends requests through a proxy in
// front of three upstreams, one of them 500ms slow: once the balancer has
// heard from it, it sends it little. The shares are loose on purpose — a
// loaded machine slows the fast upstreams too — and the slow one's share
// would be a third without balancing.
func TestProxy_BalancesAwayFromSlowUpstream(t *testing.T) {
	fast1, fast2, slow := &counting{}, &counting{}, &counting{delay: 500 * time.Millisecond}
	ups := []*counting{fast1, fast2, slow}
	var urls []string
	for _, u := range ups {
		urls = append(urls, serve(t, u, false).URL)
	}
	p := startProxy(t, harness.Options{Upstreams: urls, Balance: harness.DefaultBalanceConfig(), Seed: 1})

	const n = 300
	if codes := getN(t, p.URL()+"/", n, 4); codes[http.StatusOK] != n {
		t.Fatalf("statuses %v, want %d × 200", codes, n)
	}
	t.Logf("served: fast %d, fast %d, slow %d", fast1.served.Load(), fast2.served.Load(), slow.served.Load())
	if got := slow.served.Load(); got > n/10 {
		t.Errorf("the slow upstream served %d of %d requests, want at most %d", got, n, n/10)
	}
	for i, u := range ups[:2] {
		// Each is drawn with the slow one a third of the time, and wins.
		if got := u.served.Load(); got < n/4 {
			t.Errorf("fast upstream %d served %d of %d requests, want at least %d", i+1, got, n, n/4)
		}
	}
	m := scrapeUntil(t, p, `resctl_proxy_requests_total{code="200"}`, n)
	var upstream float64
	for i, u := range urls {
		series := fmt.Sprintf(`resctl_proxy_upstream_requests_total{outcome="success",upstream=%q}`, u)
		if got, want := m[series], float64(ups[i].served.Load()); got != want {
			t.Errorf("%s = %v, want %v: what the upstream served", series, got, want)
		}
		upstream += m[series]
		if g := fmt.Sprintf(`resctl_proxy_upstream_latency_ewma_seconds{upstream=%q}`, u); m[g] <= 0 {
			t.Errorf("%s = %v, want a latency", g, m[g])
		}
	}
	if upstream != n {
		t.Errorf("upstream requests %v, want %d: one per downstream request without retries", upstream, n)
	}
}

// TestProxy_EjectsFailingUpstream fails one of three upstreams: after the
// configured failures in a row it gets no more requests, and the clients
// see none of its errors; when the ejection time has passed on the
// proxy's clock it is back.
func TestProxy_EjectsFailingUpstream(t *testing.T) {
	good1, good2, bad := &counting{}, &counting{}, &counting{}
	bad.failing.Store(true)
	urls := []string{serve(t, good1, false).URL, serve(t, good2, false).URL, serve(t, bad, false).URL}
	clk := newStepClock()
	tr := &transitions{start: clk.Now()}
	cfg := harness.DefaultBalanceConfig()
	cfg.Ejection.ConsecutiveFailures = 3
	p := startProxy(t, harness.Options{Upstreams: urls, Balance: cfg, Clock: clk, Observer: tr, Seed: 1})
	c := newClient(t, false)

	// The bad upstream has never answered well, so it is drawn often:
	// its three failures come within a few requests.
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatalf("not ejected after %d requests; bad served %d", i, bad.served.Load())
		}
		get(t, c, p.URL()+"/")
		if p.Balancer().Stats()[2].Ejected {
			break
		}
	}
	if got := bad.served.Load(); got != 3 {
		t.Errorf("the bad upstream served %d requests before its ejection, want 3", got)
	}
	for range 50 {
		if r := get(t, c, p.URL()+"/"); r.status != http.StatusOK {
			t.Fatalf("status %d while the bad upstream is ejected", r.status)
		}
	}
	if got := bad.served.Load(); got != 3 {
		t.Errorf("the ejected upstream served %d requests, want none after its ejection", got-3)
	}
	m := scrape(t, p)
	for series, want := range map[string]float64{
		fmt.Sprintf(`resctl_proxy_upstream_ejected{upstream=%q}`, urls[2]):                      1,
		fmt.Sprintf(`resctl_proxy_upstream_ejections_total{upstream=%q}`, urls[2]):              1,
		fmt.Sprintf(`resctl_proxy_upstream_requests_total{outcome="5xx",upstream=%q}`, urls[2]): 3,
		fmt.Sprintf(`resctl_proxy_upstream_ejected{upstream=%q}`, urls[0]):                      0,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}

	bad.failing.Store(false)
	clk.Advance(harness.DefaultEjectionBaseTime)
	for i := 0; bad.served.Load() == 3; i++ {
		if i == 100 {
			t.Fatalf("the upstream is not back after %d requests", i)
		}
		if r := get(t, c, p.URL()+"/"); r.status != http.StatusOK {
			t.Fatalf("status %d after the return", r.status)
		}
	}
	want := []string{urls[2] + ": healthy → ejected @0s", urls[2] + ": ejected → healthy @30s"}
	if got := tr.list(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

// connCounter counts an upstream's connections carrying a request and
// remembers the most it had at once. Open connections would be a looser
// measure: one the proxy closed is open at the upstream until it reads the
// end, a moment after the proxy has dialled its replacement.
type connCounter struct {
	mu         sync.Mutex
	active     map[net.Conn]bool
	busy, most int
}

func (c *connCounter) hook(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == nil {
		c.active = map[net.Conn]bool{}
	}
	was := c.active[conn]
	now := s == http.StateActive
	c.active[conn] = now
	switch {
	case now && !was:
		c.busy++
		c.most = max(c.most, c.busy)
	case !now && was:
		c.busy--
	}
}

func (c *connCounter) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.most
}

// TestProxy_MaxConnsPerUpstream holds six requests at an upstream whose
// proxy may open two connections to it: two arrive, the others wait for
// a connection, and the upstream never sees a third connection busy.
func TestProxy_MaxConnsPerUpstream(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var cc connCounter
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = cc.hook
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := harness.DefaultBalanceConfig()
	cfg.Pool.MaxConns = 2
	p := startProxy(t, harness.Options{Upstream: srv.URL, Balance: cfg})

	const n = 6
	done := make(chan map[int]int)
	go func() { done <- getN(t, p.URL()+"/", n, n) }()
	for range 2 {
		<-arrived
	}
	// Every request has reached the transport: the rest wait there.
	deadline := time.Now().Add(hangGuard)
	for p.Balancer().Stats()[0].InFlight != n {
		if time.Now().After(deadline) {
			t.Fatalf("in flight %d, want %d", p.Balancer().Stats()[0].InFlight, n)
		}
		time.Sleep(time.Millisecond)
	}
	// Each release frees a connection, which the next request takes.
	for got := 2; got < n+2; got++ {
		release <- struct{}{}
		if got < n {
			<-arrived
		}
	}
	if codes := <-done; codes[http.StatusOK] != n {
		t.Errorf("statuses %v, want %d × 200", codes, n)
	}
	if most := cc.max(); most != 2 {
		t.Errorf("the upstream had at most %d connections busy at once, want 2", most)
	}
}

// TestProxy_MaxConnLifetime uses a connection, lets it outlive its
// lifetime on the proxy's clock, and sends more requests: a connection
// past its lifetime carries at most one more request, which (in HTTP/1.1)
// asks the upstream to close it.
func TestProxy_MaxConnLifetime(t *testing.T) {
	for _, protocol := range []string{harness.ProtocolHTTP, harness.ProtocolH2C} {
		t.Run(protocol, func(t *testing.T) {
			type use struct {
				conn  string
				close bool
			}
			var mu sync.Mutex
			var uses []use
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				uses = append(uses, use{r.RemoteAddr, r.Close})
				mu.Unlock()
				_, _ = w.Write([]byte("ok"))
			}), protocol == harness.ProtocolH2C)
			clk := newStepClock()
			cfg := harness.DefaultBalanceConfig()
			cfg.Pool.MaxLifetime = time.Minute
			p := startProxy(t, harness.Options{Upstream: srv.URL, Protocol: protocol, Balance: cfg, Clock: clk})
			c := newClient(t, false)
			taken := func() []use {
				mu.Lock()
				defer mu.Unlock()
				out := uses
				uses = nil
				return out
			}

			for range 5 {
				get(t, c, p.URL()+"/")
			}
			old := map[string]bool{}
			for _, u := range taken() {
				if u.close {
					t.Errorf("a young connection %s was asked to close", u.conn)
				}
				old[u.conn] = true
			}
			clk.Advance(time.Minute)
			for range 5 {
				get(t, c, p.URL()+"/")
			}
			retired := map[string]bool{}
			for _, u := range taken() {
				switch {
				case old[u.conn] && retired[u.conn]:
					t.Errorf("connection %s carried a second request past its lifetime", u.conn)
				case old[u.conn] && protocol == harness.ProtocolHTTP && !u.close:
					t.Errorf("connection %s carried a request past its lifetime without Connection: close", u.conn)
				case old[u.conn]:
					retired[u.conn] = true
				case u.close:
					t.Errorf("a young connection %s was asked to close", u.conn)
				}
			}
			t.Logf("%d of %d old connections retired", len(retired), len(old))
		})
	}
}

// TestProxy_UpstreamAttempts puts a retry in front of a failing upstream:
// each client request is one downstream request and three attempts
// upstream, and the metrics tell them apart — whether the upstream fails
// the attempts or a fault answers them in its place.
func TestProxy_UpstreamAttempts(t *testing.T) {
	for _, byFault := range []bool{false, true} {
		t.Run(fmt.Sprintf("by fault %v", byFault), func(t *testing.T) {
			up := &counting{}
			up.failing.Store(!byFault)
			srv := serve(t, up, false)
			board := inject.NewBoard(1, nil)
			if byFault {
				if _, err := board.Activate("abort", &inject.AbortSpec{Match: inject.Match{Percent: 100}, Status: http.StatusServiceUnavailable}); err != nil {
					t.Fatal(err)
				}
			}
			cfg := guard.DefaultRetryConfig()
			cfg.Backoff = guard.RetryBackoff{Base: time.Millisecond, Max: time.Millisecond, Multiplier: 1, Jitter: guard.JitterNone}
			retry, err := guard.NewRetry("retry", cfg, guard.Options{})
			if err != nil {
				t.Fatal(err)
			}
			chain := guard.NewChain(retry)
			t.Cleanup(func() { _ = chain.Close() })
			p := startProxy(t, harness.Options{Upstream: srv.URL, Guard: chain, Board: board})

			const n = 3
			if codes := getN(t, p.URL()+"/", n, 1); codes[http.StatusServiceUnavailable] != n {
				t.Fatalf("statuses %v, want %d × 503", codes, n)
			}
			m := scrapeUntil(t, p, `resctl_proxy_requests_total{code="503"}`, n)
			if got := m[`resctl_proxy_requests_total{code="503"}`]; got != n {
				t.Errorf("downstream requests %v, want %d", got, n)
			}
			if got := m["resctl_proxy_attempts_total"]; got != 3*n {
				t.Errorf("resctl_proxy_attempts_total = %v, want %d: three attempts a request", got, 3*n)
			}
			want := 3 * n
			if byFault {
				want = 0 // the fault answered every attempt
			}
			series := fmt.Sprintf(`resctl_proxy_upstream_requests_total{outcome="5xx",upstream=%q}`, srv.URL)
			if got := m[series]; got != float64(want) || up.served.Load() != int64(want) {
				t.Errorf("%s = %v, upstream served %d; want %d each", series, got, up.served.Load(), want)
			}
		})
	}
}

func TestStart_UpstreamsErrors(t *testing.T) {
	tests := []struct {
		name string
		opts harness.Options
		want string
	}{
		{"both", harness.Options{Upstream: "http://a:1", Upstreams: []string{"http://b:1"}}, "set Upstream or Upstreams, not both"},
		{"a bad one", harness.Options{Upstreams: []string{"http://a:1", "b"}}, `proxy upstream "b": not a URL with a host`},
		{"twice", harness.Options{Upstreams: []string{"http://a:1", "http://a:1"}}, "listed twice"},
		{"negative pool", harness.Options{Upstream: "http://a:1", Balance: harness.BalanceConfig{Pool: harness.PoolConfig{MaxConns: -1}}}, "proxy balance pool.max_conns: must not be negative"},
		{"a route's upstream is the proxy's", harness.Options{Upstream: "http://a:1", Routes: []harness.Route{{Name: "r", Path: "/r", Chain: guard.NewChain(), Upstreams: []string{"http://b:1", "http://a:1"}}}}, "route r: upstream http://a:1 is already the proxy's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Listen = "127.0.0.1:0"
			p, err := harness.Start(tt.opts)
			if err == nil {
				_ = p.Close(context.Background())
				t.Fatalf("Start succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A route with upstreams of its own sends its requests — every attempt —
// to them, balanced, and the rest of the proxy's to the proxy's upstream;
// the route's upstreams have metrics of their own.
func TestProxy_RouteUpstreams(t *testing.T) {
	main, b, c := &counting{}, &counting{}, &counting{}
	ms, bs, cs := serve(t, main, false), serve(t, b, false), serve(t, c, false)
	chain := guard.NewChain()
	p := startProxy(t, harness.Options{Upstream: ms.URL, Balance: harness.DefaultBalanceConfig(),
		Routes: []harness.Route{{Name: "orders", Path: "/orders", Chain: chain, Upstreams: []string{bs.URL, cs.URL}}}})

	if codes := getN(t, p.URL()+"/orders/7", 40, 2); codes[http.StatusOK] != 40 {
		t.Fatalf("route statuses %v, want 40 × 200", codes)
	}
	if codes := getN(t, p.URL()+"/users/7", 10, 1); codes[http.StatusOK] != 10 {
		t.Fatalf("other statuses %v, want 10 × 200", codes)
	}
	if got := main.served.Load(); got != 10 {
		t.Errorf("the proxy's upstream served %d, want the 10 requests off the route", got)
	}
	if nb, nc := b.served.Load(), c.served.Load(); nb+nc != 40 || nb == 0 || nc == 0 {
		t.Errorf("route upstreams served %d and %d, want 40 between them, both used", nb, nc)
	}
	series := fmt.Sprintf(`resctl_proxy_upstream_requests_total{outcome="success",upstream=%q}`, bs.URL)
	m := scrapeUntil(t, p, series, float64(b.served.Load()))
	if got := m[series]; got != float64(b.served.Load()) {
		t.Errorf("%s = %v, want %d", series, got, b.served.Load())
	}
}

// TestProxy_SetGuardMovesRouteUpstreams: a reload that changes a route's
// upstreams sends its requests to the new ones (with their metrics); one
// that gives a route an upstream the proxy already has is refused and
// changes nothing.
func TestProxy_SetGuardMovesRouteUpstreams(t *testing.T) {
	main, b, c := &counting{}, &counting{}, &counting{}
	ms, bs, cs := serve(t, main, false), serve(t, b, false), serve(t, c, false)
	route := func(ups ...string) []harness.Route {
		return []harness.Route{{Name: "orders", Path: "/orders", Chain: guard.NewChain(), Upstreams: ups}}
	}
	p := startProxy(t, harness.Options{Upstream: ms.URL, Routes: route(bs.URL)})
	if codes := getN(t, p.URL()+"/orders/7", 5, 1); codes[http.StatusOK] != 5 || b.served.Load() != 5 {
		t.Fatalf("before the reload: statuses %v, b served %d; want 5 there", codes, b.served.Load())
	}

	if err := p.SetGuard(nil, route(cs.URL)); err != nil {
		t.Fatal(err)
	}
	if codes := getN(t, p.URL()+"/orders/7", 5, 1); codes[http.StatusOK] != 5 || c.served.Load() != 5 || b.served.Load() != 5 {
		t.Fatalf("after the reload: statuses %v, b %d, c %d; want the 5 new ones at c", codes, b.served.Load(), c.served.Load())
	}
	series := fmt.Sprintf(`resctl_proxy_upstream_requests_total{outcome="success",upstream=%q}`, cs.URL)
	if m := scrapeUntil(t, p, series, 5); m[series] != 5 {
		t.Errorf("%s = %v, want 5", series, m[series])
	}

	err := p.SetGuard(nil, route(ms.URL))
	if err == nil || !strings.Contains(err.Error(), "already the proxy's") {
		t.Fatalf("SetGuard with the proxy's own upstream on a route: %v, want refused", err)
	}
	if codes := getN(t, p.URL()+"/orders/7", 5, 1); codes[http.StatusOK] != 5 || c.served.Load() != 10 || main.served.Load() != 0 {
		t.Errorf("after a refused reload: statuses %v, c %d, main %d; want the route still at c", codes, c.served.Load(), main.served.Load())
	}
}

package harness

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// A changed config file swaps the guard chains in: the breaker whose
// configuration did not change keeps its state (still open), the route
// whose chain changed gets the new one, and a request in flight when the
// file changes completes.
func TestServe_ReloadsGuardKeepingState(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	release, slow := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(slow)
			<-release
			return
		}
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer up.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "proxies.yaml")
	write := func(limitOther string) {
		t.Helper()
		body := `- name: web
  listen: ` + addr + `
  upstream: ` + up.URL + `
  routes:
    - name: orders
      match: {path: /orders}
      guard: [{breaker: {consecutive_failures: 3, open_for: 10m, backoff: {max: 10m}}}]
    - name: other
      match: {path: /other}
      guard: [{rate_limit: {rate: ` + limitOther + `, burst: 1}}]
`
		writeWhole(t, cfg, body)
	}
	write("1000/s")
	pcs, err := ReadProxyConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reloaded := make(chan error, 4)
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- Serve(ctx, ServeOptions{Proxies: pcs, AdminListen: "127.0.0.1:0", ConfigPath: cfg, WatchEvery: 10 * time.Millisecond,
			OnReload: func(err error) { reloaded <- err }}, func(Started) { close(started) })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-started
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for range 3 {
		get("/orders")
	}
	if r := get("/orders"); r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("X-Resctl-Guard") != "web/orders" {
		t.Fatalf("breaker did not open: %d %q", r.StatusCode, r.Header.Get("X-Resctl-Guard"))
	}

	inFlight := make(chan int, 1)
	go func() {
		resp, err := client.Get("http://" + addr + "/slow")
		if err != nil {
			inFlight <- -1
			return
		}
		resp.Body.Close()
		inFlight <- resp.StatusCode
	}()
	select {
	case <-slow: // the slow request went through the old chain
	case code := <-inFlight:
		t.Fatalf("the slow request ended with %d before reaching the upstream", code)
	}
	failing.Store(false)
	time.Sleep(20 * time.Millisecond) // a new modification time
	write("1/h")
	if err := AwaitReload(t, reloaded); err != nil {
		t.Fatalf("reload: %v", err)
	}
	close(release)
	if code := <-inFlight; code != http.StatusOK {
		t.Errorf("request in flight during the reload ended with %d", code)
	}
	if r := get("/orders"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unchanged breaker lost its state: /orders answered %d, want 503 (still open)", r.StatusCode)
	}
	get("/other") // the burst of one
	if r := get("/other"); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("changed chain not swapped in: /other answered %d, want 429", r.StatusCode)
	}

	// A broken file changes nothing and says why.
	time.Sleep(20 * time.Millisecond)
	writeWhole(t, cfg, "- name: web\n  upstream: x\n  routes: [{match: {path: nope}, guard: [breakr]}]\n")
	err = AwaitReload(t, reloaded)
	if err == nil || !strings.Contains(err.Error(), `unknown policy kind "breakr"`) {
		t.Errorf("reload of a broken file: %v", err)
	}
	if r := get("/orders"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a broken reload replaced the chains: /orders answered %d", r.StatusCode)
	}
}

// A reload keeps the balancer of a route whose upstreams did not change,
// so its latencies and ejections carry over, and builds a new one for a
// route whose upstreams did.
func TestProxy_SetGuardKeepsUnchangedRouteBalancer(t *testing.T) {
	routes := func(orders, users string) []Route {
		return []Route{
			{Name: "orders", Path: "/orders", Chain: guard.NewChain(), Upstreams: []string{orders}},
			{Name: "users", Path: "/users", Chain: guard.NewChain(), Upstreams: []string{users}},
		}
	}
	p, err := Start(Options{Upstream: "http://127.0.0.1:1", Listen: "127.0.0.1:0", Routes: routes("http://127.0.0.1:2", "http://127.0.0.1:3")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	orders, users := p.routeBal["orders"], p.routeBal["users"]
	if err := p.SetGuard(nil, routes("http://127.0.0.1:2", "http://127.0.0.1:4")); err != nil {
		t.Fatal(err)
	}
	if p.routeBal["orders"] != orders {
		t.Error("the unchanged route got a new balancer")
	}
	if p.routeBal["users"] == users || p.routeBal["users"].Upstreams()[0].Addr() != "http://127.0.0.1:4" {
		t.Errorf("the changed route's balancer is %v, want a new one for http://127.0.0.1:4", p.routeBal["users"].Upstreams()[0].Addr())
	}
}

// A reload that would give a route an upstream its proxy already has is
// refused before anything is rebuilt, on every proxy of the file: the
// other proxy's valid change is not applied either, and the routes keep
// their upstreams and policies.
func TestServe_ReloadRefusesRouteUpstreamTwice(t *testing.T) {
	var routeHits atomic.Int64
	main := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer main.Close()
	route := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { routeHits.Add(1) }))
	defer route.Close()
	cfg := filepath.Join(t.TempDir(), "proxies.yaml")
	write := func(webLimit, apiRouteUp string) {
		t.Helper()
		body := "- name: web\n  listen: 127.0.0.1:0\n  upstream: " + main.URL + "\n  routes:\n    - name: orders\n      match: {path: /orders}\n      guard: [{rate_limit: {rate: " + webLimit + "}}]\n" +
			"- name: api\n  listen: 127.0.0.1:0\n  upstream: " + main.URL + "\n  routes:\n    - name: users\n      match: {path: /users}\n      upstreams: [" + apiRouteUp + "]\n"
		writeWhole(t, cfg, body)
	}
	write("1000/s, burst: 10", route.URL)
	pcs, err := ReadProxyConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reloaded, done, started := make(chan error, 4), make(chan error, 1), make(chan Started, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Proxies: pcs, AdminListen: "127.0.0.1:0", ConfigPath: cfg, WatchEvery: 10 * time.Millisecond,
			OnReload: func(err error) { reloaded <- err }}, func(s Started) { started <- s })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	st := <-started
	web, api := st.Proxies[0].Listen, st.Proxies[1].Listen
	time.Sleep(20 * time.Millisecond) // a new modification time
	write("1/h, burst: 1", main.URL)
	err = AwaitReload(t, reloaded)
	if err == nil || !strings.Contains(err.Error(), `proxy "api"`) || !strings.Contains(err.Error(), "already the proxy's") {
		t.Fatalf("reload: %v, want it refused for api", err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := range 3 {
		for _, url := range []string{"http://" + web + "/orders", "http://" + api + "/users"} {
			resp, err := client.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK { // web's refused limit (1/h, burst 1) would refuse the second
				t.Fatalf("request %d to %s after the refused reload: %d", i, url, resp.StatusCode)
			}
		}
	}
	if got := routeHits.Load(); got != 3 {
		t.Errorf("api's route upstream served %d, want all 3", got)
	}
}

// AwaitReload waits for the next reload of the watched file and returns
// its error. It is exported for the external tests (serve_test.go) too.
func AwaitReload(t *testing.T, reloaded <-chan error) error {
	t.Helper()
	select {
	case err := <-reloaded:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no reload after the file changed")
		return nil
	}
}

// writeWhole replaces a config file at once, as most editors save: the
// watcher sees the old file or the new one, never the instant between
// truncating and writing, which a loaded machine can stretch over several
// polls.
func writeWhole(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

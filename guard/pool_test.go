package guard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

// TestPoolTransport spreads a client's calls over three instances, one of
// them failing: its failures eject it, the retry of the client's chain
// sends each failed attempt again (to a healthy instance, since the pool
// picks afresh), so every call succeeds, and the ejected one sees no more.
func TestPoolTransport(t *testing.T) {
	var hits [3]atomic.Int32
	var urls []string
	for i := range hits {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			if r.URL.Path != "/base/api/pay" {
				http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
				return
			}
			if i == 0 {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "paid")
		}))
		defer srv.Close()
		urls = append(urls, srv.URL+"/base")
	}
	ej := guard.EjectionConfig{ConsecutiveFailures: 2, BaseTime: 3600e9, MaxTime: 3600e9, MaxPercent: 50}
	pool, err := guard.NewBalancer(urls, ej, guard.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	chain := chainOf(t, fastRetry(""), guard.Options{Seed: 1})
	client := &http.Client{Transport: guard.NewTransport(guard.NewPoolTransport(nil, pool), chain)}
	for i := range 60 {
		resp, err := client.Get("http://payments/api/pay")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "paid" {
			t.Fatalf("call %d: %d %q", i, resp.StatusCode, b)
		}
	}
	s := pool.Stats()
	if !s[0].Ejected || hits[0].Load() != 2 || s[0].Requests[guard.Upstream5xx] != 2 {
		t.Errorf("the failing instance: %+v after %d hits, want it ejected after 2", s[0], hits[0].Load())
	}
	if hits[1].Load() == 0 || hits[2].Load() == 0 || hits[1].Load()+hits[2].Load() != 60 {
		t.Errorf("healthy instances saw %d and %d calls, want the 60 between them", hits[1].Load(), hits[2].Load())
	}
	for _, st := range s {
		if st.InFlight != 0 {
			t.Errorf("%s: %d in flight after every body was closed", st.Addr, st.InFlight)
		}
	}
}

// TestPoolConfig_Transport: a client's pool retires connections past
// their lifetime as the proxy's does — the first request a connection
// carries once it is a minute old (on the injected clock) asks for
// Connection: close, and no connection carries two such requests — and
// it sets the per-host cap and idle timeout on the transport.
func TestPoolConfig_Transport(t *testing.T) {
	type use struct {
		conn  string
		close bool
	}
	var mu sync.Mutex
	var uses []use
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uses = append(uses, use{r.RemoteAddr, r.Close})
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	taken := func() []use {
		mu.Lock()
		defer mu.Unlock()
		out := uses
		uses = nil
		return out
	}
	pool, err := guard.NewBalancer([]string{srv.URL}, guard.DefaultEjectionConfig(), guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	base := &http.Transport{}
	limits := guard.PoolConfig{MaxConns: 3, MaxLifetime: time.Minute}
	client := &http.Client{Transport: guard.NewPoolTransport(limits.Transport(base, guard.Options{Clock: clk}), pool)}
	defer client.CloseIdleConnections()
	if base.MaxConnsPerHost != 3 || base.IdleConnTimeout != guard.DefaultPoolIdleTimeout {
		t.Errorf("transport limits: %d conns, idle %v; want 3, %v", base.MaxConnsPerHost, base.IdleConnTimeout, guard.DefaultPoolIdleTimeout)
	}
	get := func() {
		t.Helper()
		resp, err := client.Get("http://payments/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 5 {
		get()
	}
	old := map[string]bool{}
	for _, u := range taken() {
		if u.close {
			t.Errorf("a young connection %s was asked to close", u.conn)
		}
		old[u.conn] = true
	}
	clk.Advance(time.Minute)
	for i := range 5 {
		if i%2 == 1 {
			get()
			continue
		}
		// A request with a body is sent as a copy http.Transport makes
		// before it picks the connection: it must be retired all the same.
		resp, err := client.Post("http://payments/", "text/plain", strings.NewReader("order"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	retired := map[string]bool{}
	for _, u := range taken() {
		switch {
		case old[u.conn] && retired[u.conn]:
			t.Errorf("connection %s carried a second request past its lifetime", u.conn)
		case old[u.conn] && !u.close:
			t.Errorf("connection %s carried a request past its lifetime without Connection: close", u.conn)
		case old[u.conn]:
			retired[u.conn] = true
		case u.close:
			t.Errorf("a young connection %s was asked to close", u.conn)
		}
	}
	if len(retired) == 0 {
		t.Error("no old connection was retired")
	}

	var problems []string
	guard.PoolConfig{MaxConns: -1, MaxLifetime: -time.Second}.Check(func(field, msg string) { problems = append(problems, field) })
	if !slices.Equal(problems, []string{"max_conns", "max_lifetime"}) {
		t.Errorf("Check found %v, want max_conns and max_lifetime", problems)
	}
}

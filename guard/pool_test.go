package guard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

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

package harness_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// fuzzTarget is a proxy of the fuzzed admin API: a fault board and
// addresses, no listener.
type fuzzTarget struct{ b *inject.Board }

func (t fuzzTarget) Board() *inject.Board { return t.b }
func (fuzzTarget) Addr() string           { return "127.0.0.1:0" }
func (fuzzTarget) Upstream() string       { return "127.0.0.1:1" }

// fuzzedBodies are the admin endpoints that read a body, resctl's and
// Toxiproxy's, on an http proxy (web) and a tcp one (db). Those that open
// a listener (POST /proxies, /populate) are left out: a fuzzer would open
// one per input.
var fuzzedBodies = []struct{ method, path string }{
	{http.MethodPost, "/api/v1/proxies/web/faults"},
	{http.MethodPost, "/api/v1/proxies/db/faults"},
	{http.MethodPut, "/api/v1/proxies/web/faults/seed"},
	{http.MethodPut, "/api/v1/proxies/db/faults/seed"},
	{http.MethodPost, "/proxies/web"},
	{http.MethodPost, "/proxies/db"},
	{http.MethodPost, "/proxies/web/toxics"},
	{http.MethodPost, "/proxies/db/toxics"},
	{http.MethodPost, "/proxies/db/toxics/seed"},
}

// FuzzAdmin_Bodies throws arbitrary bodies at every admin endpoint that
// reads one: every answer is a 2xx, or a 4xx with a JSON error, never a
// 5xx or a panic, whatever the body (JSON, YAML with aliases, nothing).
func FuzzAdmin_Bodies(f *testing.F) {
	seeds := []string{
		`{"kind": "latency", "ttl": "30s", "params": {"delay": "200ms", "jitter": "50ms", "percent": 30}}`,
		`{"kind": "abort", "params": {"status": 503, "schedule": {"first": 3, "ramp": {"to": "50%", "over": "1s"}}}}`,
		`{"kind": "blackhole", "params": {"direction": "upstream", "timeout": "1s"}}`,
		`{"name": "seed", "type": "latency", "stream": "downstream", "toxicity": 1, "attributes": {"latency": 100, "jitter": 10}}`,
		`{"type": "bandwidth", "attributes": {"rate": 1}}`, `{"type": "timeout", "attributes": {"timeout": -1}}`,
		`{"enabled": false}`, `{"enabled": true, "upstream": "127.0.0.1:2"}`, `{"listen": "0.0.0.0:0"}`,
		`{"kind": "latency", "params": "delay: &a [*a]"}`, `{"kind": "latency", "params": {"delay": "9999999h"}}`,
		`{"kind": "latency", "ttl": "-1s", "params": {"delay": "1ms"}}`, `{"kind": "abort", "ttl": "2562047h"}`,
		`[]`, `null`, `{}`, `{"params": "x"}`, `{"kind": "abort"} {}`, `{`, "",
	}
	for _, s := range seeds {
		for i := range fuzzedBodies {
			f.Add(uint8(i), s)
		}
	}
	admin := harness.NewAdmin(harness.AdminOptions{MaxBody: 1 << 14})
	f.Cleanup(func() { _ = admin.Close(context.Background()) })
	web, db := inject.NewBoard(1, nil), inject.NewBoard(1, nil)
	if err := admin.Add("web", harness.ProtocolHTTP, fuzzTarget{web}); err != nil {
		f.Fatal(err)
	}
	if err := admin.Add("db", harness.ProtocolTCP, fuzzTarget{db}); err != nil {
		f.Fatal(err)
	}
	call := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://127.0.0.1"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, r)
		return w
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, body string) {
		// Each input meets the same state: one fault named seed on each
		// proxy (on db also the toxic seed), that PUT and POST .../seed
		// change.
		for _, path := range []string{"/api/v1/proxies/web/faults", "/api/v1/proxies/db/faults"} {
			if w := call(http.MethodDelete, path, ""); w.Code >= 300 {
				t.Fatalf("DELETE %s: %d %s", path, w.Code, w.Body.String())
			}
			if w := call(http.MethodPost, path, `{"id": "seed", "kind": "latency", "params": {"delay": "1ms"}}`); w.Code != http.StatusCreated {
				t.Fatalf("POST %s: %d %s", path, w.Code, w.Body.String())
			}
		}
		e := fuzzedBodies[int(endpoint)%len(fuzzedBodies)]
		w := call(e.method, e.path, body)
		switch {
		case w.Code >= 500:
			t.Fatalf("%s %s %q: %d %s", e.method, e.path, body, w.Code, w.Body.String())
		case w.Code >= 400:
			var out map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out["error"] == nil {
				t.Fatalf("%s %s %q: %d without a JSON error: %q", e.method, e.path, body, w.Code, w.Body.String())
			}
		}
	})
}

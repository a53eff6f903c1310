package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// fakeClock is a settable clock for boards, so TTLs end without sleeping.
// Proxies read it from their own goroutines.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// adminFixture is an HTTP proxy "web" with the admin API on its admin
// listener and a tcp proxy "db" beside it.
type adminFixture struct {
	web   *harness.Proxy
	db    *harness.TCPProxy
	admin *harness.Admin
	url   string
	clk   *fakeClock
}

func newAdminFixture(t *testing.T, opts harness.AdminOptions) *adminFixture {
	t.Helper()
	f := &adminFixture{admin: harness.NewAdmin(opts), clk: &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}}
	up := serve(t, &recorder{}, false)
	f.web = startProxy(t, harness.Options{Upstream: up.URL, Board: inject.NewBoard(1, f.clk.now), Admin: f.admin})
	f.db = startTCP(t, tcpServer(t, echo), inject.NewBoard(1, f.clk.now))
	if err := f.admin.Add("web", harness.ProtocolHTTP, f.web); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Add("db", harness.ProtocolTCP, f.db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.admin.Close(context.Background()) })
	f.url = f.web.AdminURL()
	return f
}

// call sends a request to the admin API and decodes the JSON answer.
func (f *adminFixture) call(t *testing.T, method, path, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		switch {
		case header[i] == "Host":
			req.Host = header[i+1]
		case header[i+1] == "":
			req.Header.Del(header[i])
		default:
			req.Header.Set(header[i], header[i+1])
		}
	}
	c := newClient(t, false)
	defer c.CloseIdleConnections() // the admin listener caps its connections
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func problemFields(body map[string]any) []string {
	var out []string
	ps, _ := body["problems"].([]any)
	for _, p := range ps {
		out = append(out, p.(map[string]any)["field"].(string))
	}
	return out
}

func TestAdmin_AddFaultErrors(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{MaxBody: 4096})
	tests := []struct {
		name, path, body string
		code             int
		fields           []string
	}{
		{"unknown kind", "/api/v1/proxies/web/faults", `{"kind": "latncy", "params": {"delay": "1s"}}`, 400, []string{"kind"}},
		{"tcp kind on an http proxy", "/api/v1/proxies/web/faults", `{"kind": "blackhole"}`, 400, []string{"kind"}},
		{"negative delay", "/api/v1/proxies/web/faults", `{"kind": "latency", "params": {"delay": "-1s"}}`, 400, []string{"params.delay"}},
		{"percent over 100", "/api/v1/proxies/web/faults", `{"kind": "abort", "params": {"percent": 150}}`, 400, []string{"params.percent"}},
		{"percent below 0", "/api/v1/proxies/web/faults", `{"kind": "abort", "params": {"percent": -1}}`, 400, []string{"params.percent"}},
		{"bytes below zero", "/api/v1/proxies/web/faults", `{"kind": "truncate", "params": {"bytes": -5}}`, 400, []string{"params.bytes"}},
		{"tcp bytes below zero", "/api/v1/proxies/db/faults", `{"kind": "limit_data", "params": {"bytes": "-5"}}`, 400, []string{"params.bytes"}},
		{"ttl of zero", "/api/v1/proxies/web/faults", `{"kind": "abort", "ttl": "0s"}`, 400, []string{"ttl"}},
		{"ttl not a duration", "/api/v1/proxies/web/faults", `{"kind": "abort", "ttl": "soon"}`, 400, []string{"ttl"}},
		{"negative ttl", "/api/v1/proxies/web/faults", `{"kind": "abort", "ttl": "-1s"}`, 400, []string{"ttl"}},
		{"ttl over the maximum", "/api/v1/proxies/web/faults", `{"kind": "abort", "ttl": "2562047h"}`, 400, []string{"ttl"}},
		{"tcp ttl over the maximum", "/api/v1/proxies/db/faults", `{"kind": "blackhole", "ttl": "5000h"}`, 400, []string{"ttl"}},
		{"no kind", "/api/v1/proxies/web/faults", `{"params": {}}`, 400, []string{"kind"}},
		{"unknown envelope key", "/api/v1/proxies/web/faults", `{"kind": "abort", "tll": "1s"}`, 400, []string{""}},
		{"unknown param", "/api/v1/proxies/web/faults", `{"kind": "abort", "params": {"stauts": 500}}`, 400, []string{"params.stauts"}},
		{"malformed JSON", "/api/v1/proxies/web/faults", `{"kind": `, 400, []string{""}},
		{"bad id", "/api/v1/proxies/web/faults", `{"id": "a b", "kind": "abort"}`, 400, []string{"id"}},
		{"proxy does not exist", "/api/v1/proxies/nope/faults", `{"kind": "abort"}`, 404, nil},
		{"body over the limit", "/api/v1/proxies/web/faults", `{"kind": "abort", "params": {"body": "` + strings.Repeat("x", 5000) + `"}}`, 413, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.call(t, http.MethodPost, tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("status %d (%v), want %d", code, body, tt.code)
			}
			if msg, _ := body["error"].(string); msg == "" {
				t.Errorf("answer %v has no error message", body)
			}
			if got := problemFields(body); strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("problem fields %q (%v), want %q", got, body["problems"], tt.fields)
			}
		})
	}
	if n := len(f.web.Board().Active()) + len(f.db.Board().Active()); n != 0 {
		t.Errorf("%d faults active after only bad requests", n)
	}
}

func TestAdmin_FaultLifecycle(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	c := newClient(t, false)

	code, body := f.call(t, http.MethodPost, "/api/v1/proxies/web/faults", `{"id": "boom", "kind": "abort", "ttl": "30s", "params": {"status": 502, "path": "/api"}}`)
	if code != http.StatusCreated || body["id"] != "boom" || body["ttl"] != "30s" {
		t.Fatalf("add: %d %v", code, body)
	}
	if params := body["params"].(map[string]any); params["status"] != float64(502) || params["path"] != "/api" {
		t.Errorf("params = %v", params)
	}
	if r := get(t, c, f.web.URL()+"/api/orders"); r.status != 502 {
		t.Errorf("through the proxy: %d, want the injected 502", r.status)
	}
	code, body = f.call(t, http.MethodGet, "/api/v1/proxies/web/faults/boom", "")
	stats := body["stats"].(map[string]any)
	if code != 200 || stats["injected"] != float64(1) || body["fired"] != true || stats["effective_rate"] != float64(1) {
		t.Errorf("get: %d %v", code, body)
	}

	// A POST of an active id replaces the fault, and says so.
	code, body = f.call(t, http.MethodPost, "/api/v1/proxies/web/faults", `{"id": "boom", "kind": "abort", "ttl": "30s", "params": {"status": 502, "path": "/api"}}`)
	if code != http.StatusOK || body["replaced"] != true || body["stats"].(map[string]any)["injected"] != float64(0) {
		t.Errorf("POST of an active id: %d %v, want 200, replaced, counters afresh", code, body)
	}

	code, body = f.call(t, http.MethodPut, "/api/v1/proxies/web/faults/boom", `{"kind": "abort", "params": {"status": 504}}`)
	if code != 200 || body["params"].(map[string]any)["status"] != float64(504) {
		t.Errorf("update: %d %v", code, body)
	}
	if r := get(t, c, f.web.URL()+"/x"); r.status != 504 {
		t.Errorf("after update: %d, want 504", r.status)
	}
	if code, _ := f.call(t, http.MethodPut, "/api/v1/proxies/web/faults/nope", `{"kind": "abort"}`); code != 404 {
		t.Errorf("update of an unknown fault: %d, want 404", code)
	}

	// An id is generated from the kind when none is given.
	code, body = f.call(t, http.MethodPost, "/api/v1/proxies/db/faults", `{"kind": "latency", "params": {"delay": "1ms"}}`)
	if code != 201 || body["id"] != "latency" || body["ttl"] != harness.DefaultFaultTTL.String() {
		t.Errorf("add with generated id and default TTL: %d %v", code, body)
	}

	code, body = f.call(t, http.MethodGet, "/api/v1/proxies", "")
	proxies := body["proxies"].([]any)
	if code != 200 || len(proxies) != 2 {
		t.Fatalf("list: %d %v", code, body)
	}
	db := proxies[0].(map[string]any)
	if db["name"] != "db" || db["protocol"] != "tcp" || len(db["faults"].([]any)) != 1 || db["enabled"] != true {
		t.Errorf("db = %v", db)
	}

	code, body = f.call(t, http.MethodDelete, "/api/v1/proxies/web/faults/boom", "")
	if code != 200 || body["stats"].(map[string]any)["until"] == nil {
		t.Errorf("delete: %d %v", code, body)
	}
	if code, _ := f.call(t, http.MethodDelete, "/api/v1/proxies/web/faults/boom", ""); code != 404 {
		t.Errorf("second delete: %d, want 404", code)
	}
	if r := get(t, c, f.web.URL()+"/x"); r.status != 201 {
		t.Errorf("after delete: %d, want the upstream's 201", r.status)
	}

	code, body = f.call(t, http.MethodPost, "/api/v1/reset", "")
	if code != 200 || body["cleared"] != float64(1) {
		t.Errorf("reset: %d %v", code, body)
	}
	if n := len(f.db.Board().Active()); n != 0 {
		t.Errorf("%d faults left after reset", n)
	}
}

func TestAdmin_TTLExpires(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	if code, body := f.call(t, http.MethodPost, "/api/v1/proxies/web/faults", `{"kind": "abort", "ttl": "10s"}`); code != 201 {
		t.Fatalf("add: %d %v", code, body)
	}
	c := newClient(t, false)
	if r := get(t, c, f.web.URL()+"/"); r.status != 503 {
		t.Fatalf("before the TTL: %d", r.status)
	}
	f.clk.advance(10 * time.Second)
	if r := get(t, c, f.web.URL()+"/"); r.status != 201 {
		t.Errorf("after the TTL: %d, want the upstream's answer", r.status)
	}
	if _, body := f.call(t, http.MethodGet, "/api/v1/proxies/web/faults", ""); len(body["faults"].([]any)) != 0 {
		t.Errorf("faults listed after their TTL: %v", body)
	}
}

// TestAdmin_TTLBounds checks a fault's lifetime through the API: up to
// MaxFaultTTL is taken, beyond it refused with a message naming the field
// and the maximum (never shortened), none is the default, and a Toxiproxy
// toxic, which cannot name one, gets the default.
func TestAdmin_TTLBounds(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	start := f.clk.now()
	tests := []struct {
		name, method, path, body string
		code                     int
		ttl                      time.Duration // of the fault afterwards; 0: refused
	}{
		{"the maximum", http.MethodPost, "/api/v1/proxies/web/faults", `{"id": "day", "kind": "abort", "ttl": "24h"}`, 201, harness.MaxFaultTTL},
		{"a second over", http.MethodPost, "/api/v1/proxies/web/faults", `{"id": "over", "kind": "abort", "ttl": "24h0m1s"}`, 400, 0},
		{"the issue's figure", http.MethodPost, "/api/v1/proxies/web/faults", `{"id": "over", "kind": "latency", "ttl": "2562047h", "params": {"delay": "1s"}}`, 400, 0},
		{"none", http.MethodPost, "/api/v1/proxies/db/faults", `{"id": "plain", "kind": "blackhole"}`, 201, harness.DefaultFaultTTL},
		{"replaced beyond the maximum", http.MethodPost, "/api/v1/proxies/web/faults", `{"id": "day", "kind": "abort", "ttl": "1000h"}`, 400, 0},
		{"updated beyond the maximum", http.MethodPut, "/api/v1/proxies/web/faults/day", `{"kind": "abort", "ttl": "1000h"}`, 400, 0},
		{"a toxic", http.MethodPost, "/proxies/db/toxics", `{"name": "slow", "type": "latency", "attributes": {"latency": 10}}`, 200, harness.DefaultFaultTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.call(t, tt.method, tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("status %d (%v), want %d", code, body, tt.code)
			}
			if tt.ttl == 0 {
				ps, _ := body["problems"].([]any)
				if len(ps) != 1 {
					t.Fatalf("problems %v, want one about the ttl", body["problems"])
				}
				p := ps[0].(map[string]any)
				if msg, _ := p["message"].(string); p["field"] != "ttl" || !strings.Contains(msg, "over the maximum of 24h0m0s") {
					t.Errorf("problem %v, want the ttl over the maximum of 24h0m0s", p)
				}
			}
		})
	}
	// What was refused changed nothing: "day" keeps its day, "over" is
	// not there, the default and the toxic last DefaultFaultTTL.
	want := map[string]time.Duration{"web/day": harness.MaxFaultTTL, "db/plain": harness.DefaultFaultTTL, "db/slow": harness.DefaultFaultTTL}
	for _, proxy := range []string{"web", "db"} {
		_, body := f.call(t, http.MethodGet, "/api/v1/proxies/"+proxy+"/faults", "")
		for _, x := range body["faults"].([]any) {
			fi := x.(map[string]any)
			key := proxy + "/" + fi["id"].(string)
			ttl, ok := want[key]
			if !ok {
				t.Errorf("fault %s is on, want it refused", key)
				continue
			}
			delete(want, key)
			if fi["ttl"] != ttl.String() || fi["expires_at"] != start.Add(ttl).Format(time.RFC3339) {
				t.Errorf("fault %s: ttl %v, expires at %v; want %v, %v", key, fi["ttl"], fi["expires_at"], ttl, start.Add(ttl).Format(time.RFC3339))
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("faults missing: %v", want)
	}
}

// TestAdmin_DefaultTTLOverMaximum checks that a default TTL set in code
// beyond MaxFaultTTL still ends faults within it, the Toxiproxy API's
// toxics included.
func TestAdmin_DefaultTTLOverMaximum(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{DefaultTTL: 1000 * time.Hour})
	if code, body := f.call(t, http.MethodPost, "/api/v1/proxies/web/faults", `{"kind": "abort"}`); code != 201 || body["ttl"] != harness.MaxFaultTTL.String() {
		t.Errorf("fault without a ttl: %d %v, want 201 and ttl %v", code, body, harness.MaxFaultTTL)
	}
	if code, body := f.call(t, http.MethodPost, "/proxies/db/toxics", `{"name": "slow", "type": "latency", "attributes": {"latency": 10}}`); code != 200 {
		t.Fatalf("toxic: %d %v", code, body)
	}
	if _, body := f.call(t, http.MethodGet, "/api/v1/proxies/db/faults/slow", ""); body["ttl"] != harness.MaxFaultTTL.String() {
		t.Errorf("toxic: %v, want ttl %v", body, harness.MaxFaultTTL)
	}
}

func TestAdmin_Token(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{Token: "s3cret"})
	tests := []struct {
		name   string
		header []string
		code   int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"not bearer", []string{"Authorization", "Basic s3cret"}, 401},
		{"right token", []string{"Authorization", "Bearer s3cret"}, 200},
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v1/proxies", "/proxies"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				code, body := f.call(t, http.MethodGet, path, "", tt.header...)
				if code != tt.code {
					t.Errorf("status %d, want %d", code, tt.code)
				}
				if code == 401 && body["error"] == nil {
					t.Errorf("401 without a JSON error: %v", body)
				}
			})
		}
	}
	// /metrics and /healthz stay open: scrapers carry no token.
	if r := get(t, newClient(t, false), f.url+"/healthz"); r.status != 200 {
		t.Errorf("/healthz: %d", r.status)
	}
}

func TestCheckAdminListen(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8474", "", true},
		{"[::1]:8474", "", true},
		{"localhost:8474", "", true},
		{"127.0.0.2:0", "", true},
		{"0.0.0.0:8474", "", false},
		{":8474", "", false},
		{"[::]:8474", "", false},
		{"0.0.0.0:8474", "t", true},
		{"nonsense", "t", false},
	}
	for _, tt := range tests {
		if err := harness.CheckAdminListen(tt.addr, tt.token); (err == nil) != tt.ok {
			t.Errorf("CheckAdminListen(%q, %q) = %v, want ok %v", tt.addr, tt.token, err, tt.ok)
		}
	}
	_, err := harness.Start(harness.Options{Upstream: "http://127.0.0.1:1", Listen: "127.0.0.1:0", AdminListen: "0.0.0.0:0", Admin: harness.NewAdmin(harness.AdminOptions{})})
	if err == nil {
		t.Error("Start served an admin API beyond loopback without a token")
	}
}

func TestAdmin_NotFound(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	for _, path := range []string{"/api/v1/nothing", "/api/v1/proxies/nope", "/api/v1/proxies/web/faults/nope"} {
		if code, body := f.call(t, http.MethodGet, path, ""); code != 404 || body["error"] == nil {
			t.Errorf("GET %s: %d %v, want a JSON 404", path, code, body)
		}
	}
}

// FuzzAdmin_AddFault throws arbitrary bodies at the add-fault endpoint of an
// http and a tcp proxy: every answer is 201 or a 4xx with a JSON error,
// never a 5xx or a panic, and every fault taken ends within MaxFaultTTL.
func FuzzAdmin_AddFault(f *testing.F) {
	seeds := []string{
		`{"kind": "latency", "ttl": "30s", "params": {"delay": "200ms", "jitter": "50ms", "percent": 30}}`,
		`{"kind": "abort", "params": {"status": 503, "schedule": {"first": 3, "ramp": {"to": "50%", "over": "1s"}}}}`,
		`{"kind": "header", "params": {"set": {"X-A": "b"}, "path_pattern": "^/api"}}`,
		`{"kind": "blackhole", "params": {"direction": "upstream", "timeout": "1s"}}`,
		`{"kind": "slicer", "params": {"average_size": "1KiB"}}`,
		`{"kind": "latency", "params": {"delay": -1}}`,
		`{"kind": "", "ttl": "0s"}`, `[]`, `null`, `{"params": "x"}`, `{"kind": "abort"} {}`,
		`{"kind": "abort", "ttl": "24h"}`, `{"kind": "abort", "ttl": "2562047h"}`,
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	admin := harness.NewAdmin(harness.AdminOptions{MaxBody: 1 << 14})
	f.Cleanup(func() { _ = admin.Close(context.Background()) })
	web := inject.NewBoard(1, nil)
	db := inject.NewBoard(1, nil)
	_ = admin.Add("web", harness.ProtocolHTTP, boardTarget{web})
	_ = admin.Add("db", harness.ProtocolTCP, boardTarget{db})
	f.Fuzz(func(t *testing.T, body string, tcp bool) {
		name := "web"
		if tcp {
			name = "db"
		}
		w := newRecorder()
		admin.ServeHTTP(w, httpRequest(http.MethodPost, "/api/v1/proxies/"+name+"/faults", body))
		switch {
		case w.code == http.StatusCreated || w.code == http.StatusOK:
			var fi harness.FaultInfo
			if err := json.Unmarshal(w.body.Bytes(), &fi); err != nil || fi.ID == "" {
				t.Fatalf("201 with body %q", w.body.String())
			}
			if ttl, err := time.ParseDuration(fi.TTL); err != nil || ttl <= 0 || ttl > harness.MaxFaultTTL {
				t.Fatalf("body %q taken with ttl %q, want one above zero and at most %v", body, fi.TTL, harness.MaxFaultTTL)
			}
			admin.Reset()
		case w.code >= 400 && w.code < 500:
			var e struct{ Error string }
			if err := json.Unmarshal(w.body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d without a JSON error: %q", w.code, w.body.String())
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.code, body, w.body.String())
		}
	})
}

// boardTarget is a Target with only a board, for tests of the API alone.
type boardTarget struct{ b *inject.Board }

func (t boardTarget) Board() *inject.Board { return t.b }
func (boardTarget) Addr() string           { return "127.0.0.1:0" }
func (boardTarget) Upstream() string       { return "127.0.0.1:1" }

type recorderW struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func newRecorder() *recorderW { return &recorderW{h: http.Header{}} }

func (w *recorderW) Header() http.Header { return w.h }
func (w *recorderW) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return w.body.Write(p)
}
func (w *recorderW) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func httpRequest(method, path, body string) *http.Request {
	r, _ := http.NewRequestWithContext(context.Background(), method, "http://127.0.0.1"+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// TestAdmin_NativeFaultsInToxiproxyView checks that a tcp fault set through
// /api/v1 shows in the Toxiproxy view as the toxic it amounts to.
func TestAdmin_NativeFaultsInToxiproxyView(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	if code, body := f.call(t, http.MethodPost, "/api/v1/proxies/db/faults", `{"id": "slow", "kind": "latency", "params": {"delay": "250ms", "percent": 50}}`); code != 201 {
		t.Fatalf("add: %d %v", code, body)
	}
	code, body := f.call(t, http.MethodGet, "/proxies/db/toxics/slow", "")
	if code != 200 || body["type"] != "latency" || body["stream"] != "downstream" || body["toxicity"] != 0.5 {
		t.Fatalf("toxic = %d %v", code, body)
	}
	if attrs := body["attributes"].(map[string]any); attrs["latency"] != float64(250) {
		t.Errorf("attributes = %v", attrs)
	}
}

func TestAdmin_ToxiproxyRemovesNativeFault(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	if code, _ := f.call(t, http.MethodPost, "/api/v1/proxies/db/faults", `{"id": "cut", "kind": "limit_data", "params": {"bytes": 10}}`); code != 201 {
		t.Fatal("add failed")
	}
	if code, body := f.call(t, http.MethodPost, "/proxies/db/toxics/cut", `{"attributes": {"bytes": 20}}`); code != 200 || body["attributes"].(map[string]any)["bytes"] != float64(20) {
		t.Errorf("update through the Toxiproxy API: %d %v", code, body)
	}
	if code, _ := f.call(t, http.MethodDelete, "/proxies/db/toxics/cut", ""); code != http.StatusNoContent {
		t.Errorf("delete through the Toxiproxy API: %d", code)
	}
	if n := len(f.db.Board().Active()); n != 0 {
		t.Errorf("%d faults left", n)
	}
}

// TestAdmin_RefusesWebPages sends what a web page can make a browser send,
// and a DNS-rebinding request, to a real admin listener: each is refused
// and changes nothing, while resctl's own requests still work.
func TestAdmin_RefusesWebPages(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	const fault = `{"kind": "abort", "params": {"status": 503}}`
	tests := []struct {
		name, method, path, body string
		header                   []string
		want                     int
	}{
		{"cross-site text/plain post", http.MethodPost, "/api/v1/proxies/web/faults", fault,
			[]string{"Content-Type", "text/plain;charset=UTF-8", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "User-Agent", "Mozilla/5.0"}, 403},
		{"form post", http.MethodPost, "/api/v1/proxies/web/faults", "kind=abort", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"text/plain post", http.MethodPost, "/api/v1/proxies/web/faults", fault, []string{"Content-Type", "text/plain"}, 415},
		{"origin", http.MethodPost, "/api/v1/proxies/web/faults", fault, []string{"Origin", "http://127.0.0.1:3000"}, 403},
		{"sec-fetch-site", http.MethodPost, "/api/v1/proxies/web/faults", fault, []string{"Sec-Fetch-Site", "same-origin"}, 403},
		{"foreign host", http.MethodPost, "/api/v1/proxies/web/faults", fault, []string{"Host", "rebind.evil.example:8474"}, 403},
		{"foreign host reading", http.MethodGet, "/api/v1/proxies", "", []string{"Host", "rebind.evil.example"}, 403},
		{"toxiproxy form post", http.MethodPost, "/proxies/db/toxics", "type=timeout", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"toxiproxy cross-site post", http.MethodPost, "/proxies/db/toxics", `{"type": "timeout"}`, []string{"Content-Type", "text/plain", "Origin", "https://evil.example"}, 403},
		{"toxiproxy proxy on every interface", http.MethodPost, "/proxies", `{"name": "open", "listen": "0.0.0.0:0", "upstream": "127.0.0.1:1"}`, nil, 403},
		{"toxiproxy proxy on the ipv6 wildcard", http.MethodPost, "/proxies", `{"name": "open", "listen": "[::]:0", "upstream": "127.0.0.1:1"}`, nil, 403},
		{"toxiproxy proxy on all interfaces by empty host", http.MethodPost, "/populate", `[{"name": "open", "listen": ":0", "upstream": "127.0.0.1:1"}]`, nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.call(t, tt.method, tt.path, tt.body, tt.header...)
			if code != tt.want || body["error"] == nil {
				t.Fatalf("status %d %v, want %d with a JSON error", code, body, tt.want)
			}
			if n := len(f.web.Board().Active()) + len(f.db.Board().Active()); n != 0 {
				t.Errorf("%d faults active after a refused request", n)
			}
			if code, _ := f.call(t, http.MethodGet, "/proxies/open", ""); code != http.StatusNotFound {
				t.Errorf("a proxy was opened: GET /proxies/open = %d", code)
			}
		})
	}

	// What resctl's clients and Toxiproxy's send still works.
	if code, body := f.call(t, http.MethodPost, "/api/v1/proxies/web/faults", fault, "Host", "localhost"); code != http.StatusCreated {
		t.Fatalf("JSON post: %d %v", code, body)
	}
	if code, body := f.call(t, http.MethodDelete, "/api/v1/proxies/web/faults", ""); code != http.StatusOK {
		t.Fatalf("JSON delete: %d %v", code, body)
	}
	if code, body := f.call(t, http.MethodPost, "/proxies", `{"name": "local", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}`); code != http.StatusCreated {
		t.Fatalf("toxiproxy create on loopback: %d %v", code, body)
	}
	if code, body := f.call(t, http.MethodPost, "/proxies/local", `{"enabled": false}`, "Content-Type", "text/plain"); code != http.StatusOK {
		t.Fatalf("toxiproxy client's text/plain update: %d %v", code, body)
	}
	if code, _ := f.call(t, http.MethodDelete, "/proxies/local", "", "Content-Type", ""); code != http.StatusNoContent {
		t.Fatalf("toxiproxy client's delete without Content-Type: %d", code)
	}
}

package harness_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
)

// writeConfig writes a proxy config whole, as editors save it, so that a
// watching Serve never reads half a file.
func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// serveConfig runs Serve on the config file until the test ends, and
// returns what started and the outcome of every reload.
func serveConfig(t *testing.T, path string) (harness.Started, <-chan error) {
	t.Helper()
	pcs, err := harness.ReadProxyConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reloaded, done, started := make(chan error, 8), make(chan error, 1), make(chan harness.Started, 1)
	go func() {
		done <- harness.Serve(ctx, harness.ServeOptions{Proxies: pcs, AdminListen: "127.0.0.1:0", ConfigPath: path, WatchEvery: 10 * time.Millisecond,
			OnReload: func(err error) { reloaded <- err }}, func(s harness.Started) { started <- s })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case s := <-started:
		return s, reloaded
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	panic("unreachable")
}

// scrapeAdminUntil reads the admin /metrics until every series of want has
// its value, or for at most 5 s, and returns the last reading: the proxy
// counts a request once its handler returns, which may be a moment after
// the client has read the whole response.
func scrapeAdminUntil(t *testing.T, client *http.Client, adminURL string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := scrapeAdmin(t, client, adminURL)
		done := true
		for s, v := range want {
			if got, ok := m[s]; !ok || got != v {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scrapeAdmin reads the admin /metrics as a map from each series, written
// as the text format writes it, to its value.
func scrapeAdmin(t *testing.T, client *http.Client, adminURL string) map[string]float64 {
	t.Helper()
	resp, err := client.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := bufio.NewReader(resp.Body).ReadString(0)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return parseMetrics(t, resp.Body)
}

// seriesOf lists the series of a metric whose labels contain every one of
// labels (each written name="value"), sorted.
func seriesOf(m map[string]float64, metric string, labels ...string) []string {
	var out []string
	for s := range m {
		name, ls, _ := strings.Cut(s, "{")
		if name != metric {
			continue
		}
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(ls, l) }) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// The admin /metrics of `resctl proxy --config` serves every proxy's own
// metrics — requests, guard policies, upstreams, faults — labelled with the
// proxy's name, the process's Go metrics once, and after a reload the
// guard metrics of the chains now serving: a policy kept across the reload
// keeps counting, a removed one is gone, a new one appears.
func TestServe_AdminMetricsFollowProxiesAndReloads(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer up.Close()
	apiUp := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer apiUp.Close()
	cfg := filepath.Join(t.TempDir(), "proxies.yaml")
	config := func(route string) string {
		return `- name: web
  upstream: ` + up.URL + `
  guard: [{rate_limit: {rate: 1000/s, burst: 100}}]
  routes:
` + route + `
- name: api
  upstreams: [` + apiUp.URL + `]
- name: db
  protocol: tcp
  upstream: 127.0.0.1:1
`
	}
	writeConfig(t, cfg, config(`    - name: orders
      match: {path: /orders}
      guard: [{rate_limit: {rate: 1/h, burst: 1}}]`))
	st, reloaded := serveConfig(t, cfg)
	web, api := "http://"+st.Proxies[0].Listen, "http://"+st.Proxies[1].Listen

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	do := func(method, url, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A fault on an http proxy (at zero percent: traffic is untouched) and
	// one on the tcp proxy, for their boards' metrics.
	for _, name := range []string{"web", "db"} {
		if code := do(http.MethodPost, st.AdminURL+"/api/v1/proxies/"+name+"/faults", `{"kind": "latency", "params": {"delay": "1ms", "percent": 0}}`); code != http.StatusCreated {
			t.Fatalf("add a fault to %s: %d", name, code)
		}
	}
	var codes []int
	for range 3 {
		codes = append(codes, do(http.MethodGet, web+"/orders", ""))
	}
	if !slices.Equal(codes, []int{200, 429, 429}) {
		t.Fatalf("/orders answered %v, want 200 then two 429 from the route's rate limit", codes)
	}
	if code := do(http.MethodGet, api+"/users", ""); code != http.StatusOK {
		t.Fatalf("api /users: %d", code)
	}

	want := map[string]float64{
		`resctl_proxy_requests_total{code="200",proxy="web"}`:                                              1,
		`resctl_proxy_requests_total{code="429",proxy="web"}`:                                              2,
		`resctl_proxy_requests_total{code="200",proxy="api"}`:                                              1,
		`resctl_guard_admitted_total{kind="rate_limit",policy="web",proxy="web"}`:                          3,
		`resctl_guard_admitted_total{kind="rate_limit",policy="web/orders",proxy="web"}`:                   1,
		`resctl_guard_rejected_total{kind="rate_limit",policy="web/orders",proxy="web",reason="rate"}`:     2,
		`resctl_proxy_upstream_requests_total{outcome="success",proxy="api",upstream="` + apiUp.URL + `"}`: 1,
		`resctl_proxy_upstream_requests_total{outcome="success",proxy="web",upstream="` + up.URL + `"}`:    1,
		`resctl_fault_active{fault="latency",kind="latency",proxy="web"}`:                                  1,
		`resctl_fault_active{fault="latency",kind="latency",proxy="db"}`:                                   1,
		`resctl_fault_matched_total{fault="latency",kind="latency",proxy="web"}`:                           1,
	}
	m := scrapeAdminUntil(t, client, st.AdminURL, want)
	for series, want := range want {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (served: %t), want %v", series, got, ok, want)
		}
	}
	if got := seriesOf(m, "go_goroutines"); !slices.Equal(got, []string{"go_goroutines"}) {
		t.Errorf("go_goroutines series: %v, want one, without a proxy label", got)
	}
	if got := seriesOf(m, "resctl_guard_admitted_total"); len(got) != 2 {
		t.Errorf("resctl_guard_admitted_total series: %v, want web's and web/orders'", got)
	}

	// The route's chain is replaced by another route's; the proxy-wide
	// policy is unchanged and keeps its state and its counts.
	writeConfig(t, cfg, config(`    - name: users
      match: {path: /users}
      guard: [{rate_limit: {rate: 1/h, burst: 2}}]`))
	if err := harness.AwaitReload(t, reloaded); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if code := do(http.MethodGet, web+"/users", ""); code != http.StatusOK {
		t.Fatalf("web /users after the reload: %d", code)
	}
	want = map[string]float64{
		`resctl_proxy_requests_total{code="200",proxy="web"}`:                           2,
		`resctl_guard_admitted_total{kind="rate_limit",policy="web",proxy="web"}`:       4,
		`resctl_guard_admitted_total{kind="rate_limit",policy="web/users",proxy="web"}`: 1,
	}
	m = scrapeAdminUntil(t, client, st.AdminURL, want)
	for series, want := range want {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("after the reload, %s = %v (served: %t), want %v", series, got, ok, want)
		}
	}
	for s := range m {
		if strings.Contains(s, `policy="web/orders"`) {
			t.Errorf("after the reload, the removed route's policy is still served: %s", s)
		}
	}
}

// Every upstream is checked when the file is read: what the proxy's
// protocol forwards to, a host, a port in range, one place per upstream.
// Each problem carries its file:line:col and key path, and all of them are
// reported at once.
func TestReadProxyConfig_Upstreams(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // problems after "FILE:"; none for a valid file
	}{
		{
			name: "valid",
			yaml: `- {name: a, upstream: 'http://127.0.0.1:8080'}
- {name: b, upstream: 'https://orders.internal/base', protocol: grpc}
- {name: c, upstream: 'http://[::1]:65535', routes: [{match: {path: /x}, upstreams: ['http://127.0.0.1:9001']}]}
- {name: d, upstreams: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'], protocol: h2c}
- {name: e, upstream: '127.0.0.1:5432', protocol: tcp}
- {name: f, upstream: 'db.internal:6379', protocol: tcp}
`,
		},
		{
			name: "not a URL",
			yaml: "- name: web\n  upstream: not a url\n",
			want: []string{`2:13: [0].upstream: "not a url" is not an http:// or https:// URL, e.g. http://127.0.0.1:8080`},
		},
		{
			name: "host:port for an http proxy",
			yaml: "- name: web\n  upstream: 127.0.0.1:9\n",
			want: []string{`2:13: [0].upstream: "127.0.0.1:9" is not a URL: write http://127.0.0.1:9`},
		},
		{
			name: "another scheme",
			yaml: "- name: web\n  upstream: ftp://127.0.0.1:21\n",
			want: []string{`2:13: [0].upstream: "ftp://127.0.0.1:21" is not an http:// or https:// URL, e.g. http://127.0.0.1:8080`},
		},
		{
			name: "limits",
			yaml: "- name: web\n  upstream: http://127.0.0.1:9\n  limits: {max_conns: 20, idle_timeout: 200ms, read_header_timeout: 1s, max_header_bytes: 4096}\n" +
				"- name: db\n  upstream: 127.0.0.1:9\n  protocol: tcp\n  limits: {max_conns: -1, idle_timeout: 1s}\n",
			want: []string{
				`7:23: [1].limits.max_conns: must not be negative (0 takes the default)`,
				`7:41: [1].limits.idle_timeout: needs an http, h2c or grpc proxy; a tcp proxy takes max_conns only`,
			},
		},
		{
			name: "port out of range",
			yaml: "- name: web\n  upstream: http://127.0.0.1:99999\n",
			want: []string{`2:13: [0].upstream: "http://127.0.0.1:99999": port 99999 is not a number in 1..65535`},
		},
		{
			name: "port zero",
			yaml: "- name: web\n  upstream: http://127.0.0.1:0\n",
			want: []string{`2:13: [0].upstream: "http://127.0.0.1:0": port 0 is not a number in 1..65535`},
		},
		{
			name: "no host",
			yaml: "- name: web\n  upstream: http://:18081\n",
			want: []string{`2:13: [0].upstream: "http://:18081" has no host, e.g. http://127.0.0.1:18081`},
		},
		{
			name: "one of several upstreams",
			yaml: "- name: web\n  upstreams:\n    - http://127.0.0.1:9001\n    - 127.0.0.1:9002\n",
			want: []string{`4:7: [0].upstreams[1]: "127.0.0.1:9002" is not a URL: write http://127.0.0.1:9002`},
		},
		{
			name: "a route's upstream",
			yaml: "- name: web\n  upstream: http://127.0.0.1:9000\n  routes:\n    - match: {path: /orders}\n      upstreams: [http://orders:70000]\n",
			want: []string{`5:19: [0].routes[0].upstreams[0]: "http://orders:70000": port 70000 is not a number in 1..65535`},
		},
		{
			name: "an upstream listed twice",
			yaml: "- name: web\n  upstreams: [http://127.0.0.1:9001, http://127.0.0.1:9001]\n  routes:\n    - match: {path: /orders}\n      upstreams: [http://127.0.0.1:9002, http://127.0.0.1:9003, http://127.0.0.1:9002]\n",
			want: []string{
				`2:38: [0].upstreams[1]: "http://127.0.0.1:9001" is listed twice`,
				`5:65: [0].routes[0].upstreams[2]: "http://127.0.0.1:9002" is listed twice`,
			},
		},
		{
			name: "a URL for a tcp proxy",
			yaml: "- name: db\n  protocol: tcp\n  upstream: tcp://127.0.0.1:5432\n",
			want: []string{`3:13: [0].upstream: "tcp://127.0.0.1:5432" is a URL; a tcp proxy takes host:port, e.g. 127.0.0.1:5432`},
		},
		{
			name: "a tcp proxy without a port",
			yaml: "- name: db\n  protocol: tcp\n  upstream: 127.0.0.1\n",
			want: []string{`3:13: [0].upstream: "127.0.0.1" is not host:port, e.g. 127.0.0.1:5432`},
		},
		{
			name: "a tcp proxy without a host",
			yaml: "- name: db\n  protocol: tcp\n  upstream: ':5432'\n",
			want: []string{`3:13: [0].upstream: ":5432" has no host, e.g. 127.0.0.1:5432`},
		},
		{
			name: "a tcp proxy's port by name",
			yaml: "- name: db\n  protocol: tcp\n  upstream: 127.0.0.1:postgres\n",
			want: []string{`3:13: [0].upstream: "127.0.0.1:postgres": port postgres is not a number in 1..65535`},
		},
		{
			name: "every proxy's problems at once",
			yaml: "- {name: a, upstream: 'http://:1'}\n- {name: b, upstream: 'x:1:2', protocol: tcp}\n",
			want: []string{
				`1:23: [0].upstream: "http://:1" has no host, e.g. http://127.0.0.1:1`,
				`2:23: [1].upstream: "x:1:2" is not host:port, e.g. 127.0.0.1:5432`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "proxies.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := harness.ReadProxyConfig(path)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, path+":"+w)
			}
			if !slices.Equal(got, want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// CheckUpstream is the check behind the config file's, for callers with an
// upstream of their own, such as a command-line flag.
func TestCheckUpstream(t *testing.T) {
	tests := []struct {
		protocol, upstream string
		ok                 bool
	}{
		{harness.ProtocolHTTP, "http://127.0.0.1:8080", true},
		{harness.ProtocolHTTP, "https://example.internal", true},
		{harness.ProtocolHTTP, "http://127.0.0.1:", true},
		{harness.ProtocolGRPC, "http://[::1]:50051", true},
		{harness.ProtocolTCP, "[::1]:5432", true},
		{harness.ProtocolHTTP, "", false},
		{harness.ProtocolHTTP, "localhost:8080", false},
		{harness.ProtocolHTTP, "http://127.0.0.1:65536", false},
		{harness.ProtocolH2C, "http://:8080", false},
		{harness.ProtocolTCP, "", false},
		{harness.ProtocolTCP, "127.0.0.1:65536", false},
		{harness.ProtocolTCP, "http://127.0.0.1:5432", false},
	}
	for _, tt := range tests {
		t.Run(tt.protocol+" "+tt.upstream, func(t *testing.T) {
			if err := harness.CheckUpstream(tt.protocol, tt.upstream); (err == nil) != tt.ok {
				t.Errorf("CheckUpstream(%q, %q) = %v, want ok %t", tt.protocol, tt.upstream, err, tt.ok)
			}
		})
	}
}

// A proxy's balance key has the scenario's meaning: the keys left out get
// their defaults, impossible values are reported at their keys.
func TestReadProxyConfig_Balance(t *testing.T) {
	custom := harness.DefaultBalanceConfig()
	custom.Ejection.ConsecutiveFailures = 2
	custom.Ejection.MaxPercent = 100
	custom.Pool.MaxConns = 8
	custom.Pool.MaxLifetime = time.Minute
	def := harness.DefaultBalanceConfig()
	tests := []struct {
		name, yaml string
		want       *harness.BalanceConfig
		problems   []string
	}{
		{name: "left out", yaml: "- {name: web, upstream: 'http://127.0.0.1:1'}\n"},
		{name: "empty", yaml: "- {name: web, upstream: 'http://127.0.0.1:1', balance: {}}\n", want: &def},
		{
			name: "some keys",
			yaml: "- name: web\n  upstreams: [http://127.0.0.1:1, http://127.0.0.1:2]\n  balance:\n    ejection: {consecutive_failures: 2, max_percent: 100%, base_time: }\n    pool: {max_conns: 8, max_lifetime: 1m}\n",
			want: &custom,
		},
		{
			name: "impossible values",
			yaml: "- name: web\n  upstream: http://127.0.0.1:1\n  balance:\n    ejection: {base_time: 1m, max_time: 10s}\n    pool: {max_conns: -1}\n",
			problems: []string{
				`4:41: [0].balance.ejection.max_time: 10s is below base_time 1m0s`,
				`5:23: [0].balance.pool.max_conns: must not be negative (0 means no limit, or the default)`,
			},
		},
		{
			name:     "an unknown key",
			yaml:     "- name: web\n  upstream: http://127.0.0.1:1\n  balance: {ejection: {consecutive_failure: 3}}\n",
			problems: []string{`3:24: [0].balance.ejection.consecutive_failure: unknown key "consecutive_failure" (did you mean "consecutive_failures"?)`},
		},
		{
			name:     "a tcp proxy",
			yaml:     "- name: db\n  protocol: tcp\n  upstream: 127.0.0.1:5432\n  balance: {pool: {max_conns: 4}}\n",
			problems: []string{`4:12: [0].balance: balance needs an http, h2c or grpc proxy; a tcp proxy forwards to one upstream`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "proxies.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			pcs, err := harness.ReadProxyConfig(path)
			if tt.problems != nil {
				var want []string
				for _, p := range tt.problems {
					want = append(want, path+":"+p)
				}
				if err == nil || err.Error() != strings.Join(want, "\n") {
					t.Errorf("problems:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch got := pcs[0].Balance; {
			case tt.want == nil && got != nil:
				t.Errorf("balance = %+v, want none (the defaults)", *got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Errorf("balance = %+v, want %+v", got, *tt.want)
			}
		})
	}
}

// The balance key reaches the proxy: with consecutive_failures: 1 and
// max_percent: 100%, one failure ejects the failing upstream, and the
// next requests all go to the other one. With the default (5 failures in
// a row) the failing upstream would still get every other request.
func TestServe_BalanceFromConfig(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer bad.Close()
	cfg := filepath.Join(t.TempDir(), "proxies.yaml")
	writeConfig(t, cfg, `- name: web
  upstreams: [`+good.URL+`, `+bad.URL+`]
  balance:
    ejection: {consecutive_failures: 1, max_percent: 100%, base_time: 10m, max_time: 10m}
`)
	st, _ := serveConfig(t, cfg)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var codes []int
	for range 20 {
		resp, err := client.Get("http://" + st.Proxies[0].Listen + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if n := countOf(codes, http.StatusInternalServerError); n > 1 {
		t.Errorf("answers %v: %d failures, want at most one before the failing upstream is ejected", codes, n)
	}
	m := scrapeAdmin(t, client, st.AdminURL)
	if got := m[`resctl_proxy_upstream_ejected{proxy="web",upstream="`+bad.URL+`"}`]; got != 1 {
		t.Errorf("resctl_proxy_upstream_ejected of the failing upstream = %v, want 1", got)
	}
}

func countOf(codes []int, code int) int {
	n := 0
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

// The balance, listen, protocol and upstream keys are read when a proxy
// starts: a reload that changes them swaps the guard chains in as usual
// and says, proxy by proxy, what waits for a restart.
func TestServe_ReloadSaysWhatNeedsRestart(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer up.Close()
	cfg := filepath.Join(t.TempDir(), "proxies.yaml")
	config := func(maxConns, apiPath, listen string) string {
		return "- name: web\n  upstream: " + up.URL + "\n  balance: {pool: {max_conns: " + maxConns + "}}\n" +
			"- name: api\n  upstream: " + up.URL + apiPath + "\n" + listen
	}
	writeConfig(t, cfg, config("4", "/api", ""))
	_, reloaded := serveConfig(t, cfg)
	for _, tt := range []struct {
		maxConns, apiPath, listen string
		want                      []string
	}{
		{"4", "/api", "", nil},
		{"8", "/api", "", []string{"proxy web keeps its balance"}},
		{"8", "/v2", "  listen: 127.0.0.1:1\n", []string{
			"proxy api keeps its listen address (127.0.0.1:0, not 127.0.0.1:1)",
			"proxy api keeps its upstreams",
			"proxy web keeps its balance",
		}},
	} {
		time.Sleep(20 * time.Millisecond) // a new modification time
		writeConfig(t, cfg, config(tt.maxConns, tt.apiPath, tt.listen)+"# "+tt.maxConns+tt.apiPath+"\n")
		err := harness.AwaitReload(t, reloaded)
		var restart *harness.RestartNeededError
		if tt.want == nil {
			if err != nil {
				t.Errorf("reload with max_conns %s: %v, want none", tt.maxConns, err)
			}
			continue
		}
		if !errors.As(err, &restart) {
			t.Errorf("reload with max_conns %s, path %s: %v, want a RestartNeededError", tt.maxConns, tt.apiPath, err)
			continue
		}
		got := slices.Sorted(slices.Values(restart.Changes))
		if !slices.Equal(got, tt.want) {
			t.Errorf("reload with max_conns %s, path %s: restart %q, want %q", tt.maxConns, tt.apiPath, got, tt.want)
		}
	}
}

package scenario_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/scenario"
)

// defaultBalance is what a proxy's balance key holds when the file leaves
// it out.
var defaultBalance = scenario.Balance{
	Ejection: scenario.Ejection{
		ConsecutiveFailures: scenario.DefaultConsecutiveFailures,
		BaseTime:            scenario.DefaultEjectionBaseTime,
		MaxTime:             scenario.DefaultEjectionMaxTime,
		MaxPercent:          scenario.DefaultMaxEjectionPercent,
	},
	Pool: scenario.Pool{IdleTimeout: scenario.DefaultIdleTimeout},
}

const upstreams = `name: several
target: {url: 'http://127.0.0.1:18080'}
proxy:
  upstreams: [http://127.0.0.1:9001, http://127.0.0.1:9002]
  balance:
    ejection: {consecutive_failures: 3, max_time: 1m}
    pool: {max_conns: 8, max_lifetime: 10m}
proxies:
  payments:
    upstreams: [http://127.0.0.1:9101, https://payments.internal:443]
  cache: {upstream: 'http://127.0.0.1:9200'}
load: {rate: 5/s, requests: [{path: /}]}
phases: [{name: a, duration: 1s}]
slas:
  - expect: state("upstream", "http://127.0.0.1:9001") == healthy and time_to(state("upstream", "payments:http://127.0.0.1:9101") == ejected) < 1s
`

func TestParse_upstreams(t *testing.T) {
	s, err := scenario.Parse("several.yaml", []byte(upstreams))
	if err != nil {
		t.Fatal(err)
	}
	want := scenario.Balance{
		Ejection: scenario.Ejection{ConsecutiveFailures: 3, BaseTime: scenario.DefaultEjectionBaseTime, MaxTime: time.Minute, MaxPercent: scenario.DefaultMaxEjectionPercent},
		Pool:     scenario.Pool{MaxConns: 8, IdleTimeout: scenario.DefaultIdleTimeout, MaxLifetime: 10 * time.Minute},
	}
	if !reflect.DeepEqual(s.Proxy.Balance, want) {
		t.Errorf("proxy.balance = %+v, want %+v", s.Proxy.Balance, want)
	}
	for _, name := range []string{"payments", "cache"} {
		if got := s.Proxies[name].Balance; !reflect.DeepEqual(got, defaultBalance) {
			t.Errorf("proxies.%s.balance = %+v, want the defaults %+v", name, got, defaultBalance)
		}
	}
	var states []string
	for _, p := range s.AllProxies() {
		if p.FrontsTarget() {
			t.Errorf("proxy %s fronts the target; a proxy with upstreams fronts a dependency", p.Name)
		}
		states = append(states, p.UpstreamStates()...)
	}
	if got, want := strings.Join(states, " "), "http://127.0.0.1:9001 http://127.0.0.1:9002 payments:http://127.0.0.1:9101 payments:https://payments.internal:443"; got != want {
		t.Errorf("UpstreamStates = %s, want %s", got, want)
	}
}

func TestParse_upstreamProblems(t *testing.T) {
	const head = "name: t\ntarget: {url: 'http://127.0.0.1:1'}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{
			name: "an empty list",
			src:  head + "proxy: {upstreams: []}\n",
			want: []string{"5:20: proxy.upstreams: must list at least one upstream"},
		},
		{
			name: "an empty list on a named proxy is not also a missing upstream",
			src:  head + "proxies: {db: {upstreams: []}}\n",
			want: []string{"5:27: proxies.db.upstreams: must list at least one upstream"},
		},
		{
			name: "a malformed address and one listed twice",
			src:  head + "proxy:\n  upstreams: ['127.0.0.1:9001', 'http://a:1', 'http://a:1']\n",
			want: []string{
				`6:15: proxy.upstreams[0]: "127.0.0.1:9001" is not a URL: write http://127.0.0.1:9001`,
				`6:47: proxy.upstreams[2]: "http://a:1" is listed twice`,
			},
		},
		{
			name: "a port out of range, no host",
			src:  head + "proxy:\n  upstreams: ['http://127.0.0.1:99999', 'http://:18081']\n",
			want: []string{
				`6:15: proxy.upstreams[0]: "http://127.0.0.1:99999": port 99999 is not a number in 1..65535`,
				`6:41: proxy.upstreams[1]: "http://:18081" has no host, e.g. http://127.0.0.1:18081`,
			},
		},
		{
			name: "upstream and upstreams",
			src:  head + "proxy: {upstream: 'http://a:1', upstreams: ['http://b:1']}\n",
			want: []string{"5:44: proxy.upstreams: set upstream or upstreams, not both"},
		},
		{
			name: "upstreams on a tcp proxy",
			src:  head + "proxies: {db: {protocol: tcp, upstreams: ['http://b:1'], balance: {pool: {max_conns: 2}}}}\n",
			want: []string{
				"5:42: proxies.db.upstreams: upstreams needs an http, h2c or grpc proxy",
				"5:67: proxies.db.balance: balance needs an http, h2c or grpc proxy",
			},
		},
		{
			name: "a negative duration",
			src:  head + "proxy:\n  upstreams: ['http://a:1']\n  balance:\n    ejection: {base_time: -1s}\n    pool: {idle_timeout: -5s, max_lifetime: -1m}\n",
			want: []string{
				"8:27: proxy.balance.ejection.base_time: must be above zero",
				"9:26: proxy.balance.pool.idle_timeout: must not be negative (0 means the default, 1m30s)",
				"9:45: proxy.balance.pool.max_lifetime: must not be negative",
			},
		},
		{
			name: "max_time below base_time",
			src:  head + "proxy:\n  balance: {ejection: {base_time: 1m, max_time: 30s}}\n",
			want: []string{"6:49: proxy.balance.ejection.max_time: 30s is below base_time 1m0s"},
		},
		{
			name: "max_percent outside 0..100",
			src:  head + "proxy:\n  balance: {ejection: {max_percent: 150%}}\n",
			want: []string{"6:37: proxy.balance.ejection.max_percent: percentage 150 is outside 0%..100%"},
		},
		{
			name: "negative counts",
			src:  head + "proxy:\n  balance: {ejection: {consecutive_failures: -1}, pool: {max_conns: -2}}\n",
			want: []string{
				"6:46: proxy.balance.ejection.consecutive_failures: must not be negative",
				"6:69: proxy.balance.pool.max_conns: must not be negative",
			},
		},
		{
			name: "an unknown key",
			src:  head + "proxy:\n  balance: {ejection: {failures: 3}}\n",
			want: []string{`6:24: proxy.balance.ejection.failures: unknown key "failures"; known keys: consecutive_failures, base_time, max_time, max_percent`},
		},
		{
			name: "an upstream state that does not exist",
			src:  head + "proxy: {upstreams: ['http://a:1', 'http://b:1']}\nslas: [{expect: 'state(\"upstream\", \"http://c:1\") == ejected'}]\n",
			want: []string{`6:36: slas[0].expect: no upstream named "http://c:1" (did you mean "http://b:1"?)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scenario.Parse("bad.yaml", []byte(tt.src))
			var ve *scenario.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a *scenario.ValidationError", err)
			}
			if !matchProblems(t, ve.Problems, tt.want) {
				t.Errorf("source:\n%s\ngot problems:\n%s\nwant:\n  %s", tt.src, listProblems(ve.Problems), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestParse_routeUpstreams(t *testing.T) {
	s, err := scenario.Parse("r.yaml", []byte(`name: t
target: {builtin: demo}
proxy:
  routes:
    - name: orders
      match: {path: /api/orders}
      guard: [timeout: 1s]
      upstreams: [http://127.0.0.1:9001, http://127.0.0.1:9002]
load: {rate: 5/s, requests: [{path: /}]}
phases: [{name: a, duration: 1s}]
slas:
  - expect: state("upstream", "http://127.0.0.1:9002") == healthy
`))
	if err != nil {
		t.Fatal(err)
	}
	np := s.AllProxies()[0]
	if !np.FrontsTarget() {
		t.Error("a proxy whose routes have upstreams no longer fronts the target")
	}
	if got := strings.Join(np.UpstreamStates(), " "); got != "http://127.0.0.1:9001 http://127.0.0.1:9002" {
		t.Errorf("UpstreamStates = %s", got)
	}

	_, err = scenario.Parse("r.yaml", []byte(`name: t
target: {builtin: demo}
proxy:
  upstreams: [http://127.0.0.1:9001]
  routes:
    - {match: {path: /a}, guard: [timeout: 1s], upstreams: [http://127.0.0.1:9001, 'ftp://x']}
load: {rate: 5/s, requests: [{path: /}]}
phases: [{name: a, duration: 1s}]
`))
	var ve *scenario.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse error = %v, want a validation error", err)
	}
	if !matchProblems(t, ve.Problems, []string{
		`6:61: proxy.routes[0].upstreams[0]: "http://127.0.0.1:9001" is already in proxy.upstreams`,
		`6:84: proxy.routes[0].upstreams[1]: "ftp://x" is not an http:// or https:// URL, e.g. http://127.0.0.1:8080`,
	}) {
		t.Errorf("problems:\n%s", listProblems(ve.Problems))
	}
}

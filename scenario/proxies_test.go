package scenario_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/scenario"
)

const dependencies = `name: deps
target:
  url: http://127.0.0.1:18080
  command: [./orders, --cache, "{{ .Proxies.cache.Addr }}"]
  env: {PAYMENTS_URL: "{{ .Proxies.payments.URL }}"}
proxies:
  cache: {protocol: tcp, upstream: 127.0.0.1:6379}
  payments:
    upstream: http://127.0.0.1:9000
    listen: 127.0.0.1:19000
    guard: [breaker]
    routes:
      - match: {path: /charge}
        guard: [timeout: 200ms]
load: {rate: 5/s, requests: [{path: /}]}
phases:
  - name: chaos
    duration: 5s
    faults:
      - blackhole: {proxy: cache}
      - latency: {proxy: payments, delay: 300ms}
slas:
  - expect: time_to(breaker("payments") == open) < 2s and increase(payments:resctl_fault_injected_total) > 0
`

func TestParse_namedProxies(t *testing.T) {
	s, err := scenario.Parse("deps.yaml", []byte(dependencies))
	if err != nil {
		t.Fatal(err)
	}
	if s.HasProxy() {
		t.Errorf("HasProxy() = true for a scenario with proxies and no proxy key")
	}
	var names []string
	for _, p := range s.AllProxies() {
		names = append(names, p.Name+"/"+p.Protocol+"/"+p.Listen)
		if p.FrontsTarget() {
			t.Errorf("proxy %s fronts the target; every proxy here has an upstream", p.Name)
		}
	}
	if got, want := strings.Join(names, " "), "cache/tcp/127.0.0.1:0 payments/http/127.0.0.1:19000"; got != want {
		t.Errorf("AllProxies() = %s, want %s", got, want)
	}
	faults := s.Phases[0].Faults
	if faults[0].Proxy != "cache" || inject.LayerOf(faults[0].Spec) != inject.LayerTCP {
		t.Errorf("faults[0] = proxy %q layer %s, want cache, tcp", faults[0].Proxy, inject.LayerOf(faults[0].Spec))
	}
	if lat, ok := faults[1].Spec.(*inject.LatencySpec); !ok || faults[1].Proxy != "payments" || lat.Delay.String() != "300ms" {
		t.Errorf("faults[1] = proxy %q spec %#v, want the payments proxy's 300ms latency", faults[1].Proxy, faults[1].Spec)
	}
	var policies []string
	for _, p := range s.Policies() {
		policies = append(policies, p.Kind()+" "+p.Name)
	}
	if got, want := strings.Join(policies, ", "), "breaker payments, timeout payments:/charge"; got != want {
		t.Errorf("Policies() = %s, want %s", got, want)
	}
	if got, want := strings.Join(s.Sources(), ","), "cache,payments,target"; got != want {
		t.Errorf("Sources() = %s, want %s", got, want)
	}
}

func TestExpand_proxies(t *testing.T) {
	d := scenario.TemplateData{Proxies: map[string]scenario.ProxyAddr{"db": {Addr: "127.0.0.1:5432", URL: "http://127.0.0.1:5432"}}}
	got, err := scenario.Expand("--db={{ .Proxies.db.Addr }}", d)
	if err != nil || got != "--db=127.0.0.1:5432" {
		t.Errorf("Expand = %q, %v; want --db=127.0.0.1:5432", got, err)
	}
	if _, err := scenario.Expand("{{ .Proxies.dbx.Addr }}", d); err == nil || !strings.Contains(err.Error(), "proxies: db") {
		t.Errorf("Expand of an unknown proxy: error %v, want one listing the proxies", err)
	}
}

func TestParse_namedProxyProblems(t *testing.T) {
	const head = "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{
			name: "fault naming a proxy that does not exist",
			src:  head + "proxies: {db: {protocol: tcp, upstream: 127.0.0.1:1}}\nphases: [{name: a, duration: 1s, faults: [blackhole: {proxy: bd}]}]\n",
			want: []string{`5:62: phases[0].faults[0].proxy: no proxy named "bd"; proxies: db`},
		},
		{
			name: "fault without a proxy when there are several",
			src:  head + "proxies: {a: {upstream: 'http://127.0.0.1:1'}, b: {upstream: 'http://127.0.0.1:2'}}\nphases: [{name: a, duration: 1s, faults: [abort]}]\n",
			want: []string{"5:43: phases[0].faults[0]: name the proxy this fault acts on: proxy: one of a, b"},
		},
		{
			name: "two proxies on one address",
			src:  head + "proxy: {listen: '127.0.0.1:7000'}\nproxies: {db: {protocol: tcp, upstream: 127.0.0.1:1, listen: ':7000'}}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{`5:62: proxies.db.listen: :7000 is already the address of proxy.listen`},
		},
		{
			name: "reserved name and missing upstream",
			src:  head + "proxies: {target: {protocol: tcp}}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{
				`4:19: proxies.target: "target" is reserved`,
				"4:19: proxies.target.upstream: is required",
			},
		},
		{
			name: "negative limits and limits a tcp proxy has no use for",
			src:  head + "proxy: {limits: {max_header_bytes: -1}}\nproxies: {db: {protocol: tcp, upstream: 127.0.0.1:1, limits: {max_conns: 10, read_header_timeout: 1s}}}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{
				`4:36: proxy.limits.max_header_bytes: must not be negative`,
				`5:99: proxies.db.limits.read_header_timeout: needs an http, h2c or grpc proxy; a tcp proxy takes max_conns only`,
			},
		},
		{
			name: "an http fault on a named tcp proxy",
			src:  head + "proxies: {db: {protocol: tcp, upstream: 127.0.0.1:1}}\nphases: [{name: a, duration: 1s, faults: [abort: {proxy: db}]}]\n",
			want: []string{`5:43: phases[0].faults[0]: fault kind "abort" is for http proxies; proxy "db" speaks tcp`},
		},
		{
			name: "gRPC load with metadata resctl sets, a bad key and data that is no message",
			src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, grpc: {call: a.S/M, data: '5', metadata: {x-resctl-seq: '1', 'A b': x}}}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{
				`3:45: load.grpc.data: give the request message as a map of fields`,
				`3:75: load.grpc.metadata.x-resctl-seq: "x-resctl-seq": resctl sets the x-resctl- keys itself`,
				`3:87: load.grpc.metadata.A b: "A b" is not a metadata key`,
			},
		},
		{
			name: "self with no main proxy",
			src:  head + "proxies: {db: {protocol: tcp, upstream: 127.0.0.1:1}}\nphases: [{name: a, duration: 1s}]\nscrape: {endpoints: {p: self}}\n",
			want: []string{"6:25: scrape.endpoints.p: self is the main proxy's metrics, and this scenario has none"},
		},
		{
			name: "template naming the proxy in front of the target",
			src:  "name: t\ntarget: {url: 'http://127.0.0.1:1', command: [x, '{{ .Proxies.proxy.Addr }}']}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{`2:50: target.command[1]: template "{{ .Proxies.proxy.Addr }}"`},
		},
		{
			name: "template naming a proxy that does not exist",
			src:  "name: t\ntarget: {url: 'http://127.0.0.1:1', command: [x, '{{ .Proxies.cahce.Addr }}']}\nproxies: {cache: {protocol: tcp, upstream: 127.0.0.1:1}}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{`2:50: target.command[1]: template "{{ .Proxies.cahce.Addr }}"`},
		},
		{
			name: "upstream from an unset variable, its proxy named by a template",
			src:  "name: t\ntarget: {url: 'http://127.0.0.1:1', command: [x], env: {P: '{{ .Proxies.payments.URL }}'}}\nproxies: {payments: {upstream: '${RESCTL_TEST_UNSET}'}}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{`3:32: proxies.payments.upstream: environment variable RESCTL_TEST_UNSET is not set`},
		},
		{
			// The unset variable is the problem, not a target missing.
			name: "target URL from an unset variable",
			src:  "name: t\ntarget: {url: '${RESCTL_TEST_UNSET}'}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n",
			want: []string{`2:15: target.url: environment variable RESCTL_TEST_UNSET is not set`},
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

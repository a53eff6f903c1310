package runner

import (
	"context"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/internal/demo"
)

// A scenario that leaves balance out gets the harness's own defaults.
func TestBalanceConfig_Defaults(t *testing.T) {
	s := mustParse(t, "name: d\ntarget: {builtin: demo}\nload: {rate: 1/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n")
	if got, want := balanceConfig(s.Proxy.Balance), harness.DefaultBalanceConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("balanceConfig(defaults) = %+v, want harness.DefaultBalanceConfig() %+v", got, want)
	}
}

// The service under test reaches two instances of its dependency through
// one proxy; one instance refuses connections. The proxy ejects it within
// a few requests, the users see no more errors, and the ejection is an
// event and a state SLAs read.
func TestRun_UpstreamEjected(t *testing.T) {
	dep, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	down := "http://" + closedAddr(t)
	addr := closedAddr(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, `
name: upstreams
target:
  url: http://`+addr+`
  command: ["`+self+`"]
  env: {RUNNER_SERVICE: "1", LISTEN: "`+addr+`", DOWNSTREAM: "{{ .Proxy.URL }}"}
proxy:
  upstreams: ["`+dep.URL()+`", "`+down+`"]
  balance: {ejection: {consecutive_failures: 3}}
load: {rate: 20/s, requests: [{path: /api/users/1}]}
phases:
  - {name: first, duration: 1s}
  - {name: after, duration: 1s}
slas:
  - {name: ejected at once, expect: 'time_to(state("upstream", "`+down+`") == ejected) < 1s'}
  - {name: still out, expect: 'state("upstream", "`+down+`") == ejected'}
  - {name: no errors once ejected, during: after, expect: success_rate == 100%}
  - {name: the live one served, expect: 'state("upstream", "`+dep.URL()+`") == healthy'}
`)
	r, err := Run(context.Background(), s, Options{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Name, sla.Observed, sla.Error)
		}
	}
	var ejections []string
	for _, e := range r.Events {
		if strings.HasPrefix(e.Detail, "upstream ") {
			ejections = append(ejections, e.Detail)
		}
	}
	if want := []string{"upstream " + down + ": healthy → ejected"}; !reflect.DeepEqual(ejections, want) {
		t.Errorf("upstream events %q, want %q", ejections, want)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A route with upstreams of its own: the load goes through the proxy in
// front of the built-in demo target, and the orders route's requests go to
// two other instances, whose counts the proxy's metrics show. (How they
// split is the balancer's: with two upstreams it favours the one that
// answered faster, so each is only required to have been used.)
func TestRun_RouteUpstreams(t *testing.T) {
	var urls []string
	for i := range 2 {
		srv, err := demo.Start("127.0.0.1:0", demo.Options{Seed: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		urls = append(urls, srv.URL())
	}
	s := mustParse(t, `
name: route upstreams
target: {builtin: demo}
proxy:
  routes:
    - name: orders
      match: {path: /api/orders}
      guard: [timeout: 2s]
      upstreams: [`+urls[0]+`, `+urls[1]+`]
load:
  rate: 40/s
  requests: [{path: /api/orders}, {path: /api/users/1}]
phases: [{name: a, duration: 2s}]
slas:
  - expect: success_rate == 100%
  - expect: 'increase(proxy:resctl_proxy_upstream_requests_total{upstream="`+urls[0]+`"}) >= 1 and increase(proxy:resctl_proxy_upstream_requests_total{upstream="`+urls[1]+`"}) >= 1'
  - expect: state("upstream", "`+urls[1]+`") == healthy
`)
	r, err := Run(context.Background(), s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sla := range r.SLAs {
		if !sla.Passed {
			t.Errorf("SLA %q failed: observed %s %s", sla.Expect, sla.Observed, sla.Error)
		}
	}
	// Every orders request, and no other, went to the route's upstreams.
	var routed float64
	for _, m := range r.Metrics {
		if m.Name == "resctl_proxy_upstream_requests_total" && (m.Labels["upstream"] == urls[0] || m.Labels["upstream"] == urls[1]) && len(m.Points) > 0 {
			routed += m.Points[len(m.Points)-1][1]
		}
	}
	if orders := r.Total.Requests / 2; routed != float64(orders) {
		t.Errorf("the route's upstreams got %v requests, want the %d orders requests", routed, orders)
	}
}

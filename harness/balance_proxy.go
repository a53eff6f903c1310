package harness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resctl/resctl/guard"
)

// newProxyBalancer builds the balancer of a proxy from its options:
// Upstream or Upstreams, exactly one of them.
func newProxyBalancer(opts Options) (*Balancer, error) {
	ups := opts.Upstreams
	switch {
	case opts.Upstream != "" && len(ups) > 0:
		return nil, errors.New("proxy: set Upstream or Upstreams, not both")
	case opts.Upstream != "":
		ups = []string{opts.Upstream}
	case len(ups) == 0:
		return nil, errors.New("proxy upstream \"\": not a URL with a host")
	}
	var problems []error
	opts.Balance.Check(func(field, msg string) {
		problems = append(problems, errors.New("proxy balance "+field+": "+msg))
	})
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return NewBalancer(ups, opts.Balance.Ejection, guard.Options{Clock: opts.Clock, Seed: opts.Seed, Observer: opts.Observer})
}

// upstreamKey carries the upstream Rewrite picked, and its balancer, to
// the transport.
type upstreamKey struct{}

// picked is an upstream and the balancer it was picked from.
type picked struct {
	b *Balancer
	u *Upstream
}

// rewrite points a request at the upstream Pick chooses. With the proxy's
// only upstream the transport knows which, and the request carries
// nothing; a route's balancer (route) always says.
func rewrite(b *Balancer, r *httputil.ProxyRequest, route bool) {
	u := b.Pick()
	r.SetURL(u.URL())
	if route || len(b.Upstreams()) > 1 {
		r.Out = r.Out.WithContext(context.WithValue(r.Out.Context(), upstreamKey{}, picked{b, u}))
	}
}

// balancerOptions are how a proxy builds its route balancers.
type balancerOptions struct {
	ejection EjectionConfig
	o        guard.Options
}

// newRouteBalancers builds a balancer for each route with upstreams of
// its own, reusing the one in keep of a route whose upstreams (was) are
// unchanged. An upstream belongs to one balancer of a proxy: its metrics
// and its ejection state are one upstream's.
func newRouteBalancers(routes []Route, proxy *Balancer, keep map[string]*Balancer, was map[string][]string, bo balancerOptions) (map[string]*Balancer, map[string][]string, error) {
	owner := map[string]string{}
	for _, u := range proxy.Upstreams() {
		owner[u.Addr()] = "the proxy"
	}
	out, ups := map[string]*Balancer{}, map[string][]string{}
	for _, rt := range routes {
		if len(rt.Upstreams) == 0 {
			continue
		}
		b := keep[rt.Name]
		if b == nil || !slices.Equal(was[rt.Name], rt.Upstreams) {
			var err error
			if b, err = NewBalancer(rt.Upstreams, bo.ejection, bo.o); err != nil {
				return nil, nil, fmt.Errorf("route %s: %w", rt.Name, err)
			}
		}
		for _, u := range b.Upstreams() {
			if o, dup := owner[u.Addr()]; dup {
				return nil, nil, fmt.Errorf("route %s: upstream %s is already %s's", rt.Name, u.Addr(), o)
			}
			owner[u.Addr()] = "route " + rt.Name
		}
		out[rt.Name], ups[rt.Name] = b, slices.Clone(rt.Upstreams)
	}
	return out, ups, nil
}

// balancerCollectors are a proxy's balancers — its own, then its routes'
// by name — as the collectors of its metrics. They share their
// descriptions, and no upstream is in two of them.
func balancerCollectors(proxy *Balancer, routes map[string]*Balancer) []prometheus.Collector {
	cs := []prometheus.Collector{proxy}
	for _, name := range slices.Sorted(maps.Keys(routes)) {
		cs = append(cs, routes[name])
	}
	return cs
}

// balancedTransport sends each attempt to the upstream its request was
// pointed at and tells the balancer how it went: every attempt — retries
// and hedges included, since guard wrappers re-enter the reverse proxy —
// passes here once.
type balancedTransport struct {
	next http.RoundTripper // the pool's transport (PoolConfig.Transport)
	b    *Balancer
}

func (t *balancedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pk, _ := req.Context().Value(upstreamKey{}).(picked)
	b, u := pk.b, pk.u
	if u == nil {
		b, u = t.b, t.b.Upstreams()[0]
	}
	return b.Send(t.next, req, u)
}

// upstreamList is the upstreams as Proxy.Upstream reports them.
func upstreamList(b *Balancer) string {
	ups := b.Upstreams()
	addrs := make([]string, len(ups))
	for i, u := range ups {
		addrs[i] = u.Addr()
	}
	return strings.Join(addrs, ",")
}

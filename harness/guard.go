package harness

import (
	"context"
	"net/http"
	"strings"

	"github.com/resctl/resctl/guard"
)

// Route is a part of the upstream's API with a guard chain of its own.
type Route struct {
	// Name identifies the route in messages.
	Name string
	// Path is a path prefix; Method, if set, an HTTP method. The longest
	// matching prefix wins.
	Path   string
	Method string
	Chain  *guard.Chain
	// Upstreams, when set, are where the route's requests go instead of
	// the proxy's upstreams, balanced the same way (Options.Balance).
	Upstreams []string
}

// routeBalancerKey carries the balancer of the route a request matched.
type routeBalancerKey struct{}

// guarded applies the proxy-wide chain to every request and a route's chain
// to the requests of its route, in that order, before next.
func guarded(next http.Handler, proxyWide *guard.Chain, routes []Route, balancers map[string]*Balancer) http.Handler {
	h := next
	if len(routes) > 0 {
		h = routeMux(next, routes, balancers)
	}
	if proxyWide != nil {
		h = proxyWide.Middleware(h)
	}
	return h
}

func routeMux(next http.Handler, routes []Route, balancers map[string]*Balancer) http.Handler {
	type entry struct {
		r Route
		h http.Handler
	}
	entries := make([]entry, len(routes))
	for i, r := range routes {
		h := r.Chain.Middleware(next)
		if b := balancers[r.Name]; b != nil {
			// Every attempt of the route's requests — retries and hedges
			// included — goes to the route's upstreams.
			inner := h
			h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				inner.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), routeBalancerKey{}, b)))
			})
		}
		entries[i] = entry{r, h}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		best := -1
		for i, e := range entries {
			if e.r.Method != "" && !strings.EqualFold(e.r.Method, req.Method) {
				continue
			}
			if strings.HasPrefix(req.URL.Path, e.r.Path) && (best < 0 || len(e.r.Path) > len(entries[best].r.Path)) {
				best = i
			}
		}
		if best < 0 {
			next.ServeHTTP(w, req)
			return
		}
		entries[best].h.ServeHTTP(w, req)
	})
}

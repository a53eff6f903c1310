package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"slices"
	"strings"
	"sync/atomic"
	"time"

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

// applyPool sets the transport's per-upstream limits. A MaxLifetime wraps
// the dialer's connections so that balancedTransport can tell their age.
func applyPool(tr *http.Transport, pool PoolConfig, b *Balancer) {
	tr.MaxConnsPerHost = pool.MaxConns
	tr.IdleConnTimeout = DefaultIdleTimeout
	if pool.IdleTimeout > 0 {
		tr.IdleConnTimeout = pool.IdleTimeout
	}
	if pool.MaxLifetime > 0 {
		dial := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &agedConn{Conn: c, born: b.clk.nanos()}, nil
		}
	}
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
func (b *Balancer) rewrite(r *httputil.ProxyRequest, route bool) {
	u := b.Pick()
	r.SetURL(u.url)
	if route || len(b.all) > 1 {
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
	for _, u := range proxy.all {
		owner[u.addr] = "the proxy"
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
		for _, u := range b.all {
			if o, dup := owner[u.addr]; dup {
				return nil, nil, fmt.Errorf("route %s: upstream %s is already %s's", rt.Name, u.addr, o)
			}
			owner[u.addr] = "route " + rt.Name
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
	next     http.RoundTripper
	b        *Balancer
	lifetime time.Duration // PoolConfig.MaxLifetime
}

func (t *balancedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pk, _ := req.Context().Value(upstreamKey{}).(picked)
	b, u := pk.b, pk.u
	if u == nil {
		b, u = t.b, t.b.all[0]
	}
	if t.lifetime > 0 {
		req = t.retireAged(req)
	}
	b.Begin(u)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	latency := time.Since(start)
	if err != nil {
		b.Observe(u, errorOutcome(req.Context(), err), latency)
		b.End(u)
		return nil, err
	}
	o := OutcomeSuccess
	if resp.StatusCode >= 500 {
		o = Outcome5xx
	}
	body := &inFlightBody{ReadCloser: resp.Body, b: b, u: u}
	switch {
	case resp.StatusCode == http.StatusOK && isGRPC(req):
		// A gRPC call's outcome is its status: in the headers of a
		// trailers-only answer, or in the trailers once the body ends.
		if st := resp.Header.Get("Grpc-Status"); st != "" {
			b.Observe(u, grpcOutcome(st), latency)
		} else {
			body.judge = func() {
				o := grpcOutcome(resp.Trailer.Get("Grpc-Status"))
				if req.Context().Err() != nil {
					o = errorOutcome(req.Context(), req.Context().Err())
				}
				b.Observe(u, o, latency)
			}
		}
	default:
		b.Observe(u, o, latency)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection, which the reverse proxy
		// needs as an io.ReadWriteCloser; it is no request in flight.
		b.End(u)
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// grpcOutcome judges a gRPC status as the balancer judges HTTP statuses:
// the codes of a server in trouble (UNAVAILABLE, INTERNAL, UNKNOWN,
// DATA_LOSS) are failures like a 5xx, DEADLINE_EXCEEDED a timeout, the
// rest answers; a call that ended without a status is an error.
func grpcOutcome(status string) Outcome {
	switch status {
	case "":
		return OutcomeError
	case "14", "13", "2", "15":
		return Outcome5xx
	case "4":
		return OutcomeTimeout
	}
	return OutcomeSuccess
}

// errorOutcome tells a timeout and a request its client gave up on from
// a transport error.
func errorOutcome(ctx context.Context, err error) Outcome {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return OutcomeCanceled
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return OutcomeTimeout
	}
	return OutcomeError
}

// retireAged makes a connection past its lifetime carry this request
// only: when the transport hands the request such a connection, the
// request is marked Connection: close, which HTTP/1.1 and HTTP/2 alike
// honour by not reusing the connection. GotConn runs on the caller's
// goroutine before the request is written, so the mark is in time.
func (t *balancedTransport) retireAged(req *http.Request) *http.Request {
	var out *http.Request
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if c := agedOf(info.Conn); c != nil {
			out.Close = t.b.clk.nanos()-c.born >= int64(t.lifetime)
		}
	}}
	out = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	return out
}

// agedConn is an upstream connection that knows when it was dialled.
type agedConn struct {
	net.Conn
	born int64 // balancer nanos
}

// CloseWrite half-closes the connection when the one beneath can, as
// the reverse proxy's protocol switches expect of a TCP connection.
func (c *agedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("close write: not supported")
}

// agedOf finds the agedConn beneath a connection, through TLS.
func agedOf(c net.Conn) *agedConn {
	for c != nil {
		if a, ok := c.(*agedConn); ok {
			return a
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = w.NetConn()
	}
	return nil
}

// inFlightBody ends the request's time in flight when the reverse proxy
// is done with the response.
type inFlightBody struct {
	io.ReadCloser
	b    *Balancer
	u    *Upstream
	done atomic.Bool
	// judge, if set, observes the outcome once the body ended: a gRPC
	// call's status comes in its trailers.
	judge func()
}

func (r *inFlightBody) Close() error {
	err := r.ReadCloser.Close()
	if r.done.CompareAndSwap(false, true) {
		if r.judge != nil {
			r.judge()
		}
		r.b.End(r.u)
	}
	return err
}

// Upstream metrics. Downstream, resctl_proxy_requests_total counts what
// clients sent; upstream, resctl_proxy_upstream_requests_total counts each
// attempt sent on, so their ratio is the retry and hedge amplification.
var (
	descUpstreamRequests  = prometheus.NewDesc("resctl_proxy_upstream_requests_total", "Requests the proxy sent upstream — every attempt, retries and hedges included — by upstream and outcome: success, 5xx, error, timeout, canceled.", []string{"upstream", "outcome"}, nil)
	descUpstreamInFlight  = prometheus.NewDesc("resctl_proxy_upstream_in_flight", "Requests to an upstream whose response has not ended.", []string{"upstream"}, nil)
	descUpstreamLatency   = prometheus.NewDesc("resctl_proxy_upstream_latency_ewma_seconds", "An upstream's latency average, as the balancer weighs it.", []string{"upstream"}, nil)
	descUpstreamEjections = prometheus.NewDesc("resctl_proxy_upstream_ejections_total", "Times an upstream was ejected after consecutive failures.", []string{"upstream"}, nil)
	descUpstreamEjected   = prometheus.NewDesc("resctl_proxy_upstream_ejected", "Whether an upstream is ejected now (1) or in use (0).", []string{"upstream"}, nil)
)

// Describe implements prometheus.Collector.
func (b *Balancer) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUpstreamRequests, descUpstreamInFlight, descUpstreamLatency, descUpstreamEjections, descUpstreamEjected} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it also ends the ejections
// whose time is up, so a scrape sees an upstream back when it is due.
func (b *Balancer) Collect(ch chan<- prometheus.Metric) {
	for _, s := range b.Stats() {
		for o, n := range s.Requests {
			ch <- prometheus.MustNewConstMetric(descUpstreamRequests, prometheus.CounterValue, float64(n), s.Addr, Outcome(o).String())
		}
		ejected := 0.0
		if s.Ejected {
			ejected = 1
		}
		ch <- prometheus.MustNewConstMetric(descUpstreamInFlight, prometheus.GaugeValue, float64(s.InFlight), s.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamLatency, prometheus.GaugeValue, s.Latency.Seconds(), s.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamEjections, prometheus.CounterValue, float64(s.Ejections), s.Addr)
		ch <- prometheus.MustNewConstMetric(descUpstreamEjected, prometheus.GaugeValue, ejected, s.Addr)
	}
}

// upstreamList is the upstreams as Proxy.Upstream reports them.
func upstreamList(b *Balancer) string {
	addrs := make([]string, len(b.all))
	for i, u := range b.all {
		addrs[i] = u.addr
	}
	return strings.Join(addrs, ",")
}

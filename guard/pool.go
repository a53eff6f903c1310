package guard

import (
	"net/http"
	"strings"
)

// PoolTransport spreads a client's requests over a Balancer's upstreams,
// as the harness proxy spreads its own: each request (each attempt, under
// a Transport that retries or hedges) goes to the upstream Pick chooses —
// power of two choices by latency average × requests in flight — with the
// scheme and host of that upstream (and its path prefixed), and teaches
// the balancer how it went, so that a failing instance is ejected and a
// slow one drawn from less. Connection limits are the base transport's
// own (MaxConnsPerHost, IdleConnTimeout); the balancer's metrics are its
// Collect.
//
//	pool, _ := guard.NewBalancer([]string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}, guard.DefaultEjectionConfig(), guard.Options{})
//	client := &http.Client{Transport: guard.NewTransport(guard.NewPoolTransport(nil, pool), chain)}
//	client.Get("http://payments/api/pay") // the host is the pool's choice
type PoolTransport struct {
	next http.RoundTripper
	b    *Balancer
}

var _ http.RoundTripper = (*PoolTransport)(nil)

// NewPoolTransport returns a PoolTransport sending with base (nil is
// http.DefaultTransport) to b's upstreams.
func NewPoolTransport(base http.RoundTripper, b *Balancer) *PoolTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &PoolTransport{next: base, b: b}
}

// RoundTrip implements http.RoundTripper.
func (p *PoolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := p.b.Pick()
	out := new(http.Request)
	*out = *req
	target := *req.URL
	target.Scheme, target.Host = u.url.Scheme, u.url.Host
	if prefix := strings.TrimSuffix(u.url.Path, "/"); prefix != "" {
		target.Path = prefix + "/" + strings.TrimPrefix(req.URL.Path, "/")
		target.RawPath = ""
	}
	out.URL, out.Host = &target, ""
	return p.b.Send(p.next, out, u)
}

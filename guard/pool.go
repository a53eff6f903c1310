package guard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"
)

// PoolTransport spreads a client's requests over a Balancer's upstreams,
// as the harness proxy spreads its own: each request (each attempt, under
// a Transport that retries or hedges) goes to the upstream Pick chooses —
// power of two choices by latency average × requests in flight — with the
// scheme and host of that upstream (and its path prefixed), and teaches
// the balancer how it went, so that a failing instance is ejected and a
// slow one drawn from less. Connection limits are the base transport's
// own: PoolConfig.Transport sets those the proxy has (connections per
// upstream, idle timeout, lifetime). The balancer's metrics are its
// Collect.
//
//	pool, _ := guard.NewBalancer([]string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}, guard.DefaultEjectionConfig(), guard.Options{})
//	limits := guard.PoolConfig{MaxConns: 64, MaxLifetime: time.Minute}
//	client := &http.Client{Transport: guard.NewTransport(guard.NewPoolTransport(limits.Transport(nil, guard.Options{}), pool), chain)}
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

// DefaultPoolIdleTimeout closes upstream connections idle this long, as
// the harness proxy always has and http.DefaultTransport does.
const DefaultPoolIdleTimeout = 90 * time.Second

// PoolConfig bounds the connections to each upstream host: the harness
// proxy's `balance: pool:` and, through Transport, a client's.
type PoolConfig struct {
	// MaxConns caps the connections to one upstream, in use or idle
	// (http.Transport's MaxConnsPerHost); a request beyond it waits for
	// one to free up. 0 sets no cap.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes a connection idle this long; 0 means
	// DefaultPoolIdleTimeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxLifetime retires connections older than this, so that traffic
	// follows an upstream that is scaled or moved behind one address. A
	// connection past its lifetime is never reused: the request that
	// would reuse it goes out on it with Connection: close (HTTP/1.1), or
	// marks it not to be reused (HTTP/2), so it closes once that request
	// is done. An idle one past its lifetime closes at IdleTimeout at the
	// latest. 0 sets no lifetime.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// Check reports each impossible value by its YAML key, as policy configs
// do.
func (c PoolConfig) Check(problem func(field, msg string)) {
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"max_conns", int64(c.MaxConns)},
		{"idle_timeout", int64(c.IdleTimeout)},
		{"max_lifetime", int64(c.MaxLifetime)},
	} {
		if f.v < 0 {
			problem(f.key, "must not be negative (0 means no limit, or the default)")
		}
	}
}

// Transport sets base's limits to c's and returns the round tripper to
// send with: base itself, or, with a MaxLifetime, base behind a wrapper
// that retires connections past it, their ages read on o.Clock. A nil base
// is a clone of http.DefaultTransport (or a new http.Transport, where that
// was replaced). base is changed in place and must not be in use yet: its
// MaxConnsPerHost and IdleConnTimeout become c's (0: no cap, and
// DefaultPoolIdleTimeout), and its dialers are wrapped to date each
// connection. A connection made outside them (DialTLS, or a transport's
// own dialing for a proxy CONNECT) has no date and is never retired.
func (c PoolConfig) Transport(base *http.Transport, o Options) http.RoundTripper {
	if base == nil {
		base = &http.Transport{}
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			base = dt.Clone()
		}
	}
	base.MaxConnsPerHost = c.MaxConns
	base.IdleConnTimeout = DefaultPoolIdleTimeout
	if c.IdleTimeout > 0 {
		base.IdleConnTimeout = c.IdleTimeout
	}
	if c.MaxLifetime <= 0 {
		return base
	}
	l := &lifetimeTransport{next: base, clk: newClock(o.Clock), lifetime: c.MaxLifetime}
	date := func(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &agedConn{Conn: conn, born: l.clk.nanos()}, nil
		}
	}
	dial := base.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	base.DialContext = date(dial)
	if base.DialTLSContext != nil {
		base.DialTLSContext = date(base.DialTLSContext)
	}
	return l
}

// lifetimeTransport retires connections past their lifetime: when the
// transport hands a request such a connection, the request asks for
// Connection: close, which HTTP/1.1 and HTTP/2 alike honour by not reusing
// the connection. The mark is a header, not Request.Close: http.Transport
// sends a copy of a request with a body, made before it picks the
// connection, and the copy shares the header but not the field. GotConn
// runs on the caller's goroutine before the request is written, so the
// mark is in time; the header is the attempt's own copy.
type lifetimeTransport struct {
	next     *http.Transport
	clk      clock
	lifetime time.Duration
}

func (t *lifetimeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var out *http.Request
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if c := agedOf(info.Conn); c != nil && time.Duration(t.clk.nanos()-c.born) >= t.lifetime {
			out.Header.Set("Connection", "close")
		}
	}}
	out = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	return t.next.RoundTrip(out)
}

// CloseIdleConnections closes the idle connections of the transport
// beneath, as http.Client.CloseIdleConnections expects of a transport.
func (t *lifetimeTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// agedConn is an upstream connection that knows when it was dialled.
type agedConn struct {
	net.Conn
	born int64 // on the lifetimeTransport's clock
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

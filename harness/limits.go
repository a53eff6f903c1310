package harness

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connection limit defaults: what one proxy's clients may hold open.
const (
	// DefaultClientIdleTimeout closes a client connection that has sent
	// no request for this long (HTTP/1.1 keep-alive and HTTP/2 alike).
	DefaultClientIdleTimeout = 90 * time.Second
	// DefaultReadHeaderTimeout closes a connection whose request headers
	// have not all arrived this long after it began: a slowloris, or a
	// connection opened and left silent.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxHeaderBytes bounds a request's headers (HTTP/1.1 request
	// line and headers, HTTP/2 header list).
	DefaultMaxHeaderBytes = 64 << 10
	// fdReserve is kept out of the proxies' share of the process's file
	// descriptors: the admin API's own connections (adminMaxConns), log
	// and report files, scrapes, the load's sockets.
	fdReserve = 256
	// minMaxConns is the least a default cap allows, however low the
	// file-descriptor limit.
	minMaxConns = 64
	// adminMaxConns caps the admin listener's connections, so a flood of
	// it cannot eat the reserve it answers from.
	adminMaxConns = 64
	// adminIdleTimeout closes idle admin connections.
	adminIdleTimeout = 30 * time.Second
)

// ConnLimits bound what the clients of one proxy can hold: a flood of
// idle connections is closed or refused before it uses up the process's
// file descriptors, so the other proxies and the admin API keep
// answering. Zero fields take their defaults (DefaultLimits); only
// MaxConns applies to a tcp proxy, whose connections carry no requests.
type ConnLimits struct {
	// MaxConns caps the proxy's open client connections; one more is
	// accepted and closed at once (a reset), and counted in
	// resctl_proxy_connections_over_limit_total. The default,
	// DefaultMaxConns, shares the file-descriptor limit out.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout, ReadHeaderTimeout and MaxHeaderBytes: see
	// DefaultClientIdleTimeout, DefaultReadHeaderTimeout and
	// DefaultMaxHeaderBytes.
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
}

// Or fills l's zero fields from d.
func (l ConnLimits) Or(d ConnLimits) ConnLimits {
	if l.MaxConns == 0 {
		l.MaxConns = d.MaxConns
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return l
}

// DefaultLimits are the limits of a proxy that sets none, when the
// process runs proxies of them.
func DefaultLimits(proxies int) ConnLimits {
	return ConnLimits{
		MaxConns:          DefaultMaxConns(proxies),
		IdleTimeout:       DefaultClientIdleTimeout,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
}

// DefaultMaxConns shares the process's file-descriptor limit (the soft
// RLIMIT_NOFILE, which Go raises to the hard one at start; 16384 on
// Windows) out among its proxies: a reserve is kept for the admin API and everything else, and
// each client connection may need a second descriptor upstream, so each
// proxy gets (limit − 256) / (2 × proxies), and at least 64.
func DefaultMaxConns(proxies int) int {
	return maxConnsFor(fileLimit(), proxies)
}

func maxConnsFor(fds uint64, proxies int) int {
	proxies = max(proxies, 1)
	if fds <= fdReserve {
		return minMaxConns
	}
	share := (fds - fdReserve) / uint64(2*proxies)
	return int(min(max(share, minMaxConns), 1<<30))
}

// Check reports impossible limits by their keys.
func (l ConnLimits) Check(problem func(field, msg string)) {
	for _, f := range []struct {
		key string
		val int64
	}{
		{"max_conns", int64(l.MaxConns)},
		{"idle_timeout", int64(l.IdleTimeout)},
		{"read_header_timeout", int64(l.ReadHeaderTimeout)},
		{"max_header_bytes", int64(l.MaxHeaderBytes)},
	} {
		if f.val < 0 {
			problem(f.key, "must not be negative (0 takes the default)")
		}
	}
}

// limitListener caps the connections a listener hands out: one over the
// cap is accepted and reset at once, which frees its descriptor at once
// and tells its client plainly, where leaving it in the backlog would
// keep it waiting.
type limitListener struct {
	net.Listener
	c *connCounter
}

// connCounter counts a proxy's open client connections and those over
// its cap; it is a prometheus.Collector of both.
type connCounter struct {
	max       int64
	open      atomic.Int64
	overLimit atomic.Uint64
	metrics   []prometheus.Collector
}

var _ prometheus.Collector = (*connCounter)(nil)

func newConnCounter(max int) *connCounter {
	c := &connCounter{max: int64(max)}
	c.metrics = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "resctl_proxy_connections",
			Help: "Client connections the proxy holds open.",
		}, func() float64 { return float64(c.open.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "resctl_proxy_connections_max",
			Help: "The proxy's cap on open client connections (limits.max_conns).",
		}, func() float64 { return float64(c.max) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "resctl_proxy_connections_over_limit_total",
			Help: "Client connections accepted over the cap and closed at once.",
		}, func() float64 { return float64(c.overLimit.Load()) }),
	}
	return c
}

// admit takes a place for a new connection, or counts it over the limit.
func (c *connCounter) admit() bool {
	if c.open.Add(1) > c.max {
		c.open.Add(-1)
		c.overLimit.Add(1)
		return false
	}
	return true
}

func (c *connCounter) release() { c.open.Add(-1) }

// Describe implements prometheus.Collector.
func (c *connCounter) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		m.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *connCounter) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics {
		m.Collect(ch)
	}
}

// Accept hands out connections within the cap and resets the others.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.c.admit() {
			resetConn(nc)
			continue
		}
		return &limitConn{Conn: nc, c: l.c}, nil
	}
}

// resetConn closes a connection with a reset, so no TIME_WAIT is left
// behind on the proxy's side.
func resetConn(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// limitConn gives its place back once, when it closes.
type limitConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

// SetLinger is the TCP connection's, so that a fault that resets a
// connection it took over (inject's reset) closes it with RST.
func (c *limitConn) SetLinger(sec int) error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		return tc.SetLinger(sec)
	}
	return nil
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.c.release)
	return err
}

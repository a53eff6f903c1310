package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/resctl/resctl/guard"
)

// maxIdlePerHost bounds the idle connections kept to one upstream, as
// the http.Transport of the h2c and grpc proxies does.
const maxIdlePerHost = 4096

// h1Pool keeps an http proxy's HTTP/1.1 connections to its upstreams and
// lends them to requests, which write and read them on their own
// goroutines. http.Transport runs two goroutines per connection and hands
// every request to them and its response back; on a small machine those
// hand-offs cost more than the proxying itself.
//
// It keeps the limits of the proxy's PoolConfig: at most MaxConns
// connections per upstream (a request beyond waits for one, in order),
// idle ones closed after IdleTimeout, and none reused past MaxLifetime:
// the request that would reuse it asks the upstream to close it.
type h1Pool struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	tls         *tls.Config // for https:// upstreams; nil: the system's roots
	maxConns    int
	idleTimeout time.Duration
	lifetime    time.Duration
	clk         guard.Clock // ages connections for lifetime; nil: the system's
	born        time.Time   // the pool's start on clk

	mu     sync.Mutex
	hosts  map[h1Key]*h1Host
	sweep  *time.Timer // armed while connections are idle
	swept  bool        // sweep is armed
	closed bool
}

// h1Key names an upstream's connections: its scheme and host:port, as a
// URL gives them.
type h1Key struct{ scheme, host string }

// h1Host is the connections to one upstream. Guarded by the pool's mu.
type h1Host struct {
	key        h1Key
	addr       string // host:port to dial
	serverName string // for TLS
	idle       []*h1Conn
	open       int // connections open, lent or idle, and dials under way
	waiters    []chan *h1Conn
}

// h1Conn is one upstream connection.
type h1Conn struct {
	host    *h1Host
	nc      net.Conn
	rc      syscall.RawConn // for the liveness check; nil over TLS
	peek    func(fd uintptr) bool
	dead    bool // what peek found
	peekBuf [1]byte
	born    time.Duration
	idleAt  time.Time
	reused  bool // it served a request before this one
	// interrupt unblocks the connection's reads and writes at once: a
	// request's context ended.
	interrupt func()
}

func newH1Pool(dial func(ctx context.Context, network, addr string) (net.Conn, error), tlsConf *tls.Config, pc PoolConfig, clk guard.Clock) *h1Pool {
	p := &h1Pool{dial: dial, tls: tlsConf, maxConns: pc.MaxConns, idleTimeout: pc.IdleTimeout, lifetime: pc.MaxLifetime, clk: clk, hosts: map[h1Key]*h1Host{}}
	if p.idleTimeout <= 0 {
		p.idleTimeout = guard.DefaultPoolIdleTimeout
	}
	p.born = p.now()
	p.sweep = time.AfterFunc(time.Hour, p.sweepIdle)
	p.sweep.Stop()
	return p
}

func (p *h1Pool) now() time.Time {
	if p.clk != nil {
		return p.clk.Now()
	}
	return time.Now()
}

// hostLocked is the upstream of key, made on first use.
func (p *h1Pool) hostLocked(key h1Key) *h1Host {
	h := p.hosts[key]
	if h == nil {
		h = &h1Host{key: key, addr: key.host}
		hostname, _, err := net.SplitHostPort(key.host)
		if err != nil { // no port: the scheme's
			hostname = strings.TrimSuffix(strings.TrimPrefix(key.host, "["), "]")
			port := "80"
			if key.scheme == "https" {
				port = "443"
			}
			h.addr = net.JoinHostPort(hostname, port)
		}
		h.serverName = hostname
		p.hosts[key] = h
	}
	return h
}

// errPoolClosed is what a request gets that wants a connection after the
// proxy closed.
var errPoolClosed = errors.New("upstream connection pool closed")

// get lends a connection to key's upstream: an idle one still open, or a
// new one when the upstream's cap allows; else it waits, in order, for
// one to be given back or closed. With check, an idle one is looked at
// first (see alive): a request that cannot be sent twice must not go out
// on a connection the upstream has closed. One that can is sent again if
// it finds it closed, which costs less than looking every time.
func (p *h1Pool) get(ctx context.Context, key h1Key, check bool) (*h1Conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errPoolClosed
		}
		h := p.hostLocked(key)
		if n := len(h.idle); n > 0 {
			c := h.idle[n-1]
			h.idle[n-1] = nil
			h.idle = h.idle[:n-1]
			p.mu.Unlock()
			if !check || c.alive() {
				c.reused = true
				return c, nil
			}
			p.discard(c)
			continue
		}
		if p.maxConns <= 0 || h.open < p.maxConns {
			h.open++
			p.mu.Unlock()
			return p.dialHost(ctx, h)
		}
		w := make(chan *h1Conn, 1)
		h.waiters = append(h.waiters, w)
		p.mu.Unlock()
		select {
		case c := <-w:
			if c == nil { // a place to dial
				return p.dialHost(ctx, h)
			}
			c.reused = true
			return c, nil
		case <-ctx.Done():
			p.mu.Lock()
			if i := slices.Index(h.waiters, w); i >= 0 {
				h.waiters = slices.Delete(h.waiters, i, i+1)
				p.mu.Unlock()
				return nil, ctx.Err()
			}
			p.mu.Unlock()
			// Given a connection (or a place) as the wait ended: pass it on.
			if c := <-w; c != nil {
				p.put(c)
			} else {
				p.freePlace(h)
			}
			return nil, ctx.Err()
		}
	}
}

// dialHost opens a connection to h in a place already taken for it.
func (p *h1Pool) dialHost(ctx context.Context, h *h1Host) (*h1Conn, error) {
	nc, err := p.dial(ctx, "tcp", h.addr)
	if err == nil && h.key.scheme == "https" {
		nc, err = p.handshake(ctx, nc, h.serverName)
	}
	if err != nil {
		p.freePlace(h)
		return nil, err
	}
	c := &h1Conn{host: h, nc: nc, born: p.now().Sub(p.born)}
	c.interrupt = func() { _ = nc.SetDeadline(aLongTimeAgo) }
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.peek = c.peekFD
		}
	}
	return c, nil
}

// tlsHandshakeTimeout bounds a TLS handshake with an https:// upstream,
// as the http.Transport of the other proxies does.
const tlsHandshakeTimeout = 5 * time.Second

func (p *h1Pool) handshake(ctx context.Context, nc net.Conn, serverName string) (net.Conn, error) {
	cfg := &tls.Config{}
	if p.tls != nil {
		cfg = p.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	tc := tls.Client(nc, cfg)
	ctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}

// aLongTimeAgo is a deadline in the past: it fails reads and writes at
// once.
var aLongTimeAgo = time.Unix(1, 0)

// retired reports whether c is past its lifetime: the request it carries
// now is its last.
func (p *h1Pool) retired(c *h1Conn) bool {
	return p.lifetime > 0 && p.now().Sub(p.born)-c.born >= p.lifetime
}

// put gives a connection back after a request that left it ready for the
// next: to a request waiting for one, or to the idle list.
func (p *h1Pool) put(c *h1Conn) {
	h := c.host
	p.mu.Lock()
	if p.closed || len(h.idle) >= maxIdlePerHost {
		p.mu.Unlock()
		p.discard(c)
		return
	}
	if len(h.waiters) > 0 {
		w := h.waiters[0]
		h.waiters = slices.Delete(h.waiters, 0, 1)
		p.mu.Unlock()
		w <- c
		return
	}
	c.idleAt = time.Now()
	h.idle = append(h.idle, c)
	if !p.swept {
		p.swept = true
		p.sweep.Reset(p.idleTimeout)
	}
	p.mu.Unlock()
}

// discard closes a connection that is not to be used again and frees its
// place.
func (p *h1Pool) discard(c *h1Conn) {
	_ = c.nc.Close()
	p.freePlace(c.host)
}

// freePlace frees a connection's place: a request waiting for one may
// dial.
func (p *h1Pool) freePlace(h *h1Host) {
	p.mu.Lock()
	if len(h.waiters) > 0 {
		w := h.waiters[0]
		h.waiters = slices.Delete(h.waiters, 0, 1)
		p.mu.Unlock()
		w <- nil
		return
	}
	h.open--
	p.mu.Unlock()
}

// sweepIdle closes the connections idle longer than the idle timeout and
// arms itself for the next to be.
func (p *h1Pool) sweepIdle() {
	now := time.Now()
	var old []*h1Conn
	p.mu.Lock()
	next := time.Duration(-1)
	for _, h := range p.hosts {
		keep := h.idle[:0]
		for _, c := range h.idle {
			if left := p.idleTimeout - now.Sub(c.idleAt); left > 0 {
				keep = append(keep, c)
				if next < 0 || left < next {
					next = left
				}
				continue
			}
			old = append(old, c)
			h.open--
		}
		clear(h.idle[len(keep):])
		h.idle = keep
	}
	p.swept = next >= 0 && !p.closed
	if p.swept {
		p.sweep.Reset(next)
	}
	p.mu.Unlock()
	for _, c := range old {
		_ = c.nc.Close()
	}
}

// closeIdle closes every idle connection and the pool: connections lent
// out close when they are given back.
func (p *h1Pool) closeIdle() {
	p.mu.Lock()
	p.closed = true
	p.sweep.Stop()
	p.swept = false
	var idle []*h1Conn
	for _, h := range p.hosts {
		idle = append(idle, h.idle...)
		h.open -= len(h.idle)
		h.idle = nil
	}
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.nc.Close()
	}
}

// alive reports whether an idle connection can carry a request: the
// upstream has neither closed it nor sent anything unasked. Over TLS,
// whose records arrive unasked (session tickets), it cannot tell and says
// yes; a request that then fails before any answer is tried again where
// that is safe (see forwarder).
func (c *h1Conn) alive() bool {
	if c.rc == nil {
		return true
	}
	c.dead = false
	if err := c.rc.Read(c.peek); err != nil {
		return false
	}
	return !c.dead
}

package netem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Link carries a proxy's connections to its upstreams across a namespace
// pair, so that faults on the pair act on them: the proxy dials through
// DialContext from side A; a relay in side B takes the connection and
// forwards it to the real upstream. Both ends live in the calling process
// (a socket stays in the namespace it was made in), and the upstream is
// reached from the process's own namespace, loopback included.
type Link struct {
	pair *Pair

	mu     sync.Mutex
	relays map[string]string // upstream address → relay address in B
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// DefaultDialTimeout bounds the relay's dial of an upstream.
const DefaultDialTimeout = 5 * time.Second

// NewLink makes the namespaces and the link; name tells a process's links
// apart. Close removes them.
func NewLink(ctx context.Context, name string) (*Link, error) {
	p, err := NewPair(ctx, name)
	if err != nil {
		return nil, err
	}
	return &Link{pair: p, relays: map[string]string{}, conns: map[net.Conn]struct{}{}}, nil
}

// Pair is the namespace pair under the link.
func (l *Link) Pair() *Pair { return l.pair }

// DialContext connects to addr across the link; it fits
// net/http.Transport.DialContext. network is always TCP. Without a
// deadline of ctx's the connect gives up after DefaultDialTimeout: across
// a partition a SYN is never answered.
func (l *Link) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	relay, err := l.relay(addr)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDialTimeout)
		defer cancel()
	}
	return l.pair.DialContext(ctx, A, relay)
}

// relay returns the address in B that forwards to addr, starting it the
// first time addr is asked for.
func (l *Link) relay(addr string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", net.ErrClosed
	}
	if r, ok := l.relays[addr]; ok {
		return r, nil
	}
	ln, err := l.pair.Listen(B, 0)
	if err != nil {
		return "", fmt.Errorf("network link relay for %s: %w", addr, err)
	}
	l.lns = append(l.lns, ln)
	l.relays[addr] = ln.Addr().String()
	l.wg.Go(func() { l.accept(ln, addr) })
	return ln.Addr().String(), nil
}

func (l *Link) accept(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !l.track(c) {
			_ = c.Close()
			return
		}
		l.wg.Go(func() { l.forward(c, addr) })
	}
}

// track adds c to the open connections, unless the link is closed.
func (l *Link) track(cs ...net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	for _, c := range cs {
		l.conns[c] = struct{}{}
	}
	return true
}

func (l *Link) untrack(cs ...net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range cs {
		delete(l.conns, c)
		_ = c.Close()
	}
}

// forward joins a connection that crossed the link to the upstream; an
// upstream that cannot be reached resets it, as a refused dial would.
func (l *Link) forward(c net.Conn, addr string) {
	up, err := net.DialTimeout("tcp", addr, DefaultDialTimeout)
	if err != nil {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		l.untrack(c)
		return
	}
	if !l.track(up) {
		_ = up.Close()
		l.untrack(c)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { pipe(up, c) })
	wg.Go(func() { pipe(c, up) })
	wg.Wait()
	l.untrack(c, up)
}

// pipe copies src to dst and passes the end of src on: a half close, or
// a reset as a reset — to dst when src was reset, to src when dst was.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			other := dst // the reset came from src
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "write" {
				other = src // writing to dst failed: dst was reset
			}
			if tc, ok := other.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		}
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// Apply puts the spec's faults on the link, replacing any before.
func (l *Link) Apply(ctx context.Context, s *Spec) error {
	if l.isClosed() {
		return net.ErrClosed
	}
	var probs []string
	s.Check(func(field, msg string) { probs = append(probs, field+": "+msg) })
	if len(probs) > 0 {
		return fmt.Errorf("network fault: %v", probs)
	}
	if err := l.Clear(ctx); err != nil {
		return err
	}
	var err error
	if s.Partition {
		err = l.pair.Partition(ctx, s.Sides()...)
	} else {
		for _, side := range s.Sides() {
			if err = l.pair.Apply(ctx, side, s.Faults); err != nil {
				break
			}
		}
	}
	if err != nil {
		// Half a fault must not stay on the link, even when ctx ran out.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = l.Clear(cctx)
	}
	return err
}

// Clear removes every fault from the link; a closed link has none.
func (l *Link) Clear(ctx context.Context) error {
	if l.isClosed() {
		return nil
	}
	return errors.Join(l.pair.Heal(ctx), l.pair.Clear(ctx, A), l.pair.Clear(ctx, B))
}

func (l *Link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Stats sums the counts of the sides a spec acts on.
func (l *Link) Stats(ctx context.Context, s *Spec) (Stats, error) {
	if l.isClosed() {
		return Stats{}, net.ErrClosed
	}
	var sum Stats
	for _, side := range s.Sides() {
		st, err := l.pair.Stats(ctx, side)
		if err != nil {
			return Stats{}, err
		}
		sum.Packets += st.Packets
		sum.Dropped += st.Dropped
	}
	return sum, nil
}

// Close stops the relays, closes the connections across the link and
// removes the namespaces.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for _, ln := range l.lns {
		_ = ln.Close()
	}
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return l.pair.Close()
}

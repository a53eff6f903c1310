package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resctl/resctl/inject"
)

// ProtocolTCP proxies raw TCP connections of any protocol (databases,
// caches, brokers); its faults act on bytes and connections, not requests.
const ProtocolTCP = "tcp"

// DefaultDialTimeout bounds the tcp proxy's dial of the upstream.
const DefaultDialTimeout = 5 * time.Second

// DefaultBufferSize is the size of each direction's copy buffer.
const DefaultBufferSize = 64 << 10

// initialBufferSize is each direction's buffer until a read fills it.
const initialBufferSize = 4 << 10

// TCPOptions configure a tcp proxy.
type TCPOptions struct {
	// Upstream is the target's host:port.
	Upstream string
	// Listen is the proxy's address; "127.0.0.1:0" picks a free port.
	Listen string
	// Board holds the connection faults; nil means none.
	Board *inject.Board
	// DialTimeout bounds the upstream dial; zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// BufferSize is each direction's copy buffer; zero means
	// DefaultBufferSize.
	BufferSize int
	// MaxConns caps the open client connections (see
	// ConnLimits.MaxConns); zero means DefaultMaxConns(1).
	MaxConns int
	// Logger receives upstream errors; nil discards them.
	Logger *slog.Logger
	// Dial, when set, makes the connections to the upstream (a network
	// link with faults of its own, say); nil dials directly. Its
	// connections must be *net.TCPConn: the proxy half-closes and resets
	// them.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// TCPProxy forwards TCP connections to an upstream through the connection
// faults of its board. When the board changes, connections in flight pick
// the change up at once: their reads are interrupted and the next bytes
// meet the new faults.
type TCPProxy struct {
	board   *inject.Board
	dialFn  func(ctx context.Context, network, addr string) (net.Conn, error)
	logger  *slog.Logger
	dial    time.Duration
	bufSize int
	limit   *connCounter // the cap on client connections

	mu       sync.Mutex
	ln       net.Listener // nil while disabled
	addr     string       // the bound address, kept to listen again on enable
	upstream string
	conns    map[*tcpConn]struct{}
	closed   bool

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // accept loops and connections
	unwatch func()

	accepted, refused, up, down atomic.Uint64
}

// StartTCP listens and proxies in the background until Close.
func StartTCP(opts TCPOptions) (*TCPProxy, error) {
	if _, _, err := net.SplitHostPort(opts.Upstream); err != nil {
		return nil, fmt.Errorf("tcp proxy upstream %q: not host:port", opts.Upstream)
	}
	board := opts.Board
	if board == nil {
		board = inject.NewBoard(0, nil)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dial := opts.DialTimeout
	if dial <= 0 {
		dial = DefaultDialTimeout
	}
	bufSize := opts.BufferSize
	if bufSize <= 0 {
		bufSize = DefaultBufferSize
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("tcp proxy listen %s: %w", opts.Listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &TCPProxy{
		board: board, logger: logger, dial: dial, dialFn: opts.Dial, bufSize: bufSize, limit: newConnCounter(cmp.Or(opts.MaxConns, DefaultMaxConns(1))),
		ln: ln, addr: ln.Addr().String(), upstream: opts.Upstream,
		conns: map[*tcpConn]struct{}{}, ctx: ctx, cancel: cancel,
	}
	p.unwatch = board.OnChange(p.wake)
	p.wg.Go(func() { p.accept(ln) })
	return p, nil
}

// Addr is the address clients connect to.
func (p *TCPProxy) Addr() string { return p.addr }

// Board is the proxy's fault board.
func (p *TCPProxy) Board() *inject.Board { return p.board }

// Upstream is where new connections are forwarded.
func (p *TCPProxy) Upstream() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upstream
}

// SetUpstream forwards new connections to addr; open ones stay where they
// are.
func (p *TCPProxy) SetUpstream(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("tcp proxy upstream %q: not host:port", addr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = addr
	return nil
}

// Enabled reports whether the proxy listens.
func (p *TCPProxy) Enabled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln != nil
}

// SetEnabled takes the proxy down (it stops listening and closes every
// connection, Toxiproxy's "down") or up again on the same address.
func (p *TCPProxy) SetEnabled(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return net.ErrClosed
	}
	switch {
	case on && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("tcp proxy listen %s: %w", p.addr, err)
		}
		p.ln = ln
		p.wg.Go(func() { p.accept(ln) })
	case !on && p.ln != nil:
		_ = p.ln.Close()
		p.ln = nil
		for c := range p.conns {
			c.close(false)
		}
	}
	return nil
}

// TCPStats counts what the proxy carried.
type TCPStats struct {
	Accepted, Refused, Active uint64
	// OverLimit counts connections closed at once over MaxConns.
	OverLimit uint64
	// BytesUp and BytesDown count bytes forwarded to the upstream and
	// back to clients.
	BytesUp, BytesDown uint64
}

// Stats returns the proxy's counters.
func (p *TCPProxy) Stats() TCPStats {
	p.mu.Lock()
	active := uint64(len(p.conns))
	p.mu.Unlock()
	return TCPStats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Active: active, OverLimit: p.limit.overLimit.Load(), BytesUp: p.up.Load(), BytesDown: p.down.Load()}
}

// Collector serves the proxy's connection metrics (open, the cap, over
// the cap); its faults' are its board's.
func (p *TCPProxy) Collector() prometheus.Collector { return p.limit }

// Close stops listening, closes every connection and waits for the
// proxy's goroutines, up to ctx's deadline. It is safe to call more than
// once.
func (p *TCPProxy) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.ln != nil {
			_ = p.ln.Close()
			p.ln = nil
		}
		for c := range p.conns {
			c.close(false)
		}
		p.cancel()
	}
	p.mu.Unlock()
	p.unwatch()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *TCPProxy) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.logger.Debug("tcp accept", "err", err)
			if !sleepCtx(p.ctx, 10*time.Millisecond) {
				return
			}
			continue
		}
		p.accepted.Add(1)
		client := nc.(*net.TCPConn)
		if !p.limit.admit() {
			resetConn(client)
			continue
		}
		if p.refuse() {
			p.limit.release()
			p.refused.Add(1)
			_ = client.SetLinger(0)
			_ = client.Close()
			continue
		}
		c := &tcpConn{p: p, client: client, faults: map[*inject.Activation]*drawn{}}
		c.ctx, c.cancel = context.WithCancel(p.ctx)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			p.limit.release()
			_ = client.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(c.run)
	}
}

// refuse draws the refusing faults for a new connection.
func (p *TCPProxy) refuse() bool {
	refused := false
	for _, a := range p.board.ConnActive() {
		if _, ok := a.ConnFault().(inject.ConnRefuser); ok && a.Draw() {
			refused = true
		}
	}
	return refused
}

// wake interrupts every connection's reads when the board changes, so one
// waiting in a read (or in splice) looks at the faults again: a blackhole
// switched on silences connections already open.
func (p *TCPProxy) wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.wake()
	}
}

func (p *TCPProxy) forget(c *tcpConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	p.limit.release()
}

// tcpConn is one proxied connection: a client, its upstream, and the faults
// drawn for it.
type tcpConn struct {
	p                *TCPProxy
	client, upstream *net.TCPConn
	ctx              context.Context
	cancel           context.CancelFunc

	mu     sync.Mutex
	faults map[*inject.Activation]*drawn

	tmu    sync.Mutex // guards timers and ended
	timers []*time.Timer
	ended  bool

	closeOnce sync.Once
}

// drawn is a fault's decision for one connection and its streams.
type drawn struct {
	on      bool
	made    [2]bool
	streams [2]inject.Stream
}

var _ inject.Conn = (*tcpConn)(nil)

func dirIndex(d inject.Direction) int {
	if d == inject.Upstream {
		return 0
	}
	return 1
}

func (c *tcpConn) run() {
	defer c.p.forget(c)
	ctx, cancel := context.WithTimeout(c.ctx, c.p.dial)
	defer cancel()
	dial := c.p.dialFn
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	nc, err := dial(ctx, "tcp", c.p.Upstream())
	if err != nil {
		c.p.logger.Debug("tcp upstream dial", "err", err)
		c.close(false)
		return
	}
	up, ok := nc.(*net.TCPConn)
	if !ok {
		_ = nc.Close()
		c.p.logger.Warn("tcp upstream dial", "err", fmt.Sprintf("TCPOptions.Dial returned a %T, not a *net.TCPConn", nc))
		c.close(false)
		return
	}
	c.tmu.Lock()
	c.upstream = up
	ended := c.ended
	c.tmu.Unlock()
	if ended { // closed while dialling
		_ = nc.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.pipe(inject.Upstream, c.client, c.upstream, &c.p.up) })
	wg.Go(func() { c.pipe(inject.Downstream, c.upstream, c.client, &c.p.down) })
	wg.Wait()
	c.close(false)
}

// faultsFor returns the streams and close delay of the faults drawn for
// this connection in one direction, drawing faults it meets for the first
// time.
func (c *tcpConn) faultsFor(dir inject.Direction) ([]inject.Stream, time.Duration) {
	acts := c.p.board.ConnActive()
	if len(acts) == 0 {
		return nil, 0
	}
	i := dirIndex(dir)
	var streams []inject.Stream
	var delay time.Duration
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range acts {
		f := a.ConnFault()
		d, ok := c.faults[a]
		if !ok {
			_, refuser := f.(inject.ConnRefuser)
			// Refusals are drawn at accept; this connection got through.
			d = &drawn{on: !refuser && a.Draw()}
			c.faults[a] = d
		}
		if !d.on {
			continue
		}
		if !d.made[i] {
			d.made[i] = true
			d.streams[i] = f.Stream(dir, c)
		}
		if s := d.streams[i]; s != nil {
			streams = append(streams, s)
		}
		if cd, ok := f.(inject.CloseDelayer); ok {
			delay = max(delay, cd.CloseDelay(dir))
		}
	}
	return streams, delay
}

// pipe moves bytes from src to dst until src ends or the connection does.
// It reads the faults before each read, which starts the timers of faults
// new to the connection even while it idles, and again once bytes have
// arrived: bytes meet the faults active when they arrive, including a
// change or an expiry while the read waited.
func (c *tcpConn) pipe(dir inject.Direction, src, dst *net.TCPConn, count *atomic.Uint64) {
	// An idle connection holds a small buffer; one whose reads fill it
	// carries a stream and gets the full one.
	buf := make([]byte, min(initialBufferSize, c.p.bufSize))
	write := func(p []byte) error {
		n, err := dst.Write(p)
		count.Add(uint64(n))
		return err
	}
	for c.ctx.Err() == nil {
		c.faultsFor(dir)
		n, err := src.Read(buf)
		if n > 0 {
			streams, _ := c.faultsFor(dir)
			next := write
			for i := len(streams) - 1; i >= 0; i-- {
				s, after := streams[i], next
				next = func(p []byte) error { return s.Pass(c.ctx, p, after) }
			}
			if werr := next(buf[:n]); werr != nil {
				c.close(false)
				return
			}
			if n == len(buf) && n < c.p.bufSize {
				buf = make([]byte, c.p.bufSize)
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			if _, closeDelay := c.faultsFor(dir); closeDelay > 0 && !sleepCtx(c.ctx, closeDelay) {
				return
			}
			_ = dst.CloseWrite()
			return
		case errors.Is(err, os.ErrDeadlineExceeded) && c.ctx.Err() == nil:
			_ = src.SetReadDeadline(time.Time{}) // woken by a board change
		case err != nil:
			c.close(false)
			return
		}
	}
}

// wake interrupts reads in flight so both pipes look at the board again.
func (c *tcpConn) wake() {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.ended {
		return
	}
	now := time.Now()
	_ = c.client.SetReadDeadline(now)
	if c.upstream != nil {
		_ = c.upstream.SetReadDeadline(now)
	}
}

// Reset implements inject.Conn.
func (c *tcpConn) Reset() { c.close(true) }

// Close implements inject.Conn.
func (c *tcpConn) Close() { c.close(false) }

// AfterFunc implements inject.Conn.
func (c *tcpConn) AfterFunc(d time.Duration, f func()) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.ended {
		return
	}
	c.timers = append(c.timers, time.AfterFunc(d, f))
}

func (c *tcpConn) close(reset bool) {
	c.closeOnce.Do(func() {
		c.tmu.Lock()
		c.ended = true
		for _, t := range c.timers {
			t.Stop()
		}
		up := c.upstream
		c.tmu.Unlock()
		c.cancel()
		for _, nc := range []*net.TCPConn{c.client, up} {
			if nc == nil {
				continue
			}
			if reset {
				_ = nc.SetLinger(0)
			}
			_ = nc.Close()
		}
	})
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

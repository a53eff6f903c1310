package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Server is the front end of a plaintext http proxy (ProtocolHTTP):
// it serves each client connection's HTTP/1.x requests on one goroutine,
// in order, and hands connections that open with the HTTP/2 preface (h2c
// with prior knowledge) to net/http's server, which serves them as it
// always has. It exists because net/http's server was most of what the
// proxy cost per request once the forwarder had replaced the transport: a
// goroutine and a read per request to notice a client going away, the
// header map copied at WriteHeader, a response in two writes. Here a
// request's head is parsed from the connection's buffer, its response
// goes out in one write when it is small, and a client going away is
// looked for only once a request has run for clientWatchDelay.
type h1Server struct {
	handler http.Handler
	lim     ConnLimits
	// h2 is net/http's server for the connections handed over, and the
	// http.ServerContextKey of every request: the forwarder tells an
	// HTTP server's request by it.
	h2      *http.Server
	handoff *handoffListener
	errLog  *log.Logger

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*clientConn]struct{}
	shutting atomic.Bool
	wg       sync.WaitGroup
}

func newH1Server(handler http.Handler, lim ConnLimits, h2 *http.Server) *h1Server {
	errLog := h2.ErrorLog
	if errLog == nil {
		errLog = log.Default()
	}
	return &h1Server{handler: handler, lim: lim, h2: h2, errLog: errLog,
		conns: map[*clientConn]struct{}{}}
}

// Serve accepts connections until Shutdown or Close, and returns once
// net/http's server for handed-over connections has stopped too.
func (s *h1Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.handoff = &handoffListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	s.mu.Unlock()
	if s.shutting.Load() {
		ln.Close()
		return http.ErrServerClosed
	}
	var h2wg sync.WaitGroup
	h2wg.Go(func() { _ = s.h2.Serve(s.handoff) })
	defer h2wg.Wait()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors, say: wait for some to close.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.errLog.Printf("http: Accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			s.handoff.Close()
			return err
		}
		backoff = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *h1Server) newConn(nc net.Conn) *clientConn {
	c := &clientConn{s: s, nc: nc, remote: nc.RemoteAddr().String(), born: time.Now(), out: make([]byte, 0, connBufSize)}
	c.cond.L = &c.mu
	c.timer = time.AfterFunc(time.Hour, c.watchClient)
	c.timer.Stop()
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.h2)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr())
	c.ctx = ctx
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c
}

// forget ends a connection's tracking when its goroutine ends.
func (s *h1Server) forget(c *clientConn) {
	s.untrack(c)
}

// untrack stops counting c among the connections Shutdown waits for and
// Close closes: it has ended, or is someone else's now.
func (s *h1Server) untrack(c *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.wg.Done()
	}
}

// Shutdown stops accepting, closes idle connections, lets each busy one
// finish its request and close, and waits for them all, or for ctx; as
// http.Server.Shutdown does, for net/http's connections too.
func (s *h1Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	s.mu.Unlock()
	h2err := make(chan error, 1)
	go func() { h2err <- s.h2.Shutdown(ctx) }()
	poll := time.Millisecond
	t := time.NewTimer(poll)
	defer t.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			poll = min(2*poll, 100*time.Millisecond)
			t.Reset(poll)
		}
	}
	s.wg.Wait()
	return errors.Join(err, <-h2err)
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left. A connection that has not sent its first request
// yet is left 5 s to send it, as net/http leaves it.
func (s *h1Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		st := c.state.Load()
		if st == connNew && time.Since(c.born) > 5*time.Second {
			c.state.CompareAndSwap(connNew, connIdle)
			st = connIdle
		}
		if st == connIdle && c.state.CompareAndSwap(connIdle, connClosing) {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// Close closes the listener and every connection at once, cancelling the
// requests in flight.
func (s *h1Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.state.Store(connClosing)
		c.cancelRequest()
		c.nc.Close()
	}
	s.mu.Unlock()
	return errors.Join(err, s.h2.Close())
}

// Connection states, for Shutdown.
const (
	connNew     = iota // no request yet
	connIdle           // waiting for the next request
	connActive         // reading or serving a request
	connClosing        // closed by Shutdown or Close
)

// handoffListener gives net/http's server the connections h1Server hands
// over.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c over, or closes it once the server has stopped.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// clientWatchDelay is how long a request runs before its connection is
// watched for the client going away, which takes a goroutine and a read.
// Most requests end sooner and never pay for it; a request the client
// gives up on while it waits on a slow upstream or a latency fault is
// cancelled this much later than at once.
const clientWatchDelay = 100 * time.Millisecond

// connBufSize is what a connection's read buffer starts with and keeps
// between requests, and its write buffer too: a head and a small body
// gathered without growing it, as net/http's 4 KiB buffers gather them.
const connBufSize = 4 << 10

// clientConn is one client connection of an h1Server.
type clientConn struct {
	s      *h1Server
	nc     net.Conn
	remote string
	born   time.Time
	state  atomic.Int32
	// ctx is what the requests' contexts derive from. It cannot be
	// cancelled: a request's own is, by cancelRequest, which spares every
	// request's context a place in a parent's list of children.
	ctx context.Context

	// buf[r:w] are bytes read and not yet used; rerr is a read error met
	// after bytes that came with it.
	buf  []byte
	r, w int
	rerr error

	// out is the response being written; wmu orders writes to the
	// connection from the handler's goroutine and a body reader's.
	out  []byte
	held []byte // body held back until the head is written
	wmu  sync.Mutex

	// Watching for the client going away: see watchClient.
	mu        sync.Mutex
	cond      sync.Cond
	timer     *time.Timer
	serving   bool // a handler runs
	handling  bool // a handler runs and has read its request's body
	watching  bool // watch is reading
	reqCancel context.CancelFunc
	hijacked  bool
	closed    bool // by lingerClose
}

func (c *clientConn) serve() {
	defer c.s.forget(c)
	for first := true; ; first = false {
		end, err := c.readHead(first)
		if err != nil {
			c.refuse(err)
			return
		}
		if first && bytes.HasPrefix(c.buf[c.r:c.w], h2Preface) {
			c.handOver()
			return
		}
		if !c.serveRequest(end) {
			if !c.hijacked {
				c.lingerClose()
			}
			return
		}
		if c.s.shutting.Load() {
			c.nc.Close()
			return
		}
	}
}

// h2Preface opens an HTTP/2 connection with prior knowledge; its first
// line reads as a request line to an HTTP/1 parser.
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\n")

// handOver gives the connection, with what was read of it, to net/http's
// server.
func (c *clientConn) handOver() {
	_ = c.nc.SetReadDeadline(time.Time{})
	read := bytes.Clone(c.buf[c.r:c.w])
	c.s.untrack(c) // net/http's server tracks it now
	c.s.handoff.give(&prefixConn{Conn: c.nc, r: io.MultiReader(bytes.NewReader(read), c.nc)})
}

// refuse ends a connection whose next request cannot be read: a head
// the server refuses is answered first, as net/http answers it; a
// connection that closed or went quiet is closed.
func (c *clientConn) refuse(err error) {
	var he *headError
	if errors.As(err, &he) {
		msg := fmt.Sprintf("%d %s", he.code, http.StatusText(he.code))
		if he.code != http.StatusRequestHeaderFieldsTooLarge && he.code != http.StatusHTTPVersionNotSupported {
			msg += ": " + he.msg
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = fmt.Fprintf(c.nc, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%s",
			he.code, http.StatusText(he.code), msg)
		c.lingerClose()
		return
	}
	c.nc.Close()
}

// lingerClose closes a connection after its last response as net/http
// does: the write side first, then, after what the client still sends
// is read and dropped for a moment, the rest. Closed at once, a socket
// with unread bytes resets, and the reset can destroy the response
// before the client has read it.
func (c *clientConn) lingerClose() {
	if c.closed {
		return
	}
	c.closed = true
	defer c.nc.Close()
	nc := c.nc
	if lc, ok := nc.(*limitConn); ok {
		nc = lc.Conn
	}
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, c.nc)
}

// lingerTime bounds how long lingerClose waits for the client to close
// its side; net/http waits as long.
const lingerTime = 500 * time.Millisecond

var errHeadTooLarge = &headError{http.StatusRequestHeaderFieldsTooLarge, "request head too large"}

// readHead waits for the next request's head and returns its length at
// buf[r:]. The connection may be idle IdleTimeout before a request
// starts, and a head must arrive whole within ReadHeaderTimeout of its
// start (of the connection's, for the first).
func (c *clientConn) readHead(first bool) (int, error) {
	lim := c.s.lim
	maxHead := lim.MaxHeaderBytes + 4096 // net/http's slack for the request line
	c.skipLineEnds()
	timed := false // the read-header deadline is set
	if c.r == c.w {
		c.r, c.w = 0, 0
		if len(c.buf) > connBufSize {
			c.buf = nil // a large head grew it
		}
		if c.buf == nil {
			c.buf = make([]byte, connBufSize)
		}
		if first {
			timed = true
			_ = c.nc.SetReadDeadline(c.born.Add(lim.ReadHeaderTimeout))
		} else {
			c.state.Store(connIdle)
			_ = c.nc.SetReadDeadline(time.Now().Add(lim.IdleTimeout))
		}
		if err := c.fill(maxHead); err != nil {
			return 0, err
		}
		if !c.state.CompareAndSwap(connIdle, connActive) && !c.state.CompareAndSwap(connNew, connActive) {
			return 0, net.ErrClosed // Shutdown closed it
		}
		c.skipLineEnds()
	}
	c.state.CompareAndSwap(connNew, connActive)
	scanned := 0
	for {
		if end := headEnd(c.buf[c.r:c.w], scanned); end >= 0 {
			if end > maxHead {
				return 0, errHeadTooLarge
			}
			return end, nil
		}
		if c.w-c.r >= maxHead {
			return 0, errHeadTooLarge
		}
		scanned = headScanFrom(c.w - c.r)
		if !timed {
			timed = true
			_ = c.nc.SetReadDeadline(time.Now().Add(lim.ReadHeaderTimeout))
		}
		if err := c.fill(maxHead); err != nil {
			return 0, err
		}
	}
}

// skipLineEnds drops line ends before a request, which clients send
// after a body now and then.
func (c *clientConn) skipLineEnds() {
	for c.r < c.w && (c.buf[c.r] == '\r' || c.buf[c.r] == '\n') {
		c.r++
	}
}

// fill reads more of the connection into the buffer, growing it while
// less than max bytes are unread.
func (c *clientConn) fill(max int) error {
	if c.rerr != nil {
		return c.rerr
	}
	if c.w == len(c.buf) && c.r > 0 {
		copy(c.buf, c.buf[c.r:c.w])
		c.w -= c.r
		c.r = 0
	}
	if c.w == len(c.buf) {
		if c.w >= max {
			return errHeadTooLarge
		}
		nb := make([]byte, min(2*len(c.buf), max))
		copy(nb, c.buf[:c.w])
		c.buf = nb
	}
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if n > 0 && err != nil {
		c.rerr = err
		return nil
	}
	return err
}

// read reads body bytes into p: from the buffer first, then straight
// from the connection when p is at least as large as the buffer.
func (c *clientConn) read(p []byte) (int, error) {
	if c.r == c.w {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) >= len(c.buf) {
			return c.nc.Read(p)
		}
		c.r, c.w = 0, 0
		if err := c.fill(len(c.buf)); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n, nil
}

// serveRequest serves the request whose head is end bytes long and
// reports whether the connection may carry another.
func (c *clientConn) serveRequest(end int) (keep bool) {
	ph, err := parseHead(c.buf[c.r:c.r+end], max(c.s.lim.MaxHeaderBytes/minFieldBytes, 1))
	c.r += end
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	var r *http.Request
	if err == nil {
		r, err = newRequest(ctx, ph)
	}
	if err != nil {
		c.refuse(err)
		return false
	}
	r.RemoteAddr = c.remote

	w := &h1Response{c: c, req: r, header: make(http.Header), contentLength: -1}
	body := &reqBody{c: c, req: r, remain: r.ContentLength, chunked: r.ContentLength < 0}
	w.body = body
	expect := r.Header["Expect"]
	switch {
	case len(expect) == 0:
	case httpguts.HeaderValuesContainsToken(expect, "100-continue"):
		// An HTTP/1.0 client cannot be sent a 100; its body comes anyway.
		if r.ProtoMinor == 1 && r.ContentLength != 0 {
			body.cont.Store(contWaiting)
		}
	default:
		w.header.Set("Connection", "close")
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		return false
	}
	if r.ContentLength == 0 {
		r.Body = http.NoBody
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
		r.Body = body
	}

	c.mu.Lock()
	c.reqCancel = cancel
	c.serving = true
	c.handling = r.ContentLength == 0
	c.mu.Unlock()
	if c.state.Load() == connClosing {
		cancel() // Close came between the head and now
	}
	if r.ContentLength == 0 {
		c.armWatch()
	}
	if !c.runHandler(w, r) {
		c.stopWatch()
		if !c.hijacked {
			c.writeOut()
		}
		return false
	}
	c.stopWatch()
	if c.hijacked {
		return false
	}
	keep = w.finish()
	return body.drain() && keep && !r.Close
}

// minFieldBytes is what each header field is charged against
// MaxHeaderBytes to bound how many a head may have: a map entry and its
// strings cost more than the bytes of a short field.
const minFieldBytes = 64

// runHandler runs the handler and reports whether it returned; a panic
// is logged, as net/http's server logs it, unless it is
// http.ErrAbortHandler, which aborts a response on purpose.
func (c *clientConn) runHandler(w *h1Response, r *http.Request) (returned bool) {
	defer func() {
		if returned {
			return
		}
		if v := recover(); v != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.s.errLog.Printf("http: panic serving %v: %v\n%s", c.remote, v, buf)
		}
	}()
	c.s.handler.ServeHTTP(w, r)
	return true
}

// cancelRequest cancels the request in flight, if any: the server is
// closing.
func (c *clientConn) cancelRequest() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reqCancel != nil {
		c.reqCancel()
	}
}

// armWatch starts the clock after which the client is watched for, once
// the request's body has been read.
func (c *clientConn) armWatch() { c.timer.Reset(clientWatchDelay) }

// watchClient waits, on a goroutine of its own, for the client to close
// its connection or send more while its request runs, as net/http's
// background read does; an end of file or an error cancels the request.
// Bytes that arrive belong to the next request and stay in the buffer.
func (c *clientConn) watchClient() {
	c.mu.Lock()
	// A timer that fired as the last request ended may run this late,
	// for the next one: one watch at a time, so that stopWatch's wait
	// covers every read but readHead's.
	if !c.handling || c.watching || c.r != c.w || c.rerr != nil {
		c.mu.Unlock()
		return
	}
	c.watching = true
	if c.w == len(c.buf) {
		c.r, c.w = 0, 0
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.mu.Unlock()
	n, err := c.nc.Read(c.buf[c.w:])
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w += n
	c.watching = false
	c.cond.Broadcast()
	if err == nil {
		return
	}
	if !c.handling && errors.Is(err, os.ErrDeadlineExceeded) {
		return // stopped by stopWatch
	}
	c.rerr = err
	if c.handling {
		c.reqCancel()
	}
}

// stopWatch ends the watch of a request that has ended: a watch reading
// is interrupted and waited for.
func (c *clientConn) stopWatch() {
	c.timer.Stop()
	c.mu.Lock()
	c.serving, c.handling = false, false
	if !c.watching {
		c.mu.Unlock()
		return
	}
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	for c.watching {
		c.cond.Wait()
	}
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Time{})
}

// writeOut sends what the response left in out.
func (c *clientConn) writeOut() error {
	if len(c.out) == 0 {
		return nil
	}
	c.wmu.Lock()
	_, err := c.nc.Write(c.out)
	c.wmu.Unlock()
	c.out = c.out[:0]
	return err
}

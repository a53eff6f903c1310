package harness

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reqBody is a request's body as h1Server reads it from the connection:
// Content-Length bytes, or chunks and their trailer. Reads are ordered by
// a lock, as net/http orders them, so that the server can wait for a
// reader still at work (the forwarder's body writer) once the handler
// has returned, before it reads the next request.
type reqBody struct {
	c   *clientConn
	req *http.Request

	mu       sync.Mutex
	remain   int64 // of the body, or of the chunk
	chunked  bool
	inChunk  bool         // a chunk's data is being read
	cont     atomic.Int32 // Expect: 100-continue, from contNone on
	broken   atomic.Bool  // err is set: the connection cannot go on
	complete atomic.Bool  // eof, for the response's writer
	eof      bool
	err      error // sticky: the body cannot be read further
	finished bool  // its request has ended
}

// Where a request that expects 100 Continue stands.
const (
	contNone    = iota // no Expect: 100-continue
	contWaiting        // the client waits for it before it sends the body
	contSent           // it went out, from the body's first read or the handler
	contSkipped        // the final answer went first: the body may never come
)

var errBodyAfterHandler = errors.New("http: invalid Read on closed Body")

func (b *reqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.finished:
		return 0, errBodyAfterHandler
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	case len(p) == 0:
		return 0, nil
	}
	if b.cont.Load() == contWaiting {
		// Decided under the write lock: a response committed first has
		// skipped the 100 (commit), and one committed after goes out
		// after it.
		var err error
		b.c.wmu.Lock()
		if b.cont.CompareAndSwap(contWaiting, contSent) {
			_, err = io.WriteString(b.c.nc, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		b.c.wmu.Unlock()
		if err != nil {
			b.err = err
			return 0, err
		}
	}
	n, err := b.read(p)
	if err != nil && err != io.EOF {
		b.err = err
		b.broken.Store(true)
	}
	if err == io.EOF {
		b.eof = true
		b.complete.Store(true)
		b.c.bodyDone()
	}
	return n, err
}

// Close lets the server decide what becomes of what is left of the body
// once the handler returns: it is dropped, or the connection closes.
func (b *reqBody) Close() error { return nil }

func (b *reqBody) read(p []byte) (int, error) {
	if !b.chunked {
		n, err := b.c.read(p[:min(int64(len(p)), b.remain)])
		b.remain -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if b.remain == 0 && err == nil {
			err = io.EOF
		}
		return n, err
	}
	if !b.inChunk {
		size, err := b.chunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			return 0, b.readTrailer()
		}
		b.remain, b.inChunk = size, true
	}
	n, err := b.c.read(p[:min(int64(len(p)), b.remain)])
	b.remain -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if b.remain == 0 && err == nil {
		b.inChunk = false
		if cerr := b.c.crlf(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

// chunkSize reads a chunk's size line; extensions are ignored.
func (b *reqBody) chunkSize() (int64, error) {
	line, err := b.c.line(maxChunkLine)
	if err != nil {
		return 0, err
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	size, ok := parseHex(line)
	if !ok || size > 1<<62 {
		return 0, errors.New("http: malformed chunked encoding")
	}
	return int64(size), nil
}

// readTrailer reads the fields after the last chunk into the request's
// Trailer, as net/http fills it.
func (b *reqBody) readTrailer() error {
	budget := b.c.s.lim.MaxHeaderBytes
	for {
		line, err := b.c.line(maxChunkLine)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return io.EOF
		}
		if budget -= len(line) + minFieldBytes; budget < 0 {
			return errors.New("http: request trailer too large")
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok || !validFieldName(k) {
			return errors.New("http: malformed trailer")
		}
		v = strings.Trim(v, " \t")
		if !validFieldValue(v) {
			return errors.New("http: malformed trailer")
		}
		if b.req.Trailer == nil {
			b.req.Trailer = http.Header{}
		}
		k = http.CanonicalHeaderKey(k)
		b.req.Trailer[k] = append(b.req.Trailer[k], v)
	}
}

// maxDrainBytes is the most of a request body left unread that the
// server reads and drops to keep the connection, as net/http does; with
// more left, the connection closes.
const maxDrainBytes = 256 << 10

// drain ends the body once its request has ended and reports whether the
// connection can carry another request: the body was read to its end,
// or what was left of it could be dropped.
func (b *reqBody) drain() bool {
	// A reader still waiting on the connection is woken to end: the
	// connection is not kept, or must not take long to read on.
	var keep bool
	b.mu.Lock()
	cont := b.cont.Load()
	keep = b.eof || (b.err == nil && !b.chunked && cont != contWaiting && cont != contSkipped && b.remain <= maxDrainBytes)
	b.mu.Unlock()
	if keep && !b.eof {
		_ = b.c.nc.SetReadDeadline(time.Now().Add(b.c.s.lim.ReadHeaderTimeout))
	} else if !keep {
		_ = b.c.nc.SetReadDeadline(aLongTimeAgo)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.finished = true
	if b.eof {
		return true
	}
	if !keep || b.err != nil {
		return false
	}
	buf := make([]byte, min(b.remain, connBufSize))
	for b.remain > 0 {
		n, err := b.c.read(buf[:min(int64(len(buf)), b.remain)])
		b.remain -= int64(n)
		if err != nil {
			return false
		}
	}
	return true
}

// bodyDone notes that a request's body has been read whole: from now on
// its connection can be watched for the client going away.
func (c *clientConn) bodyDone() {
	c.mu.Lock()
	start := c.serving && !c.handling
	c.handling = start || c.handling
	c.mu.Unlock()
	if start {
		c.armWatch()
	}
}

// crlf reads the CRLF that ends a chunk's data. Only CRLF: a front that
// took a bare LF there and a back that did not would frame the body
// differently, and net/http refuses it too.
func (c *clientConn) crlf() error {
	for c.w-c.r < 2 {
		if err := c.fill(len(c.buf)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if c.buf[c.r] != '\r' || c.buf[c.r+1] != '\n' {
		return errors.New("http: malformed chunked encoding")
	}
	c.r += 2
	return nil
}

// line reads a line of at most max bytes (CRLF or LF), without its end.
func (c *clientConn) line(max int) ([]byte, error) {
	for scanned := 0; ; {
		if i := bytes.IndexByte(c.buf[c.r+scanned:c.w], '\n'); i >= 0 {
			l := c.buf[c.r : c.r+scanned+i]
			c.r += scanned + i + 1
			return bytes.TrimSuffix(l, []byte("\r")), nil
		}
		scanned = c.w - c.r
		if scanned >= max {
			return nil, errors.New("http: line too long in chunked encoding")
		}
		if err := c.fill(len(c.buf)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

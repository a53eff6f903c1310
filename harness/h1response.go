package harness

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Response is the http.ResponseWriter of an h1Server request. Its head
// is written straight from the handler's header map when the response is
// committed (no copy of the map), and the response goes out in one write
// when the handler returns, unless it flushes, writes more than
// maxHeldBody, or writes past outFlushSize.
type h1Response struct {
	c    *clientConn
	req  *http.Request
	body *reqBody

	header        http.Header
	status        int
	wroteHeader   bool  // the status is decided
	committed     bool  // the head is in c.out or sent
	chunked       bool  // the body goes in chunks
	closeAfter    bool  // the connection closes after this response
	contentLength int64 // declared or decided; -1 for unknown
	written       int64 // body bytes the handler wrote
	done          bool  // the handler returned, or hijacked the connection
}

var (
	_ http.ResponseWriter = (*h1Response)(nil)
	_ http.Flusher        = (*h1Response)(nil)
	_ http.Hijacker       = (*h1Response)(nil)
)

// maxHeldBody is how much body a response holds, before its head goes,
// to give it a Content-Length when the handler returns; net/http holds
// 2 KiB.
const maxHeldBody = 4 << 10

// outFlushSize is how much response a connection gathers before it
// writes; a larger body write goes out at once with what is gathered.
const outFlushSize = 16 << 10

var errResponseDone = errors.New("http: response written after its handler returned")

func (w *h1Response) Header() http.Header { return w.header }

func (w *h1Response) WriteHeader(code int) {
	if w.done || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader, w.status = true, code
	if cl, ok := w.header["Content-Length"]; ok && len(cl) > 0 {
		if n, ok := parseLength(strings.TrimSpace(cl[0])); ok {
			w.contentLength = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

// informational sends a 1xx answer with the header as it is now, at
// once, as net/http does.
func (w *h1Response) informational(code int) {
	if code == http.StatusContinue && w.body != nil {
		w.body.cont.CompareAndSwap(contWaiting, contSent)
	}
	c := w.c
	c.out = appendStatusLine(c.out, w.req.ProtoMinor, code)
	for k, vv := range w.header {
		if k == "Content-Length" || k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		c.out = appendFieldValues(c.out, k, vv)
	}
	c.out = append(c.out, "\r\n"...)
	_ = c.writeOut()
}

func (w *h1Response) Write(p []byte) (int, error) {
	if w.done {
		return 0, errResponseDone
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength >= 0 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	c := w.c
	if !w.committed {
		if w.contentLength < 0 && len(c.held)+len(p) <= maxHeldBody {
			c.held = append(c.held, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	return len(p), w.writeBody(p)
}

// writeBody adds p to the response, framed, writing out when the
// gathered response is large.
func (w *h1Response) writeBody(p []byte) error {
	c := w.c
	if len(p) == 0 {
		return nil
	}
	if w.chunked {
		c.out = strconv.AppendInt(c.out, int64(len(p)), 16)
		c.out = append(c.out, "\r\n"...)
	}
	if len(c.out)+len(p) <= outFlushSize {
		c.out = append(c.out, p...)
		if w.chunked {
			c.out = append(c.out, "\r\n"...)
		}
		if len(c.out) < outFlushSize {
			return nil
		}
		return c.writeOut()
	}
	bufs := net.Buffers{c.out, p}
	if w.chunked {
		bufs = append(bufs, crlf)
	}
	c.wmu.Lock()
	_, err := bufs.WriteTo(c.nc)
	c.wmu.Unlock()
	c.out = c.out[:0]
	return err
}

var crlf = []byte("\r\n")

// commit puts the response's head in c.out, followed by the body held so
// far. Once the handler has returned (final), a response with no length
// given gets the length of its whole body; else it goes chunked, or, to
// an HTTP/1.0 client, until the connection closes. sniff is the body's
// first bytes when none are held, for the Content-Type.
func (w *h1Response) commit(final bool, sniff []byte) {
	w.committed = true
	c, h, code := w.c, w.header, w.status
	if b := w.body; b != nil && w.req.ContentLength != 0 && !b.complete.Load() &&
		(b.cont.CompareAndSwap(contWaiting, contSkipped) || b.broken.Load() || w.req.ContentLength < 0 || w.req.ContentLength > maxDrainBytes) {
		// The client may be sending the body, or not; what it sent
		// cannot be read past; or what may be left of it is more than
		// the server reads to drop it.
		w.closeAfter = true
	}
	head := w.req.Method == http.MethodHead
	trailers := len(h["Trailer"]) > 0
	if final && !trailers {
		for k := range h {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				trailers = true
				break
			}
		}
	}
	if final && w.contentLength < 0 && bodyAllowed(code) && !trailers && (!head || w.written > 0) {
		w.contentLength = w.written
	}
	noBody := head || !bodyAllowed(code)
	withLength := !noBody && w.contentLength >= 0 || head && w.contentLength >= 0
	switch {
	case noBody || withLength:
	case w.req.ProtoMinor == 1 && !strings.EqualFold(headerGet(h, "Transfer-Encoding"), "identity"):
		w.chunked = true
	default:
		w.closeAfter = true // the body ends where the connection does
	}
	w.closeAfter = w.closeAfter || w.req.Close || w.c.s.shutting.Load() ||
		httpguts.HeaderValuesContainsToken(h["Connection"], "close")

	c.out = appendStatusLine(c.out, w.req.ProtoMinor, code)
	for k, vv := range h {
		switch {
		case k == "Content-Length", k == "Transfer-Encoding":
			continue
		case k == "Connection" && w.closeAfter:
			continue
		case code == http.StatusNotModified && k == "Content-Type":
			continue
		case strings.HasPrefix(k, http.TrailerPrefix):
			continue
		}
		c.out = appendFieldValues(c.out, k, vv)
	}
	if _, ok := h["Date"]; !ok {
		c.out = append(c.out, "Date: "...)
		c.out = append(c.out, httpDate()...)
		c.out = append(c.out, "\r\n"...)
	}
	if _, ok := h["Content-Type"]; !ok && bodyAllowed(code) {
		if len(c.held) > 0 {
			sniff = c.held
		}
		if len(sniff) > 0 && headerGet(h, "Content-Encoding") == "" {
			c.out = append(c.out, "Content-Type: "...)
			c.out = append(c.out, http.DetectContentType(sniff)...)
			c.out = append(c.out, "\r\n"...)
		}
	}
	switch {
	case w.chunked:
		c.out = append(c.out, "Transfer-Encoding: chunked\r\n"...)
	case withLength && code != http.StatusNotModified:
		c.out = append(c.out, "Content-Length: "...)
		c.out = strconv.AppendInt(c.out, w.contentLength, 10)
		c.out = append(c.out, "\r\n"...)
	}
	switch {
	case w.closeAfter && w.req.ProtoMinor == 1:
		c.out = append(c.out, "Connection: close\r\n"...)
	case !w.closeAfter && w.req.ProtoMinor == 0:
		c.out = append(c.out, "Connection: keep-alive\r\n"...)
	}
	c.out = append(c.out, "\r\n"...)
	if held := c.held; len(held) > 0 {
		c.held = c.held[:0]
		_ = w.writeBody(held)
	}
}

// finish ends the response once the handler has returned, writes it out
// and reports whether the connection may carry another request.
func (w *h1Response) finish() bool {
	if w.done {
		return false
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true, nil)
	}
	w.done = true
	c := w.c
	if w.chunked {
		c.out = append(c.out, "0\r\n"...)
		for _, v := range w.header["Trailer"] {
			for k := range strings.SplitSeq(v, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				if vv := w.header[k]; k != "" && len(vv) > 0 {
					c.out = appendFieldValues(c.out, k, vv)
				}
			}
		}
		for k, vv := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				c.out = appendFieldValues(c.out, name, vv)
			}
		}
		c.out = append(c.out, "\r\n"...)
	}
	if w.req.Method != http.MethodHead && bodyAllowed(w.status) && w.contentLength >= 0 && w.written != w.contentLength {
		w.closeAfter = true // the client waits for bytes that will not come
	}
	if cap(c.held) > maxHeldBody {
		c.held = nil
	}
	if cap(c.out) > 4*outFlushSize {
		defer func() { c.out = make([]byte, 0, connBufSize) }()
	}
	return c.writeOut() == nil && !w.closeAfter
}

// Flush sends the head, and what the body holds, now.
func (w *h1Response) Flush() { _ = w.FlushError() }

// FlushError is Flush, for http.ResponseController.
func (w *h1Response) FlushError() error {
	if w.done {
		return errResponseDone
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	return w.c.writeOut()
}

// Hijack hands the connection over, as net/http's does: what the response
// holds is written first, and bytes the client sent after the request
// come in the reader's buffer. The server forgets the connection.
func (w *h1Response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.done {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	c.stopWatch()
	if w.wroteHeader && !w.committed {
		w.commit(false, nil)
	}
	if err := c.writeOut(); err != nil {
		return nil, nil, err
	}
	w.done = true
	c.hijacked = true
	c.s.untrack(c)
	_ = c.nc.SetDeadline(time.Time{})
	left := bytes.Clone(c.buf[c.r:c.w])
	c.r, c.w = 0, 0
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(left), c.nc), max(len(left), connBufSize))
	if len(left) > 0 {
		_, _ = br.Peek(len(left)) // buffered, as the caller may look for them there
	}
	return c.nc, bufio.NewReadWriter(br, bufio.NewWriter(c.nc)), nil
}

// SetReadDeadline and SetWriteDeadline are the connection's, for
// http.ResponseController.
func (w *h1Response) SetReadDeadline(t time.Time) error  { return w.c.nc.SetReadDeadline(t) }
func (w *h1Response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// EnableFullDuplex is for http.ResponseController: the handler may read
// the request body while it writes the response, as it always may here.
func (w *h1Response) EnableFullDuplex() error { return nil }

// bodyAllowed reports whether a response of status code may have a body.
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

func headerGet(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func appendStatusLine(b []byte, minor, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	if minor == 0 {
		b[len(b)-2] = '0'
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	b = append(b, text...)
	return append(b, "\r\n"...)
}

// appendFieldValues writes a header field's lines, as net/http writes
// them: a name that is not a token is left out, and line ends in a
// value become spaces.
func appendFieldValues(b []byte, k string, vv []string) []byte {
	if !httpguts.ValidHeaderFieldName(k) {
		return b
	}
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		start := len(b)
		b = append(b, strings.TrimSpace(v)...)
		for i := start; i < len(b); i++ {
			if b[i] == '\r' || b[i] == '\n' {
				b[i] = ' '
			}
		}
		b = append(b, "\r\n"...)
	}
	return b
}

// httpDate is the Date of a response, formatted once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := cachedDate.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &dateLine{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	cachedDate.Store(d)
	return d.b
}

type dateLine struct {
	sec int64
	b   []byte
}

var cachedDate atomic.Pointer[dateLine]

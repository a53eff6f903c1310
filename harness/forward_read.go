package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// Reading an upstream's answer: the head, the body as it is framed
// (a length, chunks, or until the connection closes), and the trailers.

// upstreamReadBuffer is the size of the buffer an attempt reads its
// answer through; a body larger than it passes through in pieces of it.
const upstreamReadBuffer = 16 << 10

// maxHeadBytes bounds an answer's head, as http.Transport's default
// MaxResponseHeaderBytes does.
const maxHeadBytes = 10 << 20

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, upstreamReadBuffer) }}

func getReader(r io.Reader) *bufio.Reader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func (x *exchange) putReader() {
	if x.br != nil {
		x.br.Reset(nil)
		readers.Put(x.br)
		x.br = nil
	}
}

// errMalformed is an answer that is not HTTP/1.x as the proxy can pass
// it on.
type errMalformed string

func (e errMalformed) Error() string { return "malformed answer from the upstream: " + string(e) }

// readHead reads an answer's status line and header fields.
func (x *exchange) readHead() error {
	line, err := x.readLine()
	if err != nil {
		if err == io.EOF {
			return errors.New("upstream closed the connection without answering")
		}
		return err
	}
	if x.code, x.minor, err = parseStatusLine(line); err != nil {
		return err
	}
	x.fields, err = x.readFields(x.fields[:0], maxHeadBytes)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// readLine reads a line whatever its length (up to maxHeadBytes), without
// its line end. The line is valid until the next read.
func (x *exchange) readLine() ([]byte, error) {
	l, err := x.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		x.line = append(x.line[:0], l...)
		for err == bufio.ErrBufferFull {
			if len(x.line) > maxHeadBytes {
				return nil, errMalformed("a header line too long")
			}
			l, err = x.br.ReadSlice('\n')
			x.line = append(x.line, l...)
		}
		l = x.line
	}
	if err != nil {
		if err == io.EOF && len(l) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

func parseStatusLine(line []byte) (code, minor int, err error) {
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	switch {
	case !ok:
		return 0, 0, errMalformed(fmt.Sprintf("%.40q", line))
	case string(proto) == "HTTP/1.1":
		minor = 1
	case string(proto) == "HTTP/1.0":
	default:
		return 0, 0, errMalformed(fmt.Sprintf("protocol %.20q", proto))
	}
	status, _, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte(" "))
	if len(status) != 3 {
		return 0, 0, errMalformed(fmt.Sprintf("status %.20q", status))
	}
	for _, c := range status {
		if c < '0' || c > '9' {
			return 0, 0, errMalformed(fmt.Sprintf("status %q", status))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, 0, errMalformed(fmt.Sprintf("status %q", status))
	}
	return code, minor, nil
}

// fieldSpan is a header field's key and value in exchange.hbuf.
type fieldSpan struct{ k0, k1, v0, v1 int }

// readFields reads header fields up to the empty line that ends them and
// appends them to fields, as net/textproto reads them: keys made
// canonical, values trimmed, continuation lines folded in with a space,
// and control characters refused. Their strings share one allocation.
func (x *exchange) readFields(fields []headerField, limit int) ([]headerField, error) {
	hbuf, spans := x.hbuf[:0], x.spans[:0]
	defer func() { x.hbuf, x.spans = hbuf, spans[:0] }()
	// What the head costs is charged as it comes on the wire, and each
	// field as its bookkeeping too, as net/textproto charges them: a
	// head of empty or padded fields is bounded as a dense one is.
	const fieldCost = 64
	wire := 0
	for {
		line, err := x.readLine()
		if err != nil {
			return fields, err
		}
		if len(line) == 0 {
			break
		}
		if wire += len(line) + 2 + fieldCost; wire > limit {
			return fields, errMalformed("headers too large")
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(spans) == 0 {
				return fields, errMalformed("a header that begins with a continuation line")
			}
			v := bytes.Trim(line, " \t")
			if !validValue(v) {
				return fields, errMalformed(fmt.Sprintf("header line %.40q", line))
			}
			hbuf = append(hbuf, ' ')
			hbuf = append(hbuf, v...)
			spans[len(spans)-1].v1 = len(hbuf)
		} else {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if !ok || len(k) == 0 {
				return fields, errMalformed(fmt.Sprintf("header line %.40q", line))
			}
			v = bytes.Trim(v, " \t")
			if !validValue(v) {
				return fields, errMalformed(fmt.Sprintf("header line %.40q", line))
			}
			k0 := len(hbuf)
			hbuf = append(hbuf, k...)
			if !canonicalKey(hbuf[k0:]) {
				return fields, errMalformed(fmt.Sprintf("header line %.40q", line))
			}
			k1 := len(hbuf)
			hbuf = append(hbuf, v...)
			spans = append(spans, fieldSpan{k0, k1, k1, len(hbuf)})
		}
		if len(hbuf) > limit {
			return fields, errMalformed("headers too large")
		}
	}
	if len(spans) == 0 {
		return fields, nil
	}
	s := string(hbuf)
	for _, sp := range spans {
		fields = append(fields, headerField{s[sp.k0:sp.k1], s[sp.v0:sp.v1]})
	}
	return fields, nil
}

func validValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// canonicalKey makes a header key canonical in place (Content-Type), as
// textproto does, and reports whether it is one: a token, or a token with
// spaces, which textproto takes as it is.
func canonicalKey(k []byte) bool {
	spaced := false
	for _, c := range k {
		switch {
		case c < 0x80 && httpguts.IsTokenRune(rune(c)):
		case c == ' ':
			spaced = true
		default:
			return false
		}
	}
	if spaced {
		return true
	}
	upper := true
	for i, c := range k {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k[i] = c
		upper = c == '-'
	}
	return true
}

// frame reads from the answer's head how its body is framed and whether
// its connection can carry another request, as net/http reads a
// response: a HEAD's, a 1xx, 204 or 304 has none; chunked wins over a
// length (which then goes), a length over the connection's end.
func (x *exchange) frame(r *http.Request) error {
	x.conn = x.conn[:0]
	var te, cl []string
	var trailer []string
	hasClose, keepAlive := false, false
	for _, f := range x.fields {
		switch f.k {
		case "Connection":
			for _, t := range strings.Split(f.v, ",") {
				t = textproto.TrimString(t)
				switch {
				case t == "":
					continue
				case strings.EqualFold(t, "close"):
					hasClose = true
				case strings.EqualFold(t, "keep-alive"):
					keepAlive = true
				}
				x.conn = append(x.conn, http.CanonicalHeaderKey(t))
			}
		case "Transfer-Encoding":
			te = append(te, f.v)
		case "Content-Length":
			cl = append(cl, f.v)
		case "Trailer":
			trailer = append(trailer, f.v)
		}
	}
	x.keep = !hasClose && (x.minor == 1 || keepAlive)
	chunked := false
	if len(te) > 0 && x.minor == 1 {
		if len(te) > 1 || !strings.EqualFold(textproto.TrimString(te[0]), "chunked") {
			return errMalformed(fmt.Sprintf("unsupported transfer encoding %q", te))
		}
		chunked = true
	}
	length := int64(-1)
	for _, v := range cl {
		if textproto.TrimString(v) != textproto.TrimString(cl[0]) {
			return errMalformed("more than one Content-Length")
		}
	}
	x.mode, x.remain, x.inChunk, x.done = bodyNone, 0, false, false
	x.trailerKeys, x.trailers = x.trailerKeys[:0], nil
	switch {
	case r.Method == http.MethodHead || x.code < 200 || x.code == http.StatusNoContent || x.code == http.StatusNotModified:
	case chunked:
		x.mode = bodyChunked
	case len(cl) > 0:
		n, ok := parseLength(textproto.TrimString(cl[0]))
		if !ok {
			return errMalformed(fmt.Sprintf("Content-Length %q", cl[0]))
		}
		x.mode, x.remain, length = bodyLength, n, n
	default:
		x.mode, x.keep = bodyUntilClose, false
	}
	x.done = x.mode == bodyNone || x.mode == bodyLength && length == 0
	if x.mode == bodyChunked {
		for _, v := range trailer {
			for _, k := range strings.Split(v, ",") {
				if k = textproto.TrimString(k); k == "" {
					continue
				}
				k = http.CanonicalHeaderKey(k)
				switch k {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return errMalformed(fmt.Sprintf("trailer %q", k))
				}
				if !contains(x.trailerKeys, k) {
					x.trailerKeys = append(x.trailerKeys, k)
				}
			}
		}
	}
	return nil
}

func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, n >= 0
}

// hopByHop names the answer's headers that stay on its connection.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// copyHeader adds the answer's end-to-end headers to h, and announces its
// trailers; it returns how many it announced.
func (x *exchange) copyHeader(h http.Header) int {
	vals := make([]string, len(x.fields)) // one allocation for the values
	n, sawLength := 0, false
	for _, f := range x.fields {
		if hopByHop(f.k) || contains(x.conn, f.k) {
			continue
		}
		if f.k == "Content-Length" {
			if x.mode == bodyChunked || sawLength {
				continue
			}
			sawLength = true
		}
		vals[n] = f.v
		if old, ok := h[f.k]; ok {
			h[f.k] = append(old, f.v)
		} else {
			h[f.k] = vals[n : n+1 : n+1]
		}
		n++
	}
	if len(x.trailerKeys) > 0 {
		h.Add("Trailer", strings.Join(x.trailerKeys, ", "))
	}
	return len(x.trailerKeys)
}

// copyBody passes the body on as it arrives.
func (x *exchange) copyBody(w http.ResponseWriter) error {
	x.src.pending = true // the headers, written
	for {
		p, err := x.next()
		if len(p) > 0 {
			n, werr := w.Write(p)
			if werr == nil && n < len(p) {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return werr
			}
			x.consume(n)
			x.src.pending = true
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copyTrailer passes the trailers on once the body has ended, as
// httputil.ReverseProxy does: under their names when they were all
// announced, else each with http.TrailerPrefix.
func (x *exchange) copyTrailer(w http.ResponseWriter, announced int) {
	if len(x.trailers) == 0 {
		return
	}
	flush(w) // the response goes out chunked, which trailers need
	h := w.Header()
	for k, vv := range x.trailers {
		if len(x.trailers) != announced {
			k = http.TrailerPrefix + k
		}
		h[k] = append(h[k], vv...)
	}
}

// next returns the body's next bytes in the read buffer, reading from the
// connection when none are there; io.EOF at its end. consume says how
// many of them were used.
func (x *exchange) next() ([]byte, error) {
	switch x.mode {
	case bodyLength:
		if x.remain == 0 {
			x.done = true
			return nil, io.EOF
		}
		return x.peek(x.remain, io.ErrUnexpectedEOF)
	case bodyChunked:
		if x.done {
			return nil, io.EOF
		}
		if x.remain == 0 {
			if err := x.nextChunk(); err != nil {
				return nil, err
			}
			if x.done {
				return nil, io.EOF
			}
		}
		return x.peek(x.remain, io.ErrUnexpectedEOF)
	case bodyUntilClose:
		if x.done {
			return nil, io.EOF
		}
		p, err := x.peek(math.MaxInt64, io.EOF)
		if err == io.EOF {
			x.done = true
		}
		return p, err
	}
	x.done = true
	return nil, io.EOF
}

// peek returns up to max buffered bytes, reading when none are buffered;
// the end of the connection is eof.
func (x *exchange) peek(max int64, eof error) ([]byte, error) {
	if x.br.Buffered() == 0 {
		if _, err := x.br.Peek(1); err != nil {
			if err == io.EOF {
				err = eof
			}
			return nil, err
		}
	}
	return x.br.Peek(int(min(int64(x.br.Buffered()), max)))
}

func (x *exchange) consume(n int) {
	if n == 0 {
		return
	}
	_, _ = x.br.Discard(n)
	if x.mode != bodyUntilClose {
		x.remain -= int64(n)
	}
}

// maxChunkLine bounds a chunk's size line, as net/http does.
const maxChunkLine = 4096

// nextChunk reads the end of the chunk before and the size line of the
// next; at the last chunk, the trailers.
func (x *exchange) nextChunk() error {
	if x.inChunk {
		b, err := x.br.Peek(2)
		if err != nil {
			return unexpected(err)
		}
		if b[0] != '\r' || b[1] != '\n' {
			return errMalformed("chunked encoding")
		}
		_, _ = x.br.Discard(2)
		x.inChunk = false
	}
	line, err := x.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return errMalformed("a chunk line too long")
	case err != nil:
		return unexpected(err)
	}
	if i := bytes.IndexByte(line, '\r'); i != len(line)-2 {
		return errMalformed("a chunk line not ended by CRLF")
	}
	line = line[:len(line)-2]
	if len(line) >= maxChunkLine {
		return errMalformed("a chunk line too long")
	}
	line, _, _ = bytes.Cut(line, []byte(";"))
	line = bytes.TrimRight(line, " \t")
	n, ok := parseHex(line)
	if !ok {
		return errMalformed(fmt.Sprintf("chunk size %.20q", line))
	}
	if n > 0 {
		x.remain, x.inChunk = int64(n), true
		return nil
	}
	return x.readTrailers()
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func parseHex(v []byte) (uint64, bool) {
	if len(v) == 0 || len(v) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, n <= math.MaxInt64
}

// readTrailers reads the trailer section after the last chunk: the
// declared trailers, with the values that came, and any others that came.
func (x *exchange) readTrailers() error {
	fields, err := x.readFields(nil, upstreamReadBuffer)
	if err != nil {
		return unexpected(err)
	}
	x.done = true
	if len(x.trailerKeys) == 0 && len(fields) == 0 {
		return nil
	}
	t := make(http.Header, len(x.trailerKeys)+len(fields))
	for _, k := range x.trailerKeys {
		t[k] = nil
	}
	came := map[string]bool{}
	for _, f := range fields {
		if !came[f.k] {
			came[f.k] = true
			t[f.k] = nil
		}
		t[f.k] = append(t[f.k], f.v)
	}
	x.trailers = t
	x.resp.Trailer = t
	return nil
}

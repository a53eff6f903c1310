package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// forwarder is the reverse proxy of an http proxy (ProtocolHTTP): each
// attempt goes to the upstream its balancer picks, over an HTTP/1.1
// connection of the proxy's h1Pool, and its answer passes on to the
// client as it arrives, all on the request's goroutine. It forwards as
// httputil.ReverseProxy with http.Transport did before it: hop-by-hop
// headers stay on their connection, X-Forwarded-For/-Host/-Proto replace
// what the client sent, 1xx answers pass on, a 101 hands both
// connections over to each other, trailers go both ways, and an answer
// that breaks off mid-body aborts the client's response.
type forwarder struct {
	pool   *h1Pool
	bal    *Balancer
	logger *slog.Logger
	// onError answers a request whose attempt got no answer upstream.
	onError func(w http.ResponseWriter, r *http.Request, err error)
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := f.bal
	if rb, ok := r.Context().Value(routeBalancerKey{}).(*Balancer); ok {
		b = rb
	}
	upType := upgradeType(r.Header)
	if !isPrint(upType) {
		f.onError(w, r, fmt.Errorf("client tried to switch to invalid protocol %q", upType))
		return
	}
	u := b.Pick()
	x := newExchange(f, w, u.URL(), upType)
	defer x.release()
	resp, err := b.Send(x, r, u)
	if err != nil {
		f.onError(w, r, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		x.switchProtocols(w, r)
		return
	}
	announced := x.copyHeader(w.Header())
	w.WriteHeader(resp.StatusCode)
	if err := x.copyBody(w); err != nil {
		_ = resp.Body.Close()
		f.logger.Debug("upstream answer cut", "err", err, "path", r.URL.Path)
		// The headers are out: all there is left to do is to abort.
		if r.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	_ = resp.Body.Close() // ends the attempt's time in flight
	x.copyTrailer(w, announced)
}

// upgradeType is the protocol a request or response switches to, if it
// asks to: Upgrade, with upgrade among Connection's tokens.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

func isPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// exchange is one attempt of a request to an upstream: the request's
// head as it goes upstream, the connection it borrowed, and the answer
// being read from it. It is the http.RoundTripper that Balancer.Send
// times and judges, and the body of the *http.Response it hands back.
type exchange struct {
	f      *forwarder
	target *url.URL
	key    h1Key
	upType string

	// out is the request's head without its last line (a retired
	// connection's Connection: close goes there), then the whole of what
	// is written at once.
	out     []byte
	headLen int
	// body is a request body read whole before it is sent (smallBody);
	// stream says the body is sent as it is read, by a goroutine of its
	// own, chunked says in chunks, and reqTrailer holds the request's
	// declared trailers.
	body       []byte
	hasBody    bool
	stream     bool
	chunked    bool
	reqTrailer []string
	bodyState  *streamBody

	c       *h1Conn
	stop    func() bool // unhooks the connection from the request's context
	retired bool        // this attempt is the connection's last
	src     connSource
	br      *bufio.Reader

	// The answer: its head (the fields' strings share one allocation).
	code        int
	minor       int
	fields      []headerField
	conn        []string // Connection's tokens, canonical
	resp        http.Response
	mode        bodyMode
	remain      int64 // of the body (bodyLength) or of the chunk (bodyChunked)
	inChunk     bool  // a chunk's data was read and its CRLF not yet
	done        bool  // the body ended cleanly
	keep        bool  // the connection may carry another request
	trailerKeys []string
	trailers    http.Header
	line        []byte // a line too long for the buffer, assembled
	hbuf        []byte // header fields being read
	spans       []fieldSpan
}

type headerField struct{ k, v string }

type bodyMode uint8

const (
	bodyNone bodyMode = iota
	bodyLength
	bodyChunked
	bodyUntilClose
)

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func newExchange(f *forwarder, w http.ResponseWriter, target *url.URL, upType string) *exchange {
	x := exchanges.Get().(*exchange)
	x.f, x.target, x.key, x.upType = f, target, h1Key{target.Scheme, target.Host}, upType
	x.src.w = w
	return x
}

// release gives the exchange back for reuse, closing a connection an
// attempt left half-used. A body writer still running holds its own
// state, not the exchange's.
func (x *exchange) release() {
	x.dropConn()
	x.putReader()
	*x = exchange{out: x.out[:0], body: keepSmall(x.body), fields: keepFew(x.fields), reqTrailer: x.reqTrailer[:0],
		conn: x.conn[:0], trailerKeys: x.trailerKeys[:0], line: keepSmall(x.line), hbuf: keepSmall(x.hbuf), spans: keepFew(x.spans)}
	exchanges.Put(x)
}

// keepSmall keeps a buffer for the next exchange unless a large request
// or answer grew it.
func keepSmall(b []byte) []byte {
	if cap(b) > 64<<10 {
		return nil
	}
	return b[:0]
}

// keepFew is keepSmall for the lists of an answer's header fields.
func keepFew[T any](s []T) []T {
	if cap(s) > 256 {
		return nil
	}
	return s[:0]
}

// connSource reads the upstream connection for the exchange's buffer.
// Before a read that may block it flushes the client's response when
// bytes wait in it: the client gets what the upstream sent as soon as
// the upstream pauses, and a response that arrives in one piece leaves
// the proxy in one write.
type connSource struct {
	nc      net.Conn
	w       http.ResponseWriter
	pending bool // bytes written to w since its last flush
	read    bool // the upstream sent something in this attempt
}

func (s *connSource) Read(p []byte) (int, error) {
	if s.pending {
		s.pending = false
		flush(s.w)
	}
	n, err := s.nc.Read(p)
	if n > 0 {
		s.read = true
	}
	return n, err
}

// flush sends what w holds on to the client.
func flush(w http.ResponseWriter) {
	switch f := w.(type) {
	case interface{ FlushError() error }:
		_ = f.FlushError()
	case http.Flusher:
		f.Flush()
	default:
		_ = http.NewResponseController(w).Flush()
	}
}

// RoundTrip sends the request upstream and reads the head of its answer,
// passing 1xx answers on. A connection the upstream closed while it was
// idle costs the request nothing where it can safely be sent again, as
// http.Transport does.
func (x *exchange) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if err := x.prepare(r); err != nil {
		return nil, err
	}
	replayable := x.replayable(r)
	for {
		// An idle connection is always looked at first: bytes an
		// upstream sent after its last answer (a body on a HEAD or a
		// 204) must not become the next request's answer.
		c, err := x.f.pool.get(ctx, x.key, true)
		if err != nil {
			return nil, err
		}
		resp, err := x.try(ctx, r, c)
		if err == nil {
			return resp, nil
		}
		again := c.reused && !x.src.read && ctx.Err() == nil && (replayable || x.unsent(err))
		x.dropConn()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !again {
			return nil, err
		}
	}
}

// errUnsent marks a request whose head could not be written: the
// upstream saw none of it.
type errUnsent struct{ err error }

func (e errUnsent) Error() string { return e.err.Error() }
func (e errUnsent) Unwrap() error { return e.err }

// unsent reports whether an attempt failed before the upstream could see
// the request: it may go again on another connection, body and all.
func (x *exchange) unsent(err error) bool {
	var u errUnsent
	return errors.As(err, &u)
}

// replayable reports whether a request may be sent again after its
// connection failed under it, as http.Transport decides: an idempotent
// method, or a key that says so, and a body it can send again.
func (x *exchange) replayable(r *http.Request) bool {
	if x.hasBody && x.stream {
		return false
	}
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, k1 := r.Header["Idempotency-Key"]
	_, k2 := r.Header["X-Idempotency-Key"]
	return k1 || k2
}

// try sends the request on c and reads the head of the answer.
func (x *exchange) try(ctx context.Context, r *http.Request, c *h1Conn) (*http.Response, error) {
	x.c = c
	x.src.nc, x.src.read = c.nc, false
	x.stop = context.AfterFunc(ctx, c.interrupt)
	x.retired = x.f.pool.retired(c)
	x.out = x.out[:x.headLen]
	if x.retired && x.upType == "" {
		x.out = append(x.out, "Connection: close\r\n"...)
	}
	x.out = append(x.out, "\r\n"...)
	if !x.stream {
		x.out = append(x.out, x.body...)
	}
	if n, err := c.nc.Write(x.out); err != nil {
		if n == 0 {
			return nil, errUnsent{err}
		}
		return nil, err
	}
	if x.stream {
		x.startBody(r)
	}
	x.br = getReader(&x.src)
	for informational := 0; ; informational++ {
		if err := x.readHead(); err != nil {
			return nil, err
		}
		if x.code >= 200 || x.code == http.StatusSwitchingProtocols {
			break
		}
		if informational == maxInformational {
			return nil, errors.New("upstream sent too many 1xx answers")
		}
		// Passed on as it came, as httputil.ReverseProxy does.
		h := x.src.w.Header()
		for _, f := range x.fields {
			h[f.k] = append(h[f.k], f.v)
		}
		x.src.w.WriteHeader(x.code)
		clear(h)
	}
	if err := x.frame(r); err != nil {
		return nil, err
	}
	x.resp = http.Response{StatusCode: x.code, Proto: [2]string{"HTTP/1.0", "HTTP/1.1"}[x.minor], ProtoMajor: 1, ProtoMinor: x.minor, Body: x, ContentLength: -1, Request: r}
	if x.mode == bodyLength {
		x.resp.ContentLength = x.remain
	}
	if isGRPC(r) { // Balancer.Send reads a gRPC call's status in them
		x.resp.Header = x.header()
		x.resp.Trailer = x.trailers
	}
	return &x.resp, nil
}

// maxInformational bounds the 1xx answers before the answer itself, as
// http.Transport does.
const maxInformational = 5

// header is the answer's fields as an http.Header.
func (x *exchange) header() http.Header {
	h := make(http.Header, len(x.fields))
	for _, f := range x.fields {
		h[f.k] = append(h[f.k], f.v)
	}
	return h
}

// dropConn closes the attempt's connection, if it has one, and frees its
// place in the pool.
func (x *exchange) dropConn() {
	if x.c == nil {
		return
	}
	x.stop()
	x.f.pool.discard(x.c)
	x.c = nil
	x.putReader()
	if x.bodyState != nil {
		x.bodyState.abandon()
	}
}

// finish gives the connection back once the answer has ended, or closes
// it when it cannot carry another request.
func (x *exchange) finish() {
	c := x.c
	if c == nil {
		return
	}
	keep := x.done && x.keep && !x.retired && x.br.Buffered() == 0
	if x.bodyState != nil {
		// The request body must have gone whole, and nothing be left
		// behind that could still write to the connection.
		keep = keep && x.bodyState.finished()
	}
	if !x.stop() { // the request's context ended: the connection is interrupted
		keep = false
	}
	x.putReader()
	x.c = nil
	if keep {
		x.f.pool.put(c)
		return
	}
	x.f.pool.discard(c)
	if x.bodyState != nil {
		x.bodyState.abandon()
	}
}

// Read reads the answer's body, for those who read it as an
// *http.Response's; the forwarder copies it with copyBody.
func (x *exchange) Read(p []byte) (int, error) {
	b, err := x.next()
	n := copy(p, b)
	x.consume(n)
	return n, err
}

// Close ends the body: the connection goes back to the pool, or closes.
func (x *exchange) Close() error {
	x.finish()
	return nil
}

// prepare builds the head of the request as it goes upstream and decides
// how its body goes.
func (x *exchange) prepare(r *http.Request) error {
	x.body = x.body[:0]
	x.hasBody = r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
	x.stream, x.chunked = false, false
	if x.hasBody && (r.ContentLength < 0 || r.ContentLength > smallBody) {
		x.stream, x.chunked = true, r.ContentLength < 0
	}
	b := x.out[:0]
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, requestURI(x.target, r.URL)...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, x.target.Host...)
	b = append(b, "\r\n"...)
	var named []string // headers Connection names: hop-by-hop
	for _, v := range r.Header["Connection"] {
		for _, t := range strings.Split(v, ",") {
			if t = textproto.TrimString(t); t != "" {
				named = append(named, http.CanonicalHeaderKey(t))
			}
		}
	}
	if ua := r.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" && !contains(named, "User-Agent") {
		b = appendField(b, "User-Agent", ua[0])
	}
	for k, vv := range r.Header {
		if skipOutgoing(k) || (named != nil && contains(named, k)) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("invalid header field value for %q", k)
			}
			if k == "Grpc-Timeout" && isGRPC(r) {
				// What the call has left when it leaves (see rewriteGRPC).
				if dl, ok := r.Context().Deadline(); ok {
					v = formatGRPCTimeout(time.Until(dl))
				}
			}
			b = appendField(b, k, textproto.TrimString(v))
		}
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		b = append(b, "Te: trailers\r\n"...)
	}
	if x.upType != "" {
		b = append(b, "Connection: Upgrade\r\n"...)
		b = appendField(b, "Upgrade", x.upType)
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = appendField(b, "X-Forwarded-For", ip)
	}
	b = appendField(b, "X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		b = append(b, "X-Forwarded-Proto: http\r\n"...)
	} else {
		b = append(b, "X-Forwarded-Proto: https\r\n"...)
	}
	switch {
	case x.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		x.reqTrailer = x.reqTrailer[:0]
		for k := range r.Trailer {
			x.reqTrailer = append(x.reqTrailer, k)
		}
		if len(x.reqTrailer) > 0 {
			b = appendField(b, "Trailer", strings.Join(x.reqTrailer, ","))
		}
	case x.hasBody:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, "\r\n"...)
	case method != http.MethodGet && method != http.MethodHead:
		// As http.Transport: many servers want a length on these.
		b = append(b, "Content-Length: 0\r\n"...)
	}
	x.out, x.headLen = b, len(b)
	if x.hasBody && !x.stream {
		return x.readBody(r)
	}
	return nil
}

// smallBody is the largest request body read whole before the request
// goes, and sent with its head in one write; larger bodies, and those of
// unknown length, stream. Socket buffers hold this much, so an upstream
// that answers before reading the body cannot block the write.
const smallBody = 16 << 10

func (x *exchange) readBody(r *http.Request) error {
	n := int(r.ContentLength)
	if cap(x.body) < n {
		x.body = make([]byte, n)
	}
	x.body = x.body[:n]
	if _, err := io.ReadFull(r.Body, x.body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("http: ContentLength=%d with a shorter body: %w", n, err)
		}
		return err
	}
	return nil
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// skipOutgoing names the request headers that do not go upstream as they
// came: hop-by-hop ones, those the head is framed by, and the forwarding
// headers the proxy sets itself.
func skipOutgoing(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Host", "User-Agent", "Content-Length",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// requestURI is the request-target of a request to target: target's path
// joined with the request's, their queries joined, as
// httputil.ProxyRequest.SetURL makes it.
func requestURI(target, in *url.URL) string {
	u := *in
	u.RawQuery = cleanQuery(in.RawQuery)
	u.Path, u.RawPath = joinURLPath(target, in)
	switch {
	case target.RawQuery == "":
	case u.RawQuery == "":
		u.RawQuery = target.RawQuery
	default:
		u.RawQuery = target.RawQuery + "&" + u.RawQuery
	}
	return u.RequestURI()
}

func joinURLPath(a, b *url.URL) (path, rawpath string) {
	if a.RawPath == "" && b.RawPath == "" {
		return singleJoiningSlash(a.Path, b.Path), ""
	}
	apath, bpath := a.EscapedPath(), b.EscapedPath()
	aslash, bslash := strings.HasSuffix(apath, "/"), strings.HasPrefix(bpath, "/")
	switch {
	case aslash && bslash:
		return a.Path + b.Path[1:], apath + bpath[1:]
	case !aslash && !bslash:
		return a.Path + "/" + b.Path, apath + "/" + bpath
	}
	return a.Path + b.Path, apath + bpath
}

func singleJoiningSlash(a, b string) string {
	aslash, bslash := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case aslash && bslash:
		return a + b[1:]
	case !aslash && !bslash:
		return a + "/" + b
	}
	return a + b
}

// cleanQuery re-encodes a query that holds what some servers read
// differently from others (semicolons, malformed escapes) or too many
// parameters, as httputil.ReverseProxy does.
func cleanQuery(s string) string {
	reencode := func() string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	if strings.Count(s, "&")+1 > 10000 {
		return reencode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode()
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode()
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// streamBody is a request body sent by a goroutine of its own while the
// answer is read, as http.Transport sends bodies: an upstream may answer
// before it has read the whole body, or stream its answer while it reads.
type streamBody struct {
	body   io.Reader
	closed atomic.Bool // the handler is done with it: no more reads
	failed atomic.Bool // reading the client's body failed
	done   chan struct{}
	err    error
}

func (s *streamBody) Read(p []byte) (int, error) {
	if s.closed.Load() {
		return 0, errors.New("request body read after its request ended")
	}
	n, err := s.body.Read(p)
	if err != nil && err != io.EOF {
		s.failed.Store(true)
	}
	return n, err
}

// finished reports whether the whole body went out, waiting a moment
// for a writer about to end, as http.Transport does before it reuses a
// connection.
func (s *streamBody) finished() bool {
	select {
	case <-s.done:
		return s.err == nil
	default:
	}
	t := time.NewTimer(bodyEndWait)
	defer t.Stop()
	select {
	case <-s.done:
		return s.err == nil
	case <-t.C:
		return false
	}
}

// bodyEndWait is how long an answer that ended before its request body
// went out whole waits for the body before its connection is closed.
const bodyEndWait = 50 * time.Millisecond

// abandon stops the body's reads: its request is over.
func (s *streamBody) abandon() { s.closed.Store(true) }

func (x *exchange) startBody(r *http.Request) {
	s := &streamBody{body: r.Body, done: make(chan struct{})}
	x.bodyState = s
	nc, chunked, interrupt := x.c.nc, x.chunked, x.c.interrupt
	trailer := r.Trailer
	n := r.ContentLength
	go func() {
		defer close(s.done)
		s.err = writeBody(nc, s, n, chunked, trailer)
		if s.failed.Load() {
			// The client's body broke off (a bad chunk, say) while its
			// connection stays open: the upstream waits for the rest,
			// and nothing would end the wait for its answer.
			interrupt()
		}
	}()
}

// writeBody sends a request body of n bytes, or chunked and its trailer.
func writeBody(w io.Writer, body io.Reader, n int64, chunked bool, trailer http.Header) error {
	buf := getCopyBuf()
	defer putCopyBuf(buf)
	if !chunked {
		m, err := io.CopyBuffer(w, io.LimitReader(body, n), *buf)
		if err == nil && m < n {
			err = fmt.Errorf("http: ContentLength=%d with Body length %d", n, m)
		}
		return err
	}
	const room = 18 // a chunk's size line: up to 16 hex digits and CRLF
	b := *buf
	for {
		m, err := body.Read(b[room : len(b)-2])
		if m > 0 {
			size := strconv.AppendUint(b[:0:room], uint64(m), 16)
			start := room - len(size) - 2
			copy(b[start:], size)
			b[room-2], b[room-1] = '\r', '\n'
			b[room+m], b[room+m+1] = '\r', '\n'
			if _, werr := w.Write(b[start : room+m+2]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	end := append(b[:0], "0\r\n"...)
	for k, vv := range trailer {
		for _, v := range vv {
			end = appendField(end, k, v)
		}
	}
	end = append(end, "\r\n"...)
	_, err := w.Write(end)
	return err
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func getCopyBuf() *[]byte  { return copyBufs.Get().(*[]byte) }
func putCopyBuf(b *[]byte) { copyBufs.Put(b) }

// switchProtocols hands the client's connection and the upstream's over
// to each other after a 101, as httputil.ReverseProxy does: the upgrade
// must be the one asked for, the 101 goes to the client with the
// upstream's headers, and bytes flow both ways until either side ends.
func (x *exchange) switchProtocols(w http.ResponseWriter, r *http.Request) {
	h := x.header()
	resUp := upgradeType(h)
	switch {
	case x.upType == "" || resUp == "":
		x.f.onError(w, r, fmt.Errorf("backend switched protocols (to %q) when %q was requested", resUp, x.upType))
		return
	case !isPrint(resUp):
		x.f.onError(w, r, fmt.Errorf("backend tried to switch to invalid protocol %q", resUp))
		return
	case !strings.EqualFold(x.upType, resUp):
		x.f.onError(w, r, fmt.Errorf("backend tried to switch protocol %q when %q was requested", resUp, x.upType))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			err = fmt.Errorf("can't switch protocols using non-Hijacker ResponseWriter type %T", w)
		} else {
			err = fmt.Errorf("hijack failed on protocol switch: %w", err)
		}
		x.f.onError(w, r, err)
		return
	}
	defer conn.Close()
	back := x.c.nc
	upstream := io.MultiReader(x.buffered(), back)
	x.stop()
	stop := context.AfterFunc(r.Context(), func() { _ = back.Close() })
	defer stop()
	defer x.f.pool.discard(x.c)
	x.c = nil

	for k, vv := range h {
		w.Header()[k] = append(w.Header()[k], vv...)
	}
	res := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: w.Header()}
	if err := res.Write(brw); err != nil {
		x.f.logger.Debug("protocol switch", "err", err)
		return
	}
	if err := brw.Flush(); err != nil {
		x.f.logger.Debug("protocol switch", "err", err)
		return
	}
	var client io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		client = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), conn)
	}
	errc := make(chan error, 2)
	go func() { errc <- spliceHalf(back, client) }()
	go func() { errc <- spliceHalf(conn, upstream) }()
	if err := <-errc; err == nil {
		<-errc
	}
}

// buffered is what the upstream sent after the 101 and the proxy has read
// already.
func (x *exchange) buffered() io.Reader {
	n := x.br.Buffered()
	if n == 0 {
		return strings.NewReader("")
	}
	b, _ := x.br.Peek(n)
	return strings.NewReader(string(b))
}

// spliceHalf copies one direction of a switched connection and, at its
// end, half-closes the writing side, so the other direction may finish.
func spliceHalf(dst net.Conn, src io.Reader) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("hijacked connection copy complete")
}

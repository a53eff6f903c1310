package harness_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
)

// The HTTP/1.1 edge cases of the http proxy, over real loopback servers
// and raw client connections where a Go client would hide the framing.

// rawConn dials the proxy and reads its answers with a deadline, so a
// proxy that hangs fails the test instead of stalling it.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// response reads one response to a request of method, its body whole.
func (r *rawConn) response(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// echoUpstream answers with what it received: the method, path and body,
// and X-Seen-* headers for the request headers the test asks about.
func echoUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, k := range r.Header.Values("X-Report") {
			w.Header()["X-Seen-"+k] = r.Header.Values(k)
		}
		for k, v := range r.Trailer {
			w.Header()["X-Seen-Trailer-"+k] = v
		}
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})
}

func TestProxy_PipelinedRequests(t *testing.T) {
	p := startProxy(t, harness.Options{Upstream: serve(t, echoUpstream(), false).URL})
	c := dialRaw(t, p.Addr())
	c.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"HEAD /three HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /four HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []struct{ method, body string }{
		{"GET", "GET /one "},
		{"POST", "POST /two hello"},
		{"HEAD", ""},
		{"GET", "GET /four "},
	} {
		resp, body := c.response(want.method)
		if resp.StatusCode != http.StatusOK || body != want.body {
			t.Errorf("%s: %d %q, want 200 %q", want.method, resp.StatusCode, body, want.body)
		}
	}
}

// TestProxy_ChunkedRequestBody streams a request body of unknown length,
// larger than any buffer, with a trailer.
func TestProxy_ChunkedRequestBody(t *testing.T) {
	var got struct {
		sync.Mutex
		sum     [32]byte
		n       int
		chunked bool
		trailer string
	}
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		got.Lock()
		copy(got.sum[:], h.Sum(nil))
		got.n, got.chunked, got.trailer = int(n), len(r.TransferEncoding) > 0, r.Trailer.Get("X-Sum")
		got.Unlock()
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	body := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	pr, pw := io.Pipe()
	go func() {
		for b := body; len(b) > 0; b = b[min(len(b), 100_000):] {
			if _, err := pw.Write(b[:min(len(b), 100_000)]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL()+"/upload", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Trailer = http.Header{"X-Sum": {"s"}}
	r := do(t, newClient(t, false), req)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	got.Lock()
	defer got.Unlock()
	if got.n != len(body) || got.sum != sha256.Sum256(body) || !got.chunked {
		t.Errorf("upstream got %d bytes (chunked %v), want the %d sent, chunked", got.n, got.chunked, len(body))
	}
	if got.trailer != "s" {
		t.Errorf("upstream trailer X-Sum = %q, want s", got.trailer)
	}
}

// TestProxy_LargeBodies sends bodies far larger than any buffer both ways,
// with and without a Content-Length.
func TestProxy_LargeBodies(t *testing.T) {
	body := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz012345"), 256<<10) // 8 MiB
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(in, body) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("length") == "known" {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		for b := body; len(b) > 0; b = b[min(len(b), 50_000):] {
			if _, err := w.Write(b[:min(len(b), 50_000)]); err != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	c := newClient(t, false)
	for _, length := range []string{"known", "unknown"} {
		t.Run(length, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, p.URL()+"/blob?length="+length, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Fatalf("status %d, %d bytes back, err %v; want 200 and the %d bytes sent", resp.StatusCode, len(got), err, len(body))
			}
			if wantCL := map[string]int64{"known": int64(len(body)), "unknown": -1}[length]; resp.ContentLength != wantCL {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, wantCL)
			}
		})
	}
}

// TestProxy_ExpectContinue: a client that waits for 100 Continue before
// sending its body gets it, and the upstream gets the body.
func TestProxy_ExpectContinue(t *testing.T) {
	p := startProxy(t, harness.Options{Upstream: serve(t, echoUpstream(), false).URL})
	c := dialRaw(t, p.Addr())
	c.send("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("first line %q (%v), want a 100 Continue", line, err)
	}
	if _, err := c.br.ReadString('\n'); err != nil { // the interim response's end
		t.Fatal(err)
	}
	c.send("hello world")
	for {
		resp, body := c.response(http.MethodPost)
		if resp.StatusCode == http.StatusContinue {
			continue // the upstream's own 100 Continue, passed on
		}
		if resp.StatusCode != http.StatusOK || body != "POST /form hello world" {
			t.Errorf("got %d %q, want 200 with the body echoed", resp.StatusCode, body)
		}
		break
	}
}

// TestProxy_ConnectionClose: a client's Connection: close ends its
// connection after the response but not the proxy's upstream connection,
// and an upstream's Connection: close ends that upstream connection but
// not the client's.
func TestProxy_ConnectionClose(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]int{}
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr]++
		mu.Unlock()
		if r.Header.Get("Connection") != "" {
			t.Errorf("upstream saw Connection: %q", r.Header.Get("Connection"))
		}
		if r.URL.Path == "/bye" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})

	c := dialRaw(t, p.Addr())
	c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	c.response(http.MethodGet)
	c.send("GET /bye HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.response(http.MethodGet); resp.Close {
		t.Error("the upstream's Connection: close reached the client")
	}
	c.send("GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp, body := c.response(http.MethodGet); !resp.Close || body != "ok" {
		t.Errorf("response to Connection: close: close %v, body %q", resp.Close, body)
	}
	if n, err := c.br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after Connection: close the proxy sent %d bytes more, err %v; want EOF", n, err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 2 {
		t.Errorf("upstream connections used %v, want two: one closed by the upstream, the next kept", conns)
	}
}

// TestProxy_Upgrade passes a WebSocket-style upgrade through: the 101, the
// bytes the upstream sends with it, and traffic both ways after it.
func TestProxy_Upgrade(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "not an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Up: 1\r\n\r\nhello|")
		brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString("echo:" + line)
		brw.Flush()
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	c := dialRaw(t, p.Addr())
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("X-Up") != "1" {
		t.Fatalf("got %d %v, want 101 with the upstream's headers", resp.StatusCode, resp.Header)
	}
	greeting := make([]byte, len("hello|"))
	if _, err := io.ReadFull(c.br, greeting); err != nil || string(greeting) != "hello|" {
		t.Fatalf("read %q (%v), want the bytes sent with the 101", greeting, err)
	}
	c.send("ping\n")
	if line, err := c.br.ReadString('\n'); err != nil || line != "echo:ping\n" {
		t.Errorf("read %q (%v), want echo:ping", line, err)
	}
}

// TestProxy_ResponseTrailers: trailers the upstream declares and ones it
// does not both reach HTTP/1.1 and h2c clients.
func TestProxy_ResponseTrailers(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared")
		io.WriteString(w, "body")
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	for _, h2c := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2c=%v", h2c), func(t *testing.T) {
			r := get(t, newClient(t, h2c), p.URL()+"/")
			resp, err := newClient(t, h2c).Get(p.URL() + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if r.body != "body" || string(b) != "body" {
				t.Errorf("body %q", b)
			}
			if d, u := resp.Trailer.Get("X-Declared"), resp.Trailer.Get("X-Undeclared"); d != "d" || u != "u" {
				t.Errorf("trailers %v, want X-Declared: d and X-Undeclared: u", resp.Trailer)
			}
		})
	}
}

// TestProxy_Streams: the client gets the headers, then each piece of the
// body, while the upstream waits for the client to have seen the one
// before — a proxy that holds bytes back until more arrive deadlocks here.
func TestProxy_Streams(t *testing.T) {
	for _, length := range []string{"known", "unknown"} {
		t.Run(length, func(t *testing.T) {
			seen := make(chan struct{})
			up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if length == "known" {
					w.Header().Set("Content-Length", "6")
				}
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				for _, piece := range []string{"a", "bb", "ccc"} {
					select {
					case <-seen:
					case <-time.After(hangGuard):
						return
					}
					io.WriteString(w, piece)
					w.(http.Flusher).Flush()
				}
			}), false)
			p := startProxy(t, harness.Options{Upstream: up.URL})
			c := dialRaw(t, p.Addr())
			c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			for _, piece := range []string{"a", "bb", "ccc"} {
				seen <- struct{}{}
				buf := make([]byte, len(piece))
				if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != piece {
					t.Fatalf("read %q (%v), want %q", buf, err, piece)
				}
			}
		})
	}
}

// TestProxy_HopByHopHeaders: the headers of one connection stay on it, in
// both directions; Te: trailers goes on.
func TestProxy_HopByHopHeaders(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade", "Trailer"} {
			if v, ok := r.Header[k]; ok {
				t.Errorf("upstream saw %s: %q", k, v)
			}
		}
		if v := r.Header.Get("Te"); v != "trailers" {
			t.Errorf("upstream saw Te: %q, want trailers", v)
		}
		if v := r.Header.Get("X-End"); v != "kept" {
			t.Errorf("upstream saw X-End: %q, want kept", v)
		}
		h := w.Header()
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-End", "kept")
		io.WriteString(w, "ok")
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	c := dialRaw(t, p.Addr())
	c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 300\r\n" +
		"Proxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nTe: trailers, deflate\r\nX-End: kept\r\n\r\n")
	resp, body := c.response(http.MethodGet)
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	for _, k := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client saw %s: %q", k, v)
		}
	}
	if v := resp.Header.Get("X-End"); v != "kept" {
		t.Errorf("client saw X-End: %q, want kept", v)
	}
}

// TestProxy_ForwardingHeaders: the upstream learns the client's address
// and the host it asked for; what a client claims about earlier hops is
// replaced, and a Via header passes as it came.
func TestProxy_ForwardingHeaders(t *testing.T) {
	up := &recorder{}
	p := startProxy(t, harness.Options{Upstream: serve(t, up, false).URL})
	c := dialRaw(t, p.Addr())
	c.send("GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: evil\r\n" +
		"X-Forwarded-Proto: https\r\nForwarded: for=10.9.9.9\r\nVia: 1.1 edge\r\n\r\n")
	c.response(http.MethodGet)
	reqs := up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	h := reqs[0].header
	for k, want := range map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  "shop.example",
		"X-Forwarded-Proto": "http",
		"Forwarded":         "",
		"Via":               "1.1 edge",
	} {
		if got := strings.Join(h.Values(k), ", "); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
}

// rawUpstream is an upstream written by hand: serve answers the requests
// of one connection, which closes when serve returns.
func rawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	return tcpServer(t, func(c net.Conn) { serve(c, bufio.NewReader(c)) })
}

// answerOnce is an upstream that reads one request on each connection
// and writes answer, as it is, in reply.
func answerOnce(t *testing.T, answer string) string {
	return rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, answer)
	})
}

// readRequest reads one request and its body from an upstream connection.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

// TestProxy_UpstreamClosesIdleConnection: an upstream that closes each
// connection after one response, without saying so, costs no request —
// neither a GET nor a POST — whether the proxy notices the close before
// it reuses the connection or only when it tries.
func TestProxy_UpstreamClosesIdleConnection(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := startProxy(t, harness.Options{Upstream: "http://" + addr})
	c := newClient(t, false)
	for i := range 6 {
		method := []string{http.MethodGet, http.MethodPost}[i%2]
		req, _ := http.NewRequestWithContext(t.Context(), method, p.URL()+"/", strings.NewReader("x"))
		if r := do(t, c, req); r.status != http.StatusOK || r.body != "ok" {
			t.Errorf("%s #%d: %d %q", method, i, r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond) // the upstream's close arrives
	}
}

// TestProxy_CloseDelimitedResponse: a response without a length that ends
// when the upstream closes reaches the client whole.
func TestProxy_CloseDelimitedResponse(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
		time.Sleep(10 * time.Millisecond)
		io.WriteString(c, "the end")
	})
	p := startProxy(t, harness.Options{Upstream: "http://" + addr})
	c := newClient(t, false)
	for range 2 {
		if r := get(t, c, p.URL()+"/"); r.status != http.StatusOK || r.body != "until the end" {
			t.Errorf("got %d %q", r.status, r.body)
		}
	}
}

// TestProxy_MalformedResponse: an upstream that answers with something
// other than HTTP is a 502, as an unreachable one is.
func TestProxy_MalformedResponse(t *testing.T) {
	for name, answer := range map[string]string{
		"not HTTP":             "SSH-2.0-OpenSSH_9.6\r\n",
		"bad status":           "HTTP/1.1 2x0 OK\r\n\r\n",
		"bad header":           "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
		"bad length":           "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
		"two lengths":          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		"closed without reply": "",
		// a 101 to a request that asked for no upgrade, never a tunnel
		// past the proxy's faults and guards
		"unrequested 101": "HTTP/1.1 101 Switching Protocols\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			addr := answerOnce(t, answer)
			p := startProxy(t, harness.Options{Upstream: "http://" + addr})
			r := get(t, newClient(t, false), p.URL()+"/")
			if r.status != http.StatusBadGateway || r.header.Get(harness.ErrorHeader) != "upstream" {
				t.Errorf("got %d (%s: %q), want 502 from the proxy", r.status, harness.ErrorHeader, r.header.Get(harness.ErrorHeader))
			}
		})
	}
}

// TestProxy_HeadAndBodilessStatuses: responses that carry no body whatever
// their headers say end where their headers end, and the connection goes
// on.
func TestProxy_HeadAndBodilessStatuses(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	c := dialRaw(t, p.Addr())
	c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []struct {
		method string
		status int
		body   string
	}{
		{http.MethodHead, 200, ""}, {http.MethodGet, 304, ""}, {http.MethodGet, 204, ""}, {http.MethodGet, 200, "hello"},
	} {
		resp, body := c.response(want.method)
		if resp.StatusCode != want.status || body != want.body {
			t.Errorf("%s: %d %q, want %d %q", want.method, resp.StatusCode, body, want.status, want.body)
		}
		if want.method == http.MethodHead && resp.ContentLength != 5 {
			t.Errorf("HEAD: Content-Length %d, want the upstream's 5", resp.ContentLength)
		}
	}
}

// TestProxy_HTTPSUpstream: an http proxy speaks HTTP/1.1 over TLS to an
// https:// upstream it checks against the CA it was given, and keeps the
// connection for the next request.
func TestProxy_HTTPSUpstream(t *testing.T) {
	certFile, _, cert, _ := testCert(t)
	var cc connCounter
	srv := httptest.NewUnstartedServer(echoUpstream())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.Config.ConnState = cc.hook
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p := startProxy(t, harness.Options{Upstream: srv.URL, UpstreamCA: certFile})
	c := newClient(t, false)
	for range 3 {
		if r := get(t, c, p.URL()+"/secure"); r.status != http.StatusOK || r.body != "GET /secure " {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	}
	if n := cc.opened(); n != 1 {
		t.Errorf("the upstream saw %d connections, want 1 kept alive", n)
	}
}

// TestProxy_UpstreamIdleTimeout: an upstream connection left idle for the
// pool's idle timeout is closed.
func TestProxy_UpstreamIdleTimeout(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(echoUpstream())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := harness.DefaultBalanceConfig()
	cfg.Pool.IdleTimeout = 50 * time.Millisecond
	p := startProxy(t, harness.Options{Upstream: srv.URL, Balance: cfg})
	get(t, newClient(t, false), p.URL()+"/")
	select {
	case <-closed:
	case <-time.After(hangGuard):
		t.Fatal("the idle upstream connection was never closed")
	}
}

// TestProxy_WaitForConnectionCancelled: a request waiting for a connection
// at the pool's cap that its client gives up on leaves its place to the
// next.
func TestProxy_WaitForConnectionCancelled(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}), false)
	cfg := harness.DefaultBalanceConfig()
	cfg.Pool.MaxConns = 1
	p := startProxy(t, harness.Options{Upstream: up.URL, Balance: cfg})
	c := newClient(t, false)

	held := make(chan response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.URL()+"/hold", nil)
		held <- do(t, c, req)
	}()
	<-arrived
	ctx, cancel := context.WithCancel(t.Context())
	waited := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/wait", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		waited <- err
	}()
	deadline := time.Now().Add(hangGuard)
	for p.Balancer().Stats()[0].InFlight != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second request never waited for the connection")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-waited; err == nil {
		t.Fatal("the cancelled request succeeded")
	}
	close(release)
	if r := <-held; r.status != http.StatusOK {
		t.Fatalf("held request: %d", r.status)
	}
	if r := get(t, c, p.URL()+"/after"); r.status != http.StatusOK || r.body != "ok" {
		t.Errorf("after: %d %q", r.status, r.body)
	}
}

// TestProxy_EarlyAnswer: an upstream that answers before it has read a
// large body gets its answer to the client, and nothing hangs.
func TestProxy_EarlyAnswer(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	body := bytes.Repeat([]byte("x"), 8<<20)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL()+"/upload", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := newClient(t, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want the upstream's 413", resp.StatusCode)
	}
}

// opened is how many connections the upstream has seen.
func (c *connCounter) opened() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active)
}

// TestProxy_ConcurrentMixedTraffic sends requests of every shape at once
// through a proxy whose pool is capped, to an upstream that now and then
// ends a connection after its answer, or drops a kept-alive one without
// answering a GET: every request gets its own body back, whole — nothing
// hangs, mixes up or races.
func TestProxy_ConcurrentMixedTraffic(t *testing.T) {
	var served atomic.Int64
	var mu sync.Mutex
	uses := map[string]int{} // requests by upstream connection
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		mu.Lock()
		uses[r.RemoteAddr]++
		reused := uses[r.RemoteAddr] > 1
		mu.Unlock()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		switch {
		case n%7 == 0 && reused && r.Method == http.MethodGet:
			// Dropped as an idle connection closes under a request: the
			// GET goes again on another.
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		case n%5 == 0:
			w.Header().Set("Connection", "close")
		}
		if n%2 == 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)+len(r.URL.Path)))
		}
		io.WriteString(w, r.URL.Path)
		w.Write(b)
	}), false)
	cfg := harness.DefaultBalanceConfig()
	cfg.Pool.MaxConns = 8
	p := startProxy(t, harness.Options{Upstream: up.URL, Balance: cfg})
	c := newClient(t, false)
	sizes := []int{0, 10, 16 << 10, 16<<10 + 1, 200 << 10}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				size := sizes[(g+i)%len(sizes)]
				body := bytes.Repeat([]byte{byte('a' + g)}, size)
				path := fmt.Sprintf("/g%d/r%d", g, i)
				method := http.MethodPost
				if size == 0 {
					method = http.MethodGet
				}
				var rd io.Reader = bytes.NewReader(body)
				if i%3 == 0 {
					rd = io.MultiReader(bytes.NewReader(body)) // no length: chunked
				}
				req, _ := http.NewRequestWithContext(t.Context(), method, p.URL()+path, rd)
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("%s %s: %v", method, path, err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || string(got) != path+string(body) {
					t.Errorf("%s %s (%d bytes): %d, %d bytes back, err %v", method, path, size, resp.StatusCode, len(got), err)
				}
			}
		})
	}
	wg.Wait()
}

// TestProxy_AnswerCutMidBody: an answer that breaks off mid-body — short
// of its length, or in the middle of its chunks — reaches the client as
// a broken response, never as a clean short one.
func TestProxy_AnswerCutMidBody(t *testing.T) {
	for name, answer := range map[string]string{
		"short of its length": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
		"mid-chunk":           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nonly ten b\r\n64\r\nand then",
		"malformed chunks":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nonly ten bXX",
	} {
		t.Run(name, func(t *testing.T) {
			addr := answerOnce(t, answer)
			p := startProxy(t, harness.Options{Upstream: "http://" + addr})
			resp, err := newClient(t, false).Get(p.URL() + "/")
			if err != nil {
				return // cut before the headers reached the client: broken too
			}
			defer resp.Body.Close()
			if b, err := io.ReadAll(resp.Body); err == nil {
				t.Errorf("read %q and a clean end, want an error", b)
			}
		})
	}
}

// TestProxy_StrayBytesOnIdleConnection: bytes an upstream sends after an
// answer that carries no body (here a whole response, late) are never
// read as the answer to the next request on that connection.
func TestProxy_StrayBytesOnIdleConnection(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := readRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/first" {
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
				time.Sleep(20 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
		}
	})
	p := startProxy(t, harness.Options{Upstream: "http://" + addr})
	c := newClient(t, false)
	if r := get(t, c, p.URL()+"/first"); r.status != http.StatusNoContent {
		t.Fatalf("first: %d %q", r.status, r.body)
	}
	time.Sleep(60 * time.Millisecond) // the stray answer reaches the idle connection
	if r := get(t, c, p.URL()+"/second"); r.status != http.StatusOK || r.body != "good" {
		t.Errorf("second: %d %q, want 200 \"good\"", r.status, r.body)
	}
}

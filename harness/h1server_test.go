package harness_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// The http proxy's own HTTP/1.x server, where a fast path goes wrong:
// heads it must refuse, framing it must keep, clients it must notice
// leaving. Raw client connections, so that nothing hides the bytes.

// TestProxy_RefusedHeads sends heads the server must refuse: each is
// answered with its status and Connection: close, and the connection
// closes.
func TestProxy_RefusedHeads(t *testing.T) {
	p := startProxy(t, harness.Options{Upstream: serve(t, echoUpstream(), false).URL,
		Limits: harness.ConnLimits{MaxHeaderBytes: 4 << 10}})
	many := strings.Repeat("X-A: b\r\n", 4<<10/64+2)
	tests := []struct {
		name string
		head string
		want int
	}{
		{"request line without a version", "GET /\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"request line of one word", "HELLO\r\n\r\n", http.StatusBadRequest},
		{"method not a token", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"control character in the target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"unknown HTTP version", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", http.StatusHTTPVersionNotSupported},
		{"malformed version", "GET / HTTQ/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", http.StatusBadRequest},
		{"field without a colon", "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", http.StatusBadRequest},
		{"space before the colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", http.StatusBadRequest},
		{"folded field", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", http.StatusBadRequest},
		{"control character in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n", http.StatusBadRequest},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", http.StatusBadRequest},
		{"negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", http.StatusBadRequest},
		{"differing Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", http.StatusBadRequest},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", http.StatusNotImplemented},
		{"chunked HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", http.StatusBadRequest},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\na", http.StatusExpectationFailed},
		{"head over the limit", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"head never ending", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"too many fields", "GET / HTTP/1.1\r\nHost: x\r\n" + many + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, p.Addr())
			c.send(tt.head)
			resp, _ := c.response(http.MethodGet)
			if resp.StatusCode != tt.want || !resp.Close {
				t.Errorf("got %d (close %v), want %d with Connection: close", resp.StatusCode, resp.Close, tt.want)
			}
			if n, err := c.br.Read(make([]byte, 1)); err == nil {
				t.Errorf("connection still open: read %d bytes", n)
			}
		})
	}
	// A head just under the limit, and as many fields as it allows, pass.
	c := dialRaw(t, p.Addr())
	c.send("GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 3<<10) + "\r\n" + strings.Repeat("X-A: b\r\n", 30) + "\r\n")
	if resp, body := c.response(http.MethodGet); resp.StatusCode != http.StatusOK || body != "GET /ok " {
		t.Errorf("head within the limits: %d %q", resp.StatusCode, body)
	}
}

// TestProxy_HTTP10 checks HTTP/1.0's keep-alive rules: a connection
// closes after its response unless the client asked to keep it, and a
// response of unknown length ends with the connection.
func TestProxy_HTTP10(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			// No length, and more than the proxy holds back to find one.
			io.WriteString(w, strings.Repeat("x", 8<<10))
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "done")
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})

	c := dialRaw(t, p.Addr())
	c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body := c.response(http.MethodGet)
	if body != "done" || resp.Close || resp.Header.Get("Connection") != "keep-alive" || resp.ContentLength != 4 {
		t.Fatalf("keep-alive: %q, close %v, Connection %q, length %d", body, resp.Close, resp.Header.Get("Connection"), resp.ContentLength)
	}
	c.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body = c.response(http.MethodGet)
	if body != strings.Repeat("x", 8<<10)+"done" || !resp.Close || resp.ContentLength != -1 {
		t.Fatalf("unknown length: %d bytes, close %v, length %d; want the body to end with the connection", len(body), resp.Close, resp.ContentLength)
	}

	c = dialRaw(t, p.Addr())
	c.send("GET /a HTTP/1.0\r\n\r\n")
	if resp, body := c.response(http.MethodGet); body != "done" || !resp.Close {
		t.Fatalf("no keep-alive asked: %q, close %v", body, resp.Close)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Errorf("connection not closed after an HTTP/1.0 response: %v", err)
	}
}

// TestProxy_ClientGoneCancelsUpstream checks that a client that closes
// its connection while its request waits on the upstream cancels the
// upstream's request, whether the request had a body or not.
func TestProxy_ClientGoneCancelsUpstream(t *testing.T) {
	arrived := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(hangGuard):
		}
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	for _, req := range []string{
		"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		c := dialRaw(t, p.Addr())
		c.send(req)
		select {
		case <-arrived:
		case <-time.After(hangGuard):
			t.Fatalf("%q never reached the upstream", req)
		}
		c.c.Close()
		select {
		case <-cancelled:
		case <-time.After(hangGuard):
			t.Fatalf("%q: the upstream's request was not cancelled after the client left", req)
		}
	}
}

// TestProxy_ClientStaysWhileUpstreamIsSlow checks that watching for a
// client going away does not take the next request's bytes for it: a
// request pipelined behind a slow one is served after it.
func TestProxy_ClientStaysWhileUpstreamIsSlow(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, r.URL.Path)
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	c := dialRaw(t, p.Addr())
	c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-arrived
	// Released once the proxy has likely begun to watch the connection
	// (after its clientWatchDelay); the test holds whether it had or
	// not, and the next request is sent while it may be watching.
	time.AfterFunc(300*time.Millisecond, func() {
		c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		close(release)
	})
	for _, want := range []string{"/slow", "/next"} {
		if resp, body := c.response(http.MethodGet); resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
}

// TestProxy_SlowHead checks the read-header timeout against a client
// that sends its head a little at a time (a slowloris), on a new
// connection and on a kept-alive one: the connection closes, unanswered.
func TestProxy_SlowHead(t *testing.T) {
	const timeout = 200 * time.Millisecond
	p := startProxy(t, harness.Options{Upstream: serve(t, echoUpstream(), false).URL,
		Limits: harness.ConnLimits{ReadHeaderTimeout: timeout, IdleTimeout: time.Minute}})
	for _, kept := range []bool{false, true} {
		c := dialRaw(t, p.Addr())
		if kept {
			c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
			c.response(http.MethodGet)
		}
		c.send("GET /slow HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		done := make(chan struct{})
		go func() { // the drip: a field every tenth of the timeout
			defer close(done)
			for {
				time.Sleep(timeout / 10)
				if _, err := io.WriteString(c.c, "X-Drip: a\r\n"); err != nil {
					return
				}
			}
		}()
		// The proxy closes with the drip's bytes unread: a reset, which
		// a read may report.
		b, err := io.ReadAll(c.br)
		if len(b) > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("kept %v: got %q, %v; want the connection closed unanswered", kept, b, err)
		}
		if d := time.Since(start); d < timeout/2 {
			t.Errorf("kept %v: closed after %v, before the read-header timeout of %v", kept, d, timeout)
		}
		<-done
	}
}

// TestProxy_BodyFraming pipelines requests whose bodies the server must
// frame exactly: a body larger than any buffer, chunks with extensions
// and a trailer, and 100-continue, each followed at once by the next
// request.
func TestProxy_BodyFraming(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %d %s", r.URL.Path, len(b), r.Trailer.Get("X-Sum"))
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	c := dialRaw(t, p.Addr())
	c.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big +
		"POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"3;ext=1\r\nabc\r\n" + "10\r\n" + strings.Repeat("z", 16) + "\r\n0\r\nX-Sum: 19\r\n\r\n" +
		"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/big 1048576 ", "/chunks 19 19", "/after 0 "} {
		if resp, body := c.response(http.MethodPost); resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}

	c.send("POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, %v; want 100 Continue before the body is sent", line, err)
	}
	if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue ended with %q", blank)
	}
	c.send("hello")
	for {
		resp, body := c.response(http.MethodPost)
		if resp.StatusCode == http.StatusContinue {
			continue // the upstream's own, passed on
		}
		if resp.StatusCode != http.StatusOK || body != "/continue 5 " {
			t.Errorf("after 100 Continue: %d %q", resp.StatusCode, body)
		}
		break
	}
}

// TestProxy_BrokenChunks checks that a request body whose chunks are
// malformed ends the request and the connection, however far the
// upstream got.
func TestProxy_BrokenChunks(t *testing.T) {
	p := startProxy(t, harness.Options{Upstream: serve(t, echoUpstream(), false).URL})
	for _, chunks := range []string{"zz\r\nabc\r\n0\r\n\r\n", "3\r\nabcd\r\n0\r\n\r\n", "3\r\nabc\r\n0\r\nX-Bad\r\n\r\n"} {
		c := dialRaw(t, p.Addr())
		c.send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
			"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
		b, _ := io.ReadAll(c.br)
		if bytes.Contains(b, []byte("GET /never")) {
			t.Errorf("%q: the request after broken chunks was served: %q", chunks, b)
		}
		if bytes.Contains(b, []byte(" 200 OK")) && !bytes.Contains(b, []byte("Connection: close")) {
			t.Errorf("%q: answered 200 on a connection kept open: %q", chunks, b)
		}
	}
}

// TestProxy_UpgradeWithEarlyBytes sends a client's first bytes of the
// upgraded protocol with its upgrade request: they must reach the
// upstream after the 101, not be lost in the server's buffer.
func TestProxy_UpgradeWithEarlyBytes(t *testing.T) {
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		io.WriteString(conn, "echo: "+line)
	}), false)
	p := startProxy(t, harness.Options{Upstream: up.URL})
	c := dialRaw(t, p.Addr())
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly bird\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v, %v; want 101", resp, err)
	}
	if line, err := c.br.ReadString('\n'); line != "echo: early bird\n" {
		t.Errorf("got %q, %v; want the early bytes echoed", line, err)
	}
}

// TestProxy_ShutdownFinishesRequests checks Close's graceful part: a
// request in flight is answered, with Connection: close, and an idle
// connection is closed.
func TestProxy_ShutdownFinishesRequests(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "finished")
	}), false)
	p, err := harness.Start(harness.Options{Upstream: up.URL, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	idle := dialRaw(t, p.Addr())
	idle.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.response(http.MethodGet)
	busy := dialRaw(t, p.Addr())
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-arrived
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	if _, err := idle.br.ReadByte(); err == nil {
		t.Error("idle connection left open by Close")
	}
	close(release)
	resp, body := busy.response(http.MethodGet)
	if body != "finished" || !resp.Close {
		t.Errorf("request in flight at Close: %q, close %v; want it finished with Connection: close", body, resp.Close)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestProxy_AnsweredBeforeTheBody checks what becomes of a request body
// when a fault answers without reading it: a small one is dropped and
// the connection kept; one that never came (Expect: 100-continue, no 100
// sent) or one too large to drop closes the connection, which the
// response says.
func TestProxy_AnsweredBeforeTheBody(t *testing.T) {
	s, err := inject.ParseSpec("abort", []byte("status: 503"))
	if err != nil {
		t.Fatal(err)
	}
	board := inject.NewBoard(1, nil)
	if _, err := board.Activate("abort", s); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, harness.Options{Upstream: serve(t, echoUpstream(), false).URL, Board: board})
	tests := []struct {
		name, req string
		kept      bool
	}{
		{"small body", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", true},
		{"body never sent", "POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", false},
		{"body too large to drop", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nstart", false},
		{"chunked body", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, p.Addr())
			c.send(tt.req)
			resp, _ := c.response(http.MethodPost)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Close == tt.kept {
				t.Fatalf("got %d, close %v; want 503, close %v", resp.StatusCode, resp.Close, !tt.kept)
			}
			if !tt.kept {
				return
			}
			c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, _ := c.response(http.MethodGet); resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("next request on the kept connection: %d", resp.StatusCode)
			}
		})
	}
}

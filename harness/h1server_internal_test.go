package harness

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// startH1 serves h with the http proxy's own server on a loopback port,
// with net/http's for the connections it hands over, until the test ends.
func startH1(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	s := newH1Server(h, DefaultLimits(1), &http.Server{Handler: h, Protocols: &protos})
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// once sends req on a connection of its own and reads one answer.
func once(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Requests that last about as long as the server waits before it
// watches a client, one after another on keep-alive connections: the
// watch of one request can start as it ends, and the next request's
// must not start a second reader of the connection, which would take
// the bytes of the request after (a data race, and a connection hung
// until its idle timeout).
func TestH1Server_OneWatchAtATime(t *testing.T) {
	addr := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(clientWatchDelay - 200*time.Microsecond + time.Duration(len(r.URL.Path))*50*time.Microsecond)
		io.WriteString(w, r.URL.Path)
	}))
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 100 {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			br := bufio.NewReader(c)
			for j := range 8 {
				path := "/" + strings.Repeat("a", j)
				io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- path + ": " + err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != path {
					errs <- "got " + string(b) + ", want " + path
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// The server answers what net/http's answers where a body's framing or
// an expectation is unusual: a chunk's data must end in CRLF, not a bare
// LF (a front and a back that frame a body differently are a request
// smuggled), and an HTTP/1.0 client's Expect: 100-continue is ignored.
func TestH1Server_FramesAsNetHTTP(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Write(b)
	})
	ours := startH1(t, echo)
	std := httptest.NewServer(echo)
	defer std.Close()
	tests := []struct {
		name, req  string
		wantStatus int
	}{
		{"chunk data ended by a bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", http.StatusBadRequest},
		{"chunk data ended by CRLF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", http.StatusOK},
		{"HTTP/1.0 expecting 100-continue", "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := once(t, ours, tt.req)
			stdCode, stdBody := once(t, std.Listener.Addr().String(), tt.req)
			if code != tt.wantStatus || code != stdCode || body != stdBody {
				t.Errorf("answered %d %q; net/http %d %q; want %d", code, body, stdCode, stdBody, tt.wantStatus)
			}
		})
	}
}

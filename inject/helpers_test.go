package inject_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/quantity"
)

// hangGuard turns a hang into a failure. It is not a performance bound: the
// calls it guards return at once when they work.
const hangGuard = 5 * time.Second

// fixedDate is set by the upstream so that two responses can be compared
// byte for byte.
const fixedDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// upstream is the service behind the board: it answers with what it saw of
// the request and counts its calls.
type upstream struct{ calls atomic.Int64 }

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	b, _ := io.ReadAll(r.Body)
	h := w.Header()
	h.Set("Date", fixedDate)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Upstream", "served")
	h.Add("Set-Cookie", "a=1")
	h.Add("Set-Cookie", "b=2")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "%s %s?%s body=%q custom=%q", r.Method, r.URL.Path, r.URL.RawQuery, b, r.Header.Get("X-Custom"))
}

// serve starts h on 127.0.0.1 and closes it at test end.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// client returns an HTTP/1.1 client whose idle connections are closed at
// test end, so no transport goroutine outlives the test.
func client(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// rawExchange sends one request over a fresh connection and returns the
// response exactly as it came off the wire.
func rawExchange(t *testing.T, addr, request string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("write request: %v", err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return b
}

// rawRequests are sent through boards whose faults must not touch them.
var rawRequests = []struct{ name, raw string }{
	{"GET with query", "GET /api/orders?page=2 HTTP/1.1\r\nHost: example\r\nX-Custom: one\r\nConnection: close\r\n\r\n"},
	{"POST with body", "POST /api/orders HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"item\":42}"},
}

// returnsPromptly fails the test if f does not return within hangGuard.
func returnsPromptly(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("%s did not return", what)
	}
}

// cancelledRequest is a request whose client has already gone away.
func cancelledRequest(method, target string) *http.Request {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return httptest.NewRequestWithContext(ctx, method, target, nil)
}

func abortSpec(percent float64, m inject.Match) *inject.AbortSpec {
	m.Percent = quantity.Percent(percent)
	return &inject.AbortSpec{Match: m, Status: http.StatusServiceUnavailable}
}

func latencySpec(percent float64, delay time.Duration) *inject.LatencySpec {
	return &inject.LatencySpec{Match: inject.Match{Percent: quantity.Percent(percent)}, Delay: delay}
}

func activate(t *testing.T, b *inject.Board, id string, s inject.Spec) *inject.Activation {
	t.Helper()
	var problems []string
	s.Check(func(field, msg string) { problems = append(problems, field+": "+msg) })
	if len(problems) > 0 {
		t.Fatalf("spec for %s does not pass Check: %s", id, strings.Join(problems, "; "))
	}
	a, err := b.Activate(id, s)
	if err != nil {
		t.Fatalf("Activate(%q): %v", id, err)
	}
	return a
}

// hit serves one request through the board's middleware, in process, and
// reports whether a fault answered it.
func hit(h http.Handler, method, target string) (answered bool) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w.Header().Get(inject.FaultHeader) != ""
}

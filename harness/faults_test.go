package harness_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// bigBody answers with n bytes and a Content-Length, in 1 KiB writes.
func bigBody(n int) (http.Handler, []byte) {
	body := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(n))
		w.Header().Set("Cache-Control", "max-age=60")
		for p := body; len(p) > 0; p = p[min(len(p), 1024):] {
			if _, err := w.Write(p[:min(len(p), 1024)]); err != nil {
				return
			}
		}
	}), body
}

// TestProxy_ResponseFaults runs the faults that act on responses through
// the real reverse proxy, over HTTP/1.1 and h2c: what the client receives
// is what the fault promises.
func TestProxy_ResponseFaults(t *testing.T) {
	up, body := bigBody(20_000)
	tests := []struct {
		kind, params string
		check        func(t *testing.T, resp *http.Response, got []byte, err error, elapsed time.Duration)
	}{
		{"truncate", "bytes: 1000", func(t *testing.T, resp *http.Response, got []byte, err error, _ time.Duration) {
			if err != nil || !bytes.Equal(got, body[:1000]) {
				t.Errorf("%d bytes, err %v; want the first 1000 and a clean end", len(got), err)
			}
		}},
		{"reset", "after: 4KiB", func(t *testing.T, _ *http.Response, got []byte, err error, _ time.Duration) {
			if err == nil || len(got) > 4096 {
				t.Errorf("%d bytes, err %v; want at most 4096 then an error", len(got), err)
			}
		}},
		{"bandwidth", "rate: 100KB", func(t *testing.T, _ *http.Response, got []byte, err error, elapsed time.Duration) {
			if err != nil || len(got) != len(body) || elapsed < 180*time.Millisecond {
				t.Errorf("%d bytes in %v, err %v; want all 20 kB in about 200ms", len(got), elapsed, err)
			}
		}},
		{"corrupt", "rate: 100%", func(t *testing.T, _ *http.Response, got []byte, err error, _ time.Duration) {
			if err != nil || len(got) != len(body) {
				t.Fatalf("%d bytes, err %v", len(got), err)
			}
			for i := range got {
				if got[i] == body[i] {
					t.Fatalf("byte %d unchanged at a 100%% corrupt rate", i)
				}
			}
		}},
		{"header", "remove: [Cache-Control]\nset: {X-Injected: yes}", func(t *testing.T, resp *http.Response, got []byte, err error, _ time.Duration) {
			if resp.Header.Get("Cache-Control") != "" || resp.Header.Get("X-Injected") != "yes" || !bytes.Equal(got, body) {
				t.Errorf("headers %v, %d bytes, err %v", resp.Header, len(got), err)
			}
		}},
	}
	for _, h2c := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s h2c=%v", tt.kind, h2c), func(t *testing.T) {
				s, err := inject.ParseSpec(tt.kind, []byte(tt.params))
				if err != nil {
					t.Fatal(err)
				}
				board := inject.NewBoard(1, nil)
				a, err := board.Activate(tt.kind, s)
				if err != nil {
					t.Fatal(err)
				}
				p := startProxy(t, harness.Options{Upstream: serve(t, up, false).URL, Board: board})
				start := time.Now()
				resp, err := newClient(t, h2c).Get(p.URL() + "/api/export")
				if err != nil {
					if tt.kind == "reset" {
						return // reset before the headers were read: also a reset
					}
					t.Fatal(err)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				tt.check(t, resp, got, rerr, time.Since(start))
				if st := a.Stats(); st.Injected != 1 {
					t.Errorf("stats = %+v, want one injection", st)
				}
			})
		}
	}
}

// A reset fault closes the client's connection with RST, through the
// proxy's own connections as on a bare one: the client reads "connection
// reset", not an end of file.
func TestProxy_ResetSendsRST(t *testing.T) {
	up, _ := bigBody(20_000)
	board := inject.NewBoard(1, nil)
	s, err := inject.ParseSpec("reset", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := board.Activate("reset", s); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, harness.Options{Upstream: serve(t, up, false).URL, Board: board})
	c, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, "GET /api/export HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read error = %v, want connection reset by peer", err)
	}
}

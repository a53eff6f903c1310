package harness_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resctl/resctl/inject"
)

// tcpMinimal holds the least configuration each connection kind needs.
// Delays are long, so a fault that ignores a closing connection hangs the
// suite instead of passing by luck. A kind missing here fails the suite.
var tcpMinimal = map[string]string{
	"latency":    "delay: 1h, direction: both",
	"bandwidth":  "rate: 1, direction: both",
	"blackhole":  "",
	"refuse":     "",
	"reset_peer": "timeout: 1h",
	"slow_close": "delay: 1h, direction: both",
	"slicer":     "average_size: 1, size_variation: 0, delay: 1h, direction: both",
	"limit_data": "bytes: 0, direction: both",
}

func tcpConformingSpec(t *testing.T, kind string, percent float64) inject.Spec {
	t.Helper()
	params, ok := tcpMinimal[kind]
	if !ok {
		t.Fatalf("tcp kind %q has no minimal parameters in the conformance suite: add them", kind)
	}
	if params != "" {
		params += ", "
	}
	s, err := inject.ParseSpecFor(inject.LayerTCP, kind, fmt.Appendf(nil, "{%spercent: %v}", params, percent))
	if err != nil {
		t.Fatalf("tcp kind %q: %v", kind, err)
	}
	return s
}

// TestTCPConformance runs every connection fault kind through what each
// must do: leave bytes untouched at 0%, let the proxy close promptly while
// the fault holds connections, and leave no goroutine behind.
func TestTCPConformance(t *testing.T) {
	for _, kind := range inject.KindsFor(inject.LayerTCP) {
		t.Run(kind, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

			t.Run("zero percent leaves bytes identical", func(t *testing.T) {
				b := inject.NewBoard(1, nil)
				a, err := b.Activate(kind, tcpConformingSpec(t, kind, 0))
				if err != nil {
					t.Fatal(err)
				}
				p := startTCP(t, tcpServer(t, echo), b)
				msg := bytes.Repeat([]byte("conformance\x00\xff"), 10_000)
				for range 2 {
					c := dialTCP(t, p.Addr())
					got, err := roundTrip(t, c, msg)
					if err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("echo through a 0%% %s: %d bytes, err %v", kind, len(got), err)
					}
					_ = c.CloseWrite()
					if rest, _ := io.ReadAll(c); len(rest) != 0 {
						t.Errorf("extra bytes after the echo: %q", rest)
					}
				}
				if st := a.Stats(); st.Matched != 2 || st.Injected != 0 {
					t.Errorf("stats = %+v, want 2 connections matched and none injected", st)
				}
			})

			t.Run("close ends held connections", func(t *testing.T) {
				b := inject.NewBoard(1, nil)
				a, err := b.Activate(kind, tcpConformingSpec(t, kind, 100))
				if err != nil {
					t.Fatal(err)
				}
				p := startTCP(t, tcpServer(t, echo), b)
				// A refused connection may fail to dial at all.
				if nc, err := net.DialTimeout("tcp", p.Addr(), hangGuard); err == nil {
					t.Cleanup(func() { nc.Close() })
					_, _ = nc.Write([]byte("hold me"))
					_ = nc.(*net.TCPConn).CloseWrite()
				}
				// The fault has taken hold of the connection.
				for deadline := time.Now().Add(hangGuard); a.Stats().Injected == 0; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("stats = %+v: the %s fault never took the connection", a.Stats(), kind)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
				defer cancel()
				if err := p.Close(ctx); err != nil {
					t.Fatalf("Close with a %s fault holding a connection: %v", kind, err)
				}
			})
		})
	}
}

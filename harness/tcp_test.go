package harness_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// tcpServer is a loopback upstream that runs handle for every connection
// and waits for them all at test end.
func tcpServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { defer c.Close(); handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echo copies what it reads back until the client closes its side.
func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// sendAll writes n bytes and closes.
func sendAll(body []byte) func(net.Conn) {
	return func(c net.Conn) { _, _ = c.Write(body) }
}

func startTCP(t testing.TB, upstream string, b *inject.Board) *harness.TCPProxy {
	t.Helper()
	p, err := harness.StartTCP(harness.TCPOptions{Upstream: upstream, Listen: "127.0.0.1:0", Board: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func dialTCP(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	return c.(*net.TCPConn)
}

func tcpFault(t testing.TB, b *inject.Board, kind, params string) *inject.Activation {
	t.Helper()
	s, err := inject.ParseSpecFor(inject.LayerTCP, kind, []byte(params))
	if err != nil {
		t.Fatal(err)
	}
	a, err := b.Activate(kind, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// roundTrip writes msg and reads as many bytes back.
func roundTrip(t testing.TB, c net.Conn, msg []byte) ([]byte, error) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	return got, err
}

func TestTCPProxy_Forwards(t *testing.T) {
	p := startTCP(t, tcpServer(t, echo), nil)
	c := dialTCP(t, p.Addr())
	for _, msg := range [][]byte{[]byte("ping"), bytes.Repeat([]byte("x"), 1<<20)} {
		got, err := roundTrip(t, c, msg)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes: %d bytes back, err %v", len(msg), len(got), err)
		}
	}
	// Half-close passes through: the echo ends when the client's side does.
	_ = c.CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("after CloseWrite: %q, %v; want a clean EOF", rest, err)
	}
	if st := p.Stats(); st.Accepted != 1 || st.BytesUp != 1<<20+4 || st.BytesDown != 1<<20+4 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTCPProxy_Latency(t *testing.T) {
	const delay = 50 * time.Millisecond
	b := inject.NewBoard(1, nil)
	p := startTCP(t, tcpServer(t, echo), b)
	c := dialTCP(t, p.Addr())
	base := time.Now()
	if _, err := roundTrip(t, c, []byte("a")); err != nil {
		t.Fatal(err)
	}
	plain := time.Since(base)
	a := tcpFault(t, b, "latency", "{delay: 50ms, direction: both}")
	start := time.Now()
	if _, err := roundTrip(t, c, []byte("b")); err != nil {
		t.Fatal(err)
	}
	// Both directions are delayed: at least two delays on the round trip.
	if got := time.Since(start); got < 2*delay || got > 2*delay+plain+time.Second {
		t.Errorf("round trip %v with %v each way, want about %v", got, delay, 2*delay)
	}
	if st := a.Stats(); st.Matched != 1 || st.Injected != 1 {
		t.Errorf("stats = %+v, want the open connection counted once", st)
	}
}

func TestTCPProxy_Bandwidth(t *testing.T) {
	const size, rate = 100_000, 400_000 // 0.25 s
	body := bytes.Repeat([]byte("b"), size)
	b := inject.NewBoard(1, nil)
	tcpFault(t, b, "bandwidth", fmt.Sprintf("rate: %d", rate))
	p := startTCP(t, tcpServer(t, sendAll(body)), b)
	c := dialTCP(t, p.Addr())
	start := time.Now()
	got, err := io.ReadAll(c)
	elapsed := time.Since(start)
	if err != nil || len(got) != size {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	want := time.Duration(float64(size) / rate * float64(time.Second))
	if elapsed < want*9/10 || elapsed > want*5 {
		t.Errorf("%d bytes at %d B/s took %v, want about %v", size, rate, elapsed, want)
	}
}

func TestTCPProxy_BlackholeSilencesOpenConnections(t *testing.T) {
	b := inject.NewBoard(1, nil)
	p := startTCP(t, tcpServer(t, echo), b)
	c := dialTCP(t, p.Addr())
	if _, err := roundTrip(t, c, []byte("before")); err != nil {
		t.Fatal(err)
	}
	tcpFault(t, b, "blackhole", "")
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if got, err := roundTrip(t, c, []byte("during")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("during the blackhole: %q, %v; want silence", got, err)
	}
	// A new connection is accepted and goes silent too.
	c2 := dialTCP(t, p.Addr())
	_ = c2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := roundTrip(t, c2, []byte("new")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection during the blackhole: %v; want silence", err)
	}
	b.Deactivate("blackhole")
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	if got, err := roundTrip(t, c, []byte("after")); err != nil || string(got) != "after" {
		t.Errorf("after the blackhole: %q, %v; want the echo back", got, err)
	}
}

func TestTCPProxy_BlackholeTimeoutCloses(t *testing.T) {
	b := inject.NewBoard(1, nil)
	tcpFault(t, b, "blackhole", "timeout: 50ms")
	p := startTCP(t, tcpServer(t, echo), b)
	c := dialTCP(t, p.Addr())
	_, _ = c.Write([]byte("x"))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read = %v, want the connection closed", err)
	}
}

func TestTCPProxy_Refuse(t *testing.T) {
	b := inject.NewBoard(1, nil)
	p := startTCP(t, tcpServer(t, echo), b)
	open := dialTCP(t, p.Addr())
	if _, err := roundTrip(t, open, []byte("1")); err != nil {
		t.Fatal(err)
	}
	a := tcpFault(t, b, "refuse", "")
	// The reset may reach the client during the dial or at the first read.
	if c, err := net.DialTimeout("tcp", p.Addr(), hangGuard); err == nil {
		_ = c.SetDeadline(time.Now().Add(hangGuard))
		if got, err := roundTrip(t, c, []byte("x")); err == nil {
			t.Errorf("a refused connection echoed %q", got)
		}
		c.Close()
	}
	if got, err := roundTrip(t, open, []byte("2")); err != nil || string(got) != "2" {
		t.Errorf("a connection open before refuse: %q, %v; want it untouched", got, err)
	}
	if st := a.Stats(); st.Injected != 1 || st.Matched != 1 {
		t.Errorf("stats = %+v, want one connection refused", st)
	}
	if st := p.Stats(); st.Refused != 1 {
		t.Errorf("proxy stats = %+v", st)
	}
}

func TestTCPProxy_ResetPeer(t *testing.T) {
	b := inject.NewBoard(1, nil)
	tcpFault(t, b, "reset_peer", "timeout: 20ms")
	p := startTCP(t, tcpServer(t, echo), b)
	c := dialTCP(t, p.Addr())
	_, _ = c.Write([]byte("x"))
	buf := make([]byte, 10)
	var err error
	for err == nil {
		_, err = c.Read(buf)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read error = %v, want connection reset by peer", err)
	}
}

func TestTCPProxy_SlowClose(t *testing.T) {
	const delay = 100 * time.Millisecond
	b := inject.NewBoard(1, nil)
	tcpFault(t, b, "slow_close", "delay: 100ms")
	p := startTCP(t, tcpServer(t, sendAll([]byte("bye"))), b)
	// From before the dial: the proxy cannot see the upstream's close
	// before the client's connection made it dial the upstream, so the
	// delay runs after this instant, however late the client's goroutine
	// gets back to it on a busy machine.
	start := time.Now()
	c := dialTCP(t, p.Addr())
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("read %q, %v", got, err)
	}
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("the close arrived after %v, want at least %v", elapsed, delay)
	}
}

func TestTCPProxy_Slicer(t *testing.T) {
	body := bytes.Repeat([]byte("s"), 2000)
	b := inject.NewBoard(1, nil)
	tcpFault(t, b, "slicer", "{average_size: 10, size_variation: 5, delay: 1ms}")
	p := startTCP(t, tcpServer(t, sendAll(body)), b)
	c := dialTCP(t, p.Addr())
	var total, reads, biggest int
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		total += n
		if n > 0 {
			reads++
			biggest = max(biggest, n)
		}
		if err != nil {
			break
		}
	}
	if total != len(body) {
		t.Fatalf("read %d bytes, want %d", total, len(body))
	}
	// Slices of 5..15 bytes a millisecond apart: the reader sees many
	// small reads (TCP may still merge a few).
	if reads < len(body)/15/2 || biggest > 400 {
		t.Errorf("%d reads, biggest %d bytes; want small slices", reads, biggest)
	}
}

func TestTCPProxy_LimitData(t *testing.T) {
	body := bytes.Repeat([]byte("l"), 10_000)
	b := inject.NewBoard(1, nil)
	tcpFault(t, b, "limit_data", "bytes: 1234")
	p := startTCP(t, tcpServer(t, sendAll(body)), b)
	c := dialTCP(t, p.Addr())
	got, _ := io.ReadAll(c)
	if len(got) != 1234 {
		t.Errorf("read %d bytes, want the limit of 1234", len(got))
	}
}

func TestTCPProxy_Upstream(t *testing.T) {
	a := tcpServer(t, sendAll([]byte("A")))
	bAddr := tcpServer(t, sendAll([]byte("B")))
	p := startTCP(t, a, nil)
	read := func() string {
		got, _ := io.ReadAll(dialTCP(t, p.Addr()))
		return string(got)
	}
	if got := read(); got != "A" {
		t.Errorf("got %q from upstream A", got)
	}
	if err := p.SetUpstream(bAddr); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "B" {
		t.Errorf("got %q after switching to B", got)
	}
	if err := p.SetUpstream("no-port"); err == nil {
		t.Error("SetUpstream accepted an address without a port")
	}
}

func TestTCPProxy_Disable(t *testing.T) {
	p := startTCP(t, tcpServer(t, echo), nil)
	c := dialTCP(t, p.Addr())
	if _, err := roundTrip(t, c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := p.SetEnabled(false); err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Error("Enabled after SetEnabled(false)")
	}
	if _, err := roundTrip(t, c, []byte("y")); err == nil {
		t.Error("an open connection survived the proxy going down")
	}
	if nc, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		nc.Close()
		t.Error("a disabled proxy accepted a connection")
	}
	if err := p.SetEnabled(true); err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(t, dialTCP(t, p.Addr()), []byte("z")); err != nil || string(got) != "z" {
		t.Errorf("after enabling again: %q, %v", got, err)
	}
}

func TestStartTCP_Errors(t *testing.T) {
	if _, err := harness.StartTCP(harness.TCPOptions{Upstream: "nohost", Listen: "127.0.0.1:0"}); err == nil {
		t.Error("StartTCP accepted an upstream without a port")
	}
	if _, err := harness.StartTCP(harness.TCPOptions{Upstream: "127.0.0.1:1", Listen: "256.0.0.1:0"}); err == nil {
		t.Error("StartTCP accepted a bad listen address")
	}
}

// TestTCPProxy_TTLEndsBlackhole checks that a connection fault past its TTL
// stops acting on an open connection, on the board's clock.
func TestTCPProxy_TTLEndsBlackhole(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := inject.NewBoard(1, clk.now)
	p := startTCP(t, tcpServer(t, echo), b)
	c := dialTCP(t, p.Addr())
	s, err := inject.ParseSpecFor(inject.LayerTCP, "blackhole", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ActivateWith("partition", s, inject.ActivateOptions{TTL: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := roundTrip(t, c, []byte("lost")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("during the blackhole: %v, want silence", err)
	}
	clk.advance(10 * time.Second)
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	if got, err := roundTrip(t, c, []byte("back")); err != nil || string(got) != "back" {
		t.Errorf("after the TTL: %q, %v; want the echo", got, err)
	}
}

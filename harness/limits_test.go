package harness_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// floodGuard bounds every wait of the connection tests; it fires only on
// a hang.
const floodGuard = 30 * time.Second

// waitClosed reads from c until the proxy closes it (EOF or a reset) and
// returns when that was; a read that times out at the guard fails.
func waitClosed(t *testing.T, c net.Conn) time.Time {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(floodGuard))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %s still open after %v", c.LocalAddr(), floodGuard)
	}
	return time.Now()
}

// waitRefused connects to addr and waits for the proxy to close the
// connection; the reset may reach the dial itself.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, floodGuard)
	if errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitClosed(t, c)
}

// scrapeWait scrapes p's /metrics until series has the value want, or
// fails at the guard.
func scrapeWait(t *testing.T, p *harness.Proxy, series string, want float64) map[string]float64 {
	t.Helper()
	c := newClient(t, false) // one connection: the admin listener has a cap too
	deadline := time.Now().Add(floodGuard)
	for {
		r := get(t, c, p.AdminURL()+"/metrics")
		if r.status != http.StatusOK {
			t.Fatalf("/metrics: %d", r.status)
		}
		m := parseMetrics(t, strings.NewReader(r.body))
		if m[series] == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, m[series], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProxy_ConnectionCap floods a proxy capped at 20 connections with 60
// idle ones: the 40 over the cap are closed at once and counted, the
// admin API keeps answering throughout, and once an idle connection goes
// a normal request goes through.
func TestProxy_ConnectionCap(t *testing.T) {
	const capConns, flood = 20, 60
	admin := harness.NewAdmin(harness.AdminOptions{})
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	up := serve(t, &recorder{}, false)
	p := startProxy(t, harness.Options{Upstream: up.URL, Admin: admin,
		Limits: harness.ConnLimits{MaxConns: capConns, IdleTimeout: time.Hour, ReadHeaderTimeout: time.Hour}})
	if err := admin.Add("web", harness.ProtocolHTTP, p); err != nil {
		t.Fatal(err)
	}
	addr := p.Addr()

	held := make([]net.Conn, 0, capConns)
	for range capConns {
		held = append(held, dialTCP(t, addr))
	}
	scrapeWait(t, p, "resctl_proxy_connections", capConns)
	for i := capConns; i < flood; i++ {
		waitRefused(t, addr)
	}
	m := scrapeWait(t, p, "resctl_proxy_connections_over_limit_total", flood-capConns)
	if m["resctl_proxy_connections"] != capConns || m["resctl_proxy_connections_max"] != capConns {
		t.Errorf("open %v, max %v; want %d and %d", m["resctl_proxy_connections"], m["resctl_proxy_connections_max"], capConns, capConns)
	}
	// The admin API answers while the proxy is full.
	if r := get(t, newClient(t, false), p.AdminURL()+"/api/v1/proxies/web"); r.status != http.StatusOK {
		t.Fatalf("admin API during the flood: %d %s", r.status, r.body)
	}
	// An idle connection goes; a client's request gets its place.
	held[0].Close()
	scrapeWait(t, p, "resctl_proxy_connections", capConns-1)
	if r := get(t, newClient(t, false), p.URL()+"/orders"); r.status != http.StatusCreated {
		t.Fatalf("request once a place is free: %d %s", r.status, r.body)
	}
}

// TestProxy_IdleAndHeaderTimeouts checks that connections idle after a
// request (HTTP/1.1 and h2c) and connections that never send one are
// closed once their timeouts pass, and not at once.
func TestProxy_IdleAndHeaderTimeouts(t *testing.T) {
	const timeout = 200 * time.Millisecond
	up := serve(t, &recorder{}, false)
	p := startProxy(t, harness.Options{Upstream: up.URL,
		Limits: harness.ConnLimits{MaxConns: 20, IdleTimeout: timeout, ReadHeaderTimeout: timeout}})

	t.Run("keep-alive", func(t *testing.T) {
		c := dialTCP(t, p.Addr())
		if _, err := io.WriteString(c, "GET /orders HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		idle := time.Now()
		if closed := waitClosed(t, c); closed.Sub(idle) < timeout/2 {
			t.Errorf("closed %v after its response, before the idle timeout of %v", closed.Sub(idle), timeout)
		}
	})
	t.Run("silent", func(t *testing.T) {
		dialed := time.Now()
		c := dialTCP(t, p.Addr())
		if closed := waitClosed(t, c); closed.Sub(dialed) < timeout/2 {
			t.Errorf("closed %v after it opened, before the read-header timeout of %v", closed.Sub(dialed), timeout)
		}
	})
	// The h2c client keeps its connection until the test ends.
	if r := get(t, newClient(t, true), p.URL()+"/orders"); r.status != http.StatusCreated || r.proto != 2 {
		t.Fatalf("h2c request: %d over HTTP/%d", r.status, r.proto)
	}
	// Every connection, the h2c client's idle one too, is closed by the
	// proxy; none was over the cap.
	m := scrapeWait(t, p, "resctl_proxy_connections", 0)
	if n := m["resctl_proxy_connections_over_limit_total"]; n != 0 {
		t.Errorf("%v connections counted over the cap", n)
	}
}

// TestTCPProxy_ConnectionCap fills a tcp proxy capped at 5: the sixth
// connection is closed at once and counted, and once one goes, a new one
// is carried.
func TestTCPProxy_ConnectionCap(t *testing.T) {
	const capConns = 5
	p, err := harness.StartTCP(harness.TCPOptions{Upstream: tcpServer(t, echo), Listen: "127.0.0.1:0", Board: inject.NewBoard(1, nil), MaxConns: capConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	var held []net.Conn
	for range capConns {
		c := dialTCP(t, p.Addr())
		if _, err := roundTrip(t, c, []byte("ping")); err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
		held = append(held, c)
	}
	waitRefused(t, p.Addr())
	if st := p.Stats(); st.OverLimit != 1 || st.Active != capConns {
		t.Fatalf("stats %+v, want 1 over the limit and %d active", st, capConns)
	}
	held[0].Close()
	deadline := time.Now().Add(floodGuard)
	for p.Stats().Active == capConns {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection was never released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := roundTrip(t, dialTCP(t, p.Addr()), []byte("ping")); err != nil {
		t.Fatalf("connection once a place is free: %v", err)
	}
}

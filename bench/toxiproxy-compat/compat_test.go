package compat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/resctl/resctl/harness"
)

// echoServer echoes every connection on loopback until the test ends.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// resctlAdmin serves resctl's admin API on loopback and returns a
// Toxiproxy client pointed at it.
func resctlAdmin(t testing.TB) *toxiproxy.Client {
	t.Helper()
	admin := harness.NewAdmin(harness.AdminOptions{})
	srv, err := harness.ListenAdmin("127.0.0.1:0", admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = admin.Close(ctx)
		_ = srv.Close(ctx)
	})
	return toxiproxy.NewClient(srv.URL())
}

func roundTrip(t testing.TB, addr string, msg string) (time.Duration, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(c, msg); err != nil {
		return 0, err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return 0, err
	}
	if string(got) != msg {
		return 0, errors.New("echo differs: " + string(got))
	}
	return time.Since(start), nil
}

// TestToxiproxyClient goes through the official client's whole surface
// against resctl: proxies, toxics, enable/disable, populate, reset, errors.
func TestToxiproxyClient(t *testing.T) {
	client := resctlAdmin(t)
	upstream := echoServer(t)

	proxy, err := client.CreateProxy("redis", "127.0.0.1:0", upstream)
	if err != nil {
		t.Fatal(err)
	}
	if !proxy.Enabled || proxy.Upstream != upstream || proxy.Listen == "127.0.0.1:0" {
		t.Fatalf("created proxy = %+v", proxy)
	}
	if _, err := roundTrip(t, proxy.Listen, "ping"); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if _, err := client.CreateProxy("redis", "127.0.0.1:0", upstream); !isAPIError(err, http.StatusConflict) {
		t.Errorf("duplicate proxy: %v, want a 409", err)
	}

	tox, err := proxy.AddToxic("slow", "latency", "downstream", 1, toxiproxy.Attributes{"latency": 100, "jitter": 10})
	if err != nil {
		t.Fatal(err)
	}
	if tox.Name != "slow" || tox.Type != "latency" || tox.Stream != "downstream" || tox.Toxicity != 1 {
		t.Errorf("toxic = %+v", tox)
	}
	if d, err := roundTrip(t, proxy.Listen, "ping"); err != nil || d < 90*time.Millisecond {
		t.Errorf("round trip with 100ms±10ms latency: %v, %v", d, err)
	}
	toxics, err := proxy.Toxics()
	if err != nil || len(toxics) != 1 || toxics[0].Attributes["latency"] != float64(100) {
		t.Errorf("toxics = %+v, %v", toxics, err)
	}
	if _, err := proxy.UpdateToxic("slow", 1, toxiproxy.Attributes{"latency": 10, "jitter": 0}); err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(t, proxy.Listen, "ping"); err != nil || d > 90*time.Millisecond {
		t.Errorf("after lowering the latency to 10ms: %v, %v", d, err)
	}
	if _, err := proxy.AddToxic("slow", "latency", "", 1, toxiproxy.Attributes{"latency": 1}); !isAPIError(err, http.StatusConflict) {
		t.Errorf("duplicate toxic: %v, want a 409", err)
	}
	if _, err := proxy.AddToxic("", "nonsense", "", 1, nil); !isAPIError(err, http.StatusBadRequest) {
		t.Errorf("unknown toxic type: %v, want a 400", err)
	}
	if err := proxy.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	if err := proxy.RemoveToxic("slow"); !isAPIError(err, http.StatusNotFound) {
		t.Errorf("removing a removed toxic: %v, want a 404", err)
	}

	// timeout is resctl's blackhole: silence, then the connection closes.
	if _, err := proxy.AddToxic("", "timeout", "upstream", 1, toxiproxy.Attributes{"timeout": 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, proxy.Listen, "ping"); err == nil {
		t.Error("a round trip got through a timeout toxic")
	}
	if err := proxy.RemoveToxic("timeout_upstream"); err != nil {
		t.Fatal(err)
	}

	// Down: the proxy stops listening; up again on the same address.
	if err := proxy.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, proxy.Listen, "ping"); err == nil {
		t.Error("a disabled proxy answered")
	}
	if err := proxy.Enable(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, proxy.Listen, "ping"); err != nil {
		t.Errorf("after enabling: %v", err)
	}

	populated, err := client.Populate([]toxiproxy.Proxy{
		{Name: "redis", Listen: proxy.Listen, Upstream: upstream, Enabled: true},
		{Name: "pg", Listen: "127.0.0.1:0", Upstream: upstream, Enabled: true},
	})
	if err != nil || len(populated) != 2 {
		t.Fatalf("populate = %+v, %v", populated, err)
	}
	if _, err := populated[1].AddToxic("", "bandwidth", "", 0.5, toxiproxy.Attributes{"rate": 100}); err != nil {
		t.Fatal(err)
	}
	all, err := client.Proxies()
	if err != nil || len(all) != 2 || len(all["pg"].ActiveToxics) != 1 {
		t.Fatalf("proxies = %+v, %v", all, err)
	}
	if err := client.ResetState(); err != nil {
		t.Fatal(err)
	}
	if pg, err := client.Proxy("pg"); err != nil || len(pg.ActiveToxics) != 0 || !pg.Enabled {
		t.Errorf("after reset: %+v, %v", pg, err)
	}
	if err := all["pg"].Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Proxy("pg"); !isAPIError(err, http.StatusNotFound) {
		t.Errorf("deleted proxy: %v, want a 404", err)
	}
}

// isAPIError reports whether the client refused with status. The client
// formats the status into its message rather than wrapping an error type.
func isAPIError(err error, status int) bool {
	return err != nil && strings.Contains(err.Error(), fmt.Sprintf("HTTP %d:", status))
}

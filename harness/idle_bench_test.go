package harness_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
)

// idleConns is how many idle connections each measure holds.
const idleConns = 500

// memInUse is the heap and stack the process holds after a collection.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// measureIdle opens idleConns connections to addr, readies each with
// ready, waits for the proxy to settle, and reports the memory each one
// costs the process — the proxy's share and the benchmark's own two small
// ends (client and upstream socket), which are the same for any proxy.
func measureIdle(b *testing.B, addr string, ready func(net.Conn)) {
	for b.Loop() {
		before := memInUse()
		conns := make([]net.Conn, 0, idleConns)
		for range idleConns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			ready(c)
			conns = append(conns, c)
		}
		time.Sleep(200 * time.Millisecond) // the proxy's goroutines reach their reads
		b.ReportMetric(float64(memInUse()-before)/idleConns, "bytes/idle-conn")
		for _, c := range conns {
			c.Close()
		}
	}
}

// BenchmarkTCPProxy_IdleConnMemory: what an open, silent connection
// through a tcp proxy costs.
func BenchmarkTCPProxy_IdleConnMemory(b *testing.B) {
	up := tcpServer(b, func(c net.Conn) { _, _ = c.Read(make([]byte, 1)) })
	p := startTCP(b, up, nil)
	measureIdle(b, p.Addr(), func(net.Conn) {})
}

// BenchmarkProxy_IdleConnMemory: what a keep-alive connection idle after
// one request through an http proxy costs.
func BenchmarkProxy_IdleConnMemory(b *testing.B) {
	up := serve(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), false)
	p := startProxy(b, harness.Options{Upstream: up.URL, Limits: harness.ConnLimits{MaxConns: 4 * idleConns}})
	measureIdle(b, p.Addr(), func(c net.Conn) {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
}

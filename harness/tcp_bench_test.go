package harness_test

import (
	"io"
	"net"
	"testing"
	"time"
)

// bulkSize is what one bulk transfer moves.
const bulkSize = 256 << 20

// zeros is a reader of endless zero bytes, written in large chunks.
var zeros = make([]byte, 1<<20)

// bulkServer sends bulkSize bytes to every connection and closes it.
func bulkServer(c net.Conn) {
	left := bulkSize
	for left > 0 {
		n, err := c.Write(zeros[:min(left, len(zeros))])
		if err != nil {
			return
		}
		left -= n
	}
}

// bulk reads one transfer from addr and returns how long it took.
func bulk(b *testing.B, addr string) time.Duration {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n, err := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
	if err != nil || n != bulkSize {
		b.Fatalf("read %d bytes, err %v", n, err)
	}
	return time.Since(start)
}

// BenchmarkTCPProxy_Bulk compares a bulk transfer through the tcp proxy,
// with no fault active, with the same transfer over a direct loopback
// connection in the same run: proxy_ratio is the proxy's throughput as a
// share of the direct one (the target is at least 0.9).
func BenchmarkTCPProxy_Bulk(b *testing.B) {
	addr := tcpServer(b, bulkServer)
	p := startTCP(b, addr, nil)
	var direct, proxied time.Duration
	b.SetBytes(bulkSize)
	for b.Loop() {
		direct += bulk(b, addr)
		proxied += bulk(b, p.Addr())
	}
	mb := func(d time.Duration) float64 { return float64(b.N) * bulkSize / d.Seconds() / 1e6 }
	b.ReportMetric(mb(direct), "direct_MB/s")
	b.ReportMetric(mb(proxied), "proxy_MB/s")
	b.ReportMetric(direct.Seconds()/proxied.Seconds(), "proxy_ratio")
}

// BenchmarkTCPProxy_RequestResponse measures small request/response round
// trips over one kept-alive connection through the proxy.
func BenchmarkTCPProxy_RequestResponse(b *testing.B) {
	p := startTCP(b, tcpServer(b, echo), nil)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, got := []byte("GET /api/orders HTTP/1.1\r\n\r\n"), make([]byte, 64)
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got[:len(msg)]); err != nil {
			b.Fatal(err)
		}
	}
}

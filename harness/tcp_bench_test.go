package harness_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/quantity"
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

// BenchmarkTCPProxy_BulkOverLink is BenchmarkTCPProxy_Bulk where the
// upstream is across a network link of a given speed rather than on
// loopback: the link a scenario's network faults use (netem.Link, a veth
// link between two namespaces and a relay), shaped with tbf. The direct
// transfer crosses the link; the proxied one goes to the proxy on
// loopback, which crosses the same link. A proxy sits in front of
// services reached over a network, and this is where its throughput is
// measured against the network's. Needs root and network namespaces;
// skipped elsewhere.
func BenchmarkTCPProxy_BulkOverLink(b *testing.B) {
	if err := netem.Supported(); err != nil {
		b.Skipf("skipping: %v", err)
	}
	for _, link := range []struct {
		name string
		rate quantity.Bytes
		size int
	}{
		{"1Gbit", 125_000_000, 64 << 20},
		{"10Gbit", 1_250_000_000, 256 << 20},
	} {
		b.Run(link.name, func(b *testing.B) {
			addr := tcpServer(b, func(c net.Conn) {
				for left := link.size; left > 0; {
					n, err := c.Write(zeros[:min(left, len(zeros))])
					if err != nil {
						return
					}
					left -= n
				}
			})
			l, err := netem.NewLink(b.Context(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if err := l.Apply(b.Context(), &netem.Spec{Faults: netem.Faults{Rate: link.rate}}); err != nil {
				b.Fatal(err)
			}
			p, err := harness.StartTCP(harness.TCPOptions{Upstream: addr, Listen: "127.0.0.1:0", Dial: l.DialContext})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			read := func(dial func() (net.Conn, error)) time.Duration {
				start := time.Now()
				c, err := dial()
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				n, err := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
				if err != nil || n != int64(link.size) {
					b.Fatalf("read %d bytes, err %v", n, err)
				}
				return time.Since(start)
			}
			var direct, proxied time.Duration
			b.SetBytes(int64(link.size))
			for b.Loop() {
				direct += read(func() (net.Conn, error) { return l.DialContext(b.Context(), "tcp", addr) })
				proxied += read(func() (net.Conn, error) { return net.Dial("tcp", p.Addr()) })
			}
			mb := func(d time.Duration) float64 { return float64(b.N) * float64(link.size) / d.Seconds() / 1e6 }
			b.ReportMetric(mb(direct), "direct_MB/s")
			b.ReportMetric(mb(proxied), "proxy_MB/s")
			b.ReportMetric(direct.Seconds()/proxied.Seconds(), "proxy_ratio")
		})
	}
}

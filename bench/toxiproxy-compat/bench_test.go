package compat

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/resctl/resctl/harness"
)

// proxies starts, in front of upstream, resctl's tcp proxy and Toxiproxy's
// own (in process, no toxics), and returns the addresses to compare:
// direct, resctl, toxiproxy.
func proxies(b *testing.B, upstream string) map[string]string {
	b.Helper()
	rp, err := harness.StartTCP(harness.TCPOptions{Upstream: upstream, Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rp.Close(context.Background()) })
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	tp := toxiproxy.NewProxy(srv, "bench", "127.0.0.1:0", upstream)
	if err := tp.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tp.Stop)
	return map[string]string{"direct": upstream, "resctl": rp.Addr(), "toxiproxy": tp.Listen}
}

// BenchmarkKeepAlive sends small request/response exchanges over one kept
// alive connection, directly and through each proxy, in one run.
func BenchmarkKeepAlive(b *testing.B) {
	addrs := proxies(b, echoServer(b))
	for _, name := range []string{"direct", "resctl", "toxiproxy"} {
		b.Run(name, func(b *testing.B) {
			c, err := net.Dial("tcp", addrs[name])
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := []byte("GET /api/orders HTTP/1.1\r\nHost: bench\r\n\r\n")
			got := make([]byte, len(msg))
			start := time.Now()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

const bulkSize = 128 << 20

// sender sends bulkSize bytes to every connection.
func sender(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	chunk := make([]byte, 1<<20)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for left := bulkSize; left > 0; left -= len(chunk) {
					if _, err := c.Write(chunk[:min(left, len(chunk))]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkBulk moves 128 MiB per iteration, directly and through each
// proxy, in one run.
func BenchmarkBulk(b *testing.B) {
	addrs := proxies(b, sender(b))
	for _, name := range []string{"direct", "resctl", "toxiproxy"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(bulkSize)
			buf := make([]byte, 1<<20)
			for b.Loop() {
				c, err := net.Dial("tcp", addrs[name])
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, c, buf)
				c.Close()
				if err != nil || n != bulkSize {
					b.Fatalf("read %d bytes, err %v", n, err)
				}
			}
		})
	}
}

package netem

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// udpSockets opens a UDP socket on side B at port and one on side A to
// send to it; the caller closes them.
func udpSockets(t *testing.T, p *Pair, port int) (rx, tx net.PacketConn) {
	t.Helper()
	for _, sock := range []struct {
		side Side
		addr string
		conn *net.PacketConn
	}{{B, fmt.Sprintf("%s:%d", p.Addr[B], port), &rx}, {A, p.Addr[A].String() + ":0", &tx}} {
		err := p.in(sock.side, func(func() error) (err error) {
			*sock.conn, err = net.ListenPacket("udp4", sock.addr)
			return err
		})
		if err != nil {
			if rx != nil {
				rx.Close()
			}
			t.Fatal(err)
		}
	}
	return rx, tx
}

// udpCount sends n datagrams from side A to side B and counts those that
// arrive. Each datagram carries its number, and the sender keeps at most
// a window of them ahead of the highest the reader has seen, so the
// receiving socket's buffer never overflows however late a busy machine
// runs the reader: every datagram missing was dropped by a fault. Once
// the last is sent, the reader stops after half a second of silence.
func udpCount(t *testing.T, p *Pair, n int) int {
	t.Helper()
	const window = 50 // with dups, 100 small datagrams: well within the buffer
	rx, tx := udpSockets(t, p, 7200)
	defer rx.Close()
	defer tx.Close()
	to := rx.LocalAddr()
	var highest atomic.Int64 // the highest number seen, plus one
	var stopped atomic.Bool
	sent := make(chan struct{})
	got := make(chan int, 1)
	go func() {
		buf, count, last := make([]byte, 64), 0, time.Now()
		for {
			_ = rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			m, _, err := rx.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				select {
				case <-sent:
					if time.Since(last) < 500*time.Millisecond {
						continue
					}
				default:
					if time.Since(last) < time.Minute { // only a hang is this quiet
						continue
					}
				}
			}
			if err != nil {
				stopped.Store(true)
				got <- count
				return
			}
			count++
			last = time.Now()
			if m == 8 {
				if seq := int64(binary.BigEndian.Uint64(buf)) + 1; seq > highest.Load() {
					highest.Store(seq)
				}
			}
		}
	}()
	for i := range n {
		// With 30% loss, all of a window's datagrams are lost once in
		// 10^26: the reader always catches up.
		for int64(i)-highest.Load() >= window {
			if stopped.Load() {
				t.Fatalf("the reader heard nothing for a minute after datagram %d", highest.Load()-1)
			}
			time.Sleep(100 * time.Microsecond)
		}
		if _, err := tx.WriteTo(binary.BigEndian.AppendUint64(nil, uint64(i)), to); err != nil {
			t.Fatal(err)
		}
	}
	close(sent)
	return <-got
}

// standIn makes a pair and skips unless the faults below are made by the
// stand-in for netem (a kernel without sch_netem, as on resctl's CI) or
// by netem itself.
func standIn(t *testing.T) *Pair {
	t.Helper()
	if err := Supported(); err != nil {
		t.Skipf("skipping real network faults: %v", err)
	}
	p, err := NewPair(t.Context(), "fallbk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestPair_LossAndDuplicate sends 2000 datagrams across the link with 30%
// loss, then with 50% duplication, and counts what arrives: 1400 ± 150
// and 3000 ± 200 (binomial spreads are about 20 and 22).
func TestPair_LossAndDuplicate(t *testing.T) {
	p := standIn(t)
	const n = 2000
	if got := udpCount(t, p, n); got != n {
		t.Fatalf("without faults %d of %d datagrams arrived", got, n)
	}
	for _, tt := range []struct {
		name     string
		f        Faults
		min, max int
	}{
		{"loss", Faults{Loss: 30}, 1250, 1550},
		{"duplicate", Faults{Duplicate: 50}, 2800, 3200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Apply(t.Context(), A, tt.f)
			if err != nil && strings.Contains(err.Error(), "iptables") {
				t.Skipf("skipping: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := udpCount(t, p, n)
			t.Logf("%d of %d datagrams arrived", got, n)
			st, err := p.Stats(t.Context(), A)
			if err != nil {
				t.Fatal(err)
			}
			if tt.f.Loss > 0 && st.Dropped != uint64(n-got) {
				t.Errorf("Stats counted %d dropped, but %d of %d datagrams went missing", st.Dropped, n-got, n)
			}
			if err := p.Clear(t.Context(), A); err != nil {
				t.Fatal(err)
			}
			if got < tt.min || got > tt.max {
				t.Errorf("%d datagrams arrived of %d sent, want %d..%d", got, n, tt.min, tt.max)
			}
			if after := udpCount(t, p, n); after != n {
				t.Errorf("after Clear %d of %d arrived", after, n)
			}
		})
	}
}

// TestPair_DelayJitter holds packets for delay ± jitter: each of 200
// datagrams, stamped as sent, arrives no sooner than delay - jitter, and
// their delays spread over most of the jitter's range.
func TestPair_DelayJitter(t *testing.T) {
	p := standIn(t)
	const delay, jitter = 60 * time.Millisecond, 20 * time.Millisecond
	if err := p.Apply(t.Context(), A, Faults{Delay: delay, Jitter: jitter}); err != nil {
		t.Fatal(err)
	}
	defer p.Clear(context.Background(), A)
	rx, tx := udpSockets(t, p, 7201)
	defer rx.Close()
	defer tx.Close()
	const n = 200
	start := time.Now()
	go func() {
		for range n {
			stamp := binary.BigEndian.AppendUint64(nil, uint64(time.Since(start)))
			_, _ = tx.WriteTo(stamp, rx.LocalAddr())
			time.Sleep(500 * time.Microsecond)
		}
	}()
	lo, hi := time.Hour, time.Duration(0)
	buf := make([]byte, 8)
	for i := range n {
		_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := rx.ReadFrom(buf); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		d := time.Since(start) - time.Duration(binary.BigEndian.Uint64(buf))
		lo, hi = min(lo, d), max(hi, d)
	}
	t.Logf("one-way delays %v..%v", lo, hi)
	if lo < delay-jitter {
		t.Errorf("a datagram took %v, less than delay - jitter", lo)
	}
	if hi-lo < jitter {
		t.Errorf("delays spread over %v..%v, want them across most of ±%v", lo, hi, jitter)
	}
}

// TestPair_CorruptNeedsNetem: corruption has no stand-in, and a kernel
// without netem says so rather than pass packets untouched.
func TestPair_CorruptNeedsNetem(t *testing.T) {
	p := standIn(t)
	err := p.Apply(t.Context(), A, Faults{Corrupt: 5})
	if err == nil {
		t.Skip("the kernel has netem: corruption is its own")
	}
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "corrupt needs") {
		t.Errorf("Apply corrupt = %v, want ErrUnsupported naming corrupt", err)
	}
}

// threads is the process's thread count.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestPair_DialsAcrossPartitionHoldNoThreads: a connect across a
// partition waits for an answer that never comes; it must wait without
// holding a thread out of the scheduler's use, or a partition under load
// runs the process out of threads.
func TestPair_DialsAcrossPartitionHoldNoThreads(t *testing.T) {
	p := standIn(t)
	if err := p.Partition(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := threads(t)
	const dials = 200
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	errs := make(chan error, dials)
	for range dials {
		go func() {
			c, err := p.DialContext(ctx, A, p.Addr[B].String()+":7300")
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	time.Sleep(500 * time.Millisecond) // every dial waiting on its SYN
	during := threads(t)
	for range dials {
		if err := <-errs; err == nil {
			t.Fatal("a dial crossed the partition")
		}
	}
	// A dial holds a thread only while it makes its socket, and at most
	// nsThreads dials do that at once; the runtime may add a thread or two
	// per P beside them. A dial holding its thread while it waits would
	// take one each.
	t.Logf("%d dials waiting across the partition: threads %d → %d", dials, before, during)
	if limit := nsThreads + 2*runtime.GOMAXPROCS(0) + 8; during-before > limit {
		t.Errorf("%d dials waiting across the partition took %d threads (%d → %d), want at most %d", dials, during-before, before, during, limit)
	}
}

// TestPair_DelayKeepsTCPThroughput: a delay slows a TCP transfer by round
// trips, as a long link does, not to a trickle: 2 MiB across 50 ms takes
// about ten round trips of slow start (half a second), where a queue that
// held packets against the sender's socket took over 30 s.
func TestPair_DelayKeepsTCPThroughput(t *testing.T) {
	p := standIn(t)
	ln, err := p.Listen(B, 7400)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 2 << 20
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write(make([]byte, size))
	}()
	if err := p.Apply(t.Context(), B, Faults{Delay: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	defer p.Clear(context.Background(), B)
	c, err := p.DialContext(t.Context(), A, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	t.Logf("2 MiB across a 50 ms delay took %v", took)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if took > 3*time.Second {
		t.Errorf("2 MiB across a 50 ms delay took %v, want about half a second", took)
	}
}

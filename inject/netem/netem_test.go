package netem_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/inject/netem"
)

// pair makes a namespace pair for the test, or skips with the reason
// network faults cannot be made here.
func pair(t *testing.T) *netem.Pair {
	t.Helper()
	if err := netem.Supported(); err != nil {
		t.Skipf("skipping real network faults: %v", err)
	}
	p, err := netem.NewPair(t.Context(), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:8])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// echoIn serves an echo on side B and returns its address.
func echoIn(t *testing.T, p *netem.Pair) string {
	t.Helper()
	ln, err := p.Listen(netem.B, 7000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go echo(ln)
	return ln.Addr().String()
}

// echo answers every connection on ln with what it sends, until ln closes.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
	}
}

func roundTrip(ctx context.Context, p *netem.Pair, addr string) (time.Duration, error) {
	c, err := p.DialContext(ctx, netem.A, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		return 0, err
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	return time.Since(start), err
}

func TestPair_Partition(t *testing.T) {
	p := pair(t)
	addr := echoIn(t, p)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := roundTrip(ctx, p, addr); err != nil {
		t.Fatalf("before the partition: %v", err)
	}
	if err := p.Partition(t.Context()); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	if _, err := roundTrip(short, p, addr); err == nil {
		t.Fatal("a round trip crossed the partition")
	}
	if err := p.Heal(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(ctx, p, addr); err != nil {
		t.Errorf("after healing: %v", err)
	}
}

func TestPair_Netem(t *testing.T) {
	p := pair(t)
	addr := echoIn(t, p)
	const delay = 40 * time.Millisecond
	err := p.Apply(t.Context(), netem.A, netem.Faults{Delay: delay})
	if errors.Is(err, netem.ErrUnsupported) {
		t.Skipf("skipping netem: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	d, err := roundTrip(ctx, p, addr)
	if err != nil || d < delay {
		t.Errorf("round trip %v, %v; want at least the %v delay", d, err, delay)
	}
	if err := p.Clear(t.Context(), netem.A); err != nil {
		t.Fatal(err)
	}
}

func TestFaults_Check(t *testing.T) {
	tests := []struct {
		f    netem.Faults
		want string
	}{
		{netem.Faults{Delay: 10 * time.Millisecond, Loss: 1}, ""},
		{netem.Faults{}, "delay"},
		{netem.Faults{Delay: -1}, "delay"},
		{netem.Faults{Jitter: time.Millisecond}, "jitter"},
		{netem.Faults{Loss: 101}, "loss"},
		{netem.Faults{Delay: time.Millisecond, Corrupt: -1}, "corrupt"},
		{netem.Faults{Delay: time.Nanosecond}, "delay"},
		{netem.Faults{Delay: 2 * time.Minute}, "delay"},
	}
	for _, tt := range tests {
		var got []string
		tt.f.Check(func(field, _ string) { got = append(got, field) })
		if (tt.want == "") != (len(got) == 0) || (tt.want != "" && got[0] != tt.want) {
			t.Errorf("%+v: problems %v, want %q", tt.f, got, tt.want)
		}
	}
}

// TestCleanupStale leaves a namespace as a killed run would (named after a
// pid that no longer runs) and checks that the next cleanup removes it and
// spares this process's.
func TestCleanupStale(t *testing.T) {
	p := pair(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%d-stale-a", netem.Prefix, dead.Process.Pid)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", stale).Run() })
	removed, err := netem.CleanupStale(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !contains(removed, stale) {
		t.Errorf("CleanupStale removed %v, want %s among them", removed, stale)
	}
	if contains(removed, p.NS[0]) {
		t.Error("CleanupStale removed a namespace of a live process")
	}
	list, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(list), stale) {
		t.Errorf("%s still listed", stale)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestPair_PartitionStallsOpenConnection checks that a partition is
// silent: an open connection's write succeeds and its answer waits, and
// the answer arrives once the partition heals — nothing is refused or
// reset, as behind a real partition.
func TestPair_PartitionStallsOpenConnection(t *testing.T) {
	p := pair(t)
	addr := echoIn(t, p)
	c, err := p.DialContext(t.Context(), netem.A, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	for _, side := range []netem.Side{netem.A, netem.B} {
		if err := p.Partition(t.Context(), side); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("pong")); err != nil {
			t.Fatalf("side %d: write across the partition: %v (want it accepted and stalled)", side, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
		if n, err := io.ReadFull(c, buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("side %d: read across the partition: %d bytes, %v; want a stall", side, n, err)
		}
		if err := p.Heal(t.Context()); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
			t.Fatalf("side %d: after healing read %q, %v; want the stalled answer", side, buf, err)
		}
	}
}

// TestPair_Rate shapes the traffic leaving B with tbf (no netem needed)
// and checks a transfer takes about as long as the rate says.
func TestPair_Rate(t *testing.T) {
	p := pair(t)
	ln, err := p.Listen(netem.B, 7001)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 400 << 10
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write(make([]byte, size))
			_ = c.Close()
		}
	}()
	fetch := func() time.Duration {
		c, err := p.DialContext(t.Context(), netem.A, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if n, err := io.Copy(io.Discard, c); err != nil || n != size {
			t.Fatalf("read %d bytes, %v", n, err)
		}
		return time.Since(start)
	}
	if err := p.Apply(t.Context(), netem.B, netem.Faults{Rate: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	// 400 KiB at 1 MiB/s is 390 ms, less the first burst.
	if d := fetch(); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("400KiB at 1MiB/s took %v, want about 390ms", d)
	}
	if err := p.Clear(t.Context(), netem.B); err != nil {
		t.Fatal(err)
	}
	if d := fetch(); d > 250*time.Millisecond {
		t.Errorf("without the rate the transfer took %v", d)
	}
}

// upstreamEcho serves an echo on loopback in the test's own namespace.
func upstreamEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go echo(ln)
	return ln.Addr().String()
}

// TestLink carries connections to a loopback upstream across the link,
// partitions the answers, heals, and counts the packets the fault saw.
func TestLink(t *testing.T) {
	if err := netem.Supported(); err != nil {
		t.Skipf("skipping real network faults: %v", err)
	}
	l, err := netem.NewLink(t.Context(), "link")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	addr := upstreamEcho(t)
	trip := func(addr string, wait time.Duration) error {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		defer cancel()
		c, err := l.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return fmt.Errorf("echo %q", buf)
		}
		return nil
	}
	if err := trip(addr, 5*time.Second); err != nil {
		t.Fatalf("across the link: %v", err)
	}
	spec := &netem.Spec{Partition: true}
	before, err := l.Stats(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	if err := trip(addr, 400*time.Millisecond); err == nil {
		t.Fatal("a round trip crossed the partition")
	}
	after, err := l.Stats(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if after.Packets <= before.Packets {
		t.Errorf("packets on the partitioned sides: %d then %d, want more (the SYNs that vanished)", before.Packets, after.Packets)
	}
	if err := l.Clear(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := trip(addr, 5*time.Second); err != nil {
		t.Errorf("after clearing: %v", err)
	}

	// An upstream that refuses is a reset connection, not a hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if err := trip(dead, 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a round trip to a refused upstream: %v, want the connection reset or closed", err)
	}
}

func TestSpec_Check(t *testing.T) {
	tests := []struct {
		name string
		s    netem.Spec
		want string
	}{
		{"delay", netem.Spec{Faults: netem.Faults{Delay: time.Millisecond}}, ""},
		{"partition", netem.Spec{Partition: true, Direction: netem.Both}, ""},
		{"nothing", netem.Spec{}, "delay"},
		{"partition with loss", netem.Spec{Partition: true, Faults: netem.Faults{Loss: 5}}, "partition"},
		{"bad direction", netem.Spec{Partition: true, Direction: "sideways"}, "direction"},
		{"negative rate", netem.Spec{Faults: netem.Faults{Rate: -1}}, "rate"},
		{"on without off", netem.Spec{Partition: true, Schedule: netem.Schedule{On: time.Second}}, "schedule.on"},
		{"windows too short", netem.Spec{Partition: true, Schedule: netem.Schedule{On: time.Second, Off: 10 * time.Millisecond}}, "schedule.on"},
		{"flapping", netem.Spec{Partition: true, Schedule: netem.Schedule{On: time.Second, Off: time.Second}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			tt.s.Check(func(field, _ string) { got = append(got, field) })
			if (tt.want == "") != (len(got) == 0) || (tt.want != "" && got[0] != tt.want) {
				t.Errorf("problems %v, want %q", got, tt.want)
			}
		})
	}
}

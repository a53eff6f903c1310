package netem_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
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
		{netem.Faults{Delay: 1, Corrupt: -1}, "corrupt"},
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

package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// syncBuffer is a strings.Builder the test reads while watchFaults writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitOutput waits until the output holds want, or fails after a while.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q never held %q", out.String(), want)
		}
	}
}

type boardOnly struct{ b *inject.Board }

func (t boardOnly) Board() *inject.Board { return t.b }
func (boardOnly) Addr() string           { return "127.0.0.1:9" }
func (boardOnly) Upstream() string       { return "http://127.0.0.1:1" }

// TestWatchFaults: without a terminal the list is one block per tick; an
// admin API that does not answer yet is a line of the block, and once it
// answers the next block lists its proxies and faults.
func TestWatchFaults(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ac := &harness.AdminClient{BaseURL: "http://" + addr, HTTP: &http.Client{Transport: tr}}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	now := func() time.Time { return time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC) }
	go func() { defer close(done); watchFaults(ctx, out, ac, 10*time.Millisecond, false, now) }()
	defer func() { cancel(); <-done }()

	waitOutput(t, out, "cannot read the admin API")
	admin := harness.NewAdmin(harness.AdminOptions{})
	defer admin.Close(context.Background())
	board := inject.NewBoard(1, now)
	spec, err := inject.ParseSpec("latency", []byte(`{"delay": "5ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := board.ActivateWith("slow", spec, inject.ActivateOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Add("web", harness.ProtocolHTTP, boardOnly{board}); err != nil {
		t.Fatal(err)
	}
	srv, err := harness.ListenAdmin(addr, admin, nil)
	if err != nil {
		t.Skipf("the port was taken in between: %v", err)
	}
	defer srv.Close(context.Background())
	waitOutput(t, out, "slow")
	cancel()
	<-done

	blocks := strings.Split(strings.TrimSuffix(out.String(), "\n\n"), "\n\n")
	if len(blocks) < 2 || strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("output %q: want blocks apart, no terminal codes", out.String())
	}
	for _, b := range blocks {
		if !strings.HasPrefix(b, "12:00:00  admin API http://"+addr+", every 10ms; Ctrl-C stops\n") {
			t.Errorf("block %q does not start with the time line", b)
		}
	}
	if first := blocks[0]; !strings.Contains(first, "trying again in 10ms") {
		t.Errorf("first block %q: want the unreachable API as a line", first)
	}
	last := blocks[len(blocks)-1]
	if !strings.Contains(last, "PROXY") || !strings.Contains(last, "web") || !strings.Contains(last, "slow") || !strings.Contains(last, "in 1m0s") {
		t.Errorf("last block %q: want the proxy and its fault", last)
	}
}

// TestWatchFaults_Terminal: on a terminal each tick clears the screen and
// draws the list in place.
func TestWatchFaults_Terminal(t *testing.T) {
	ac := &harness.AdminClient{BaseURL: "http://127.0.0.1:1"}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); watchFaults(ctx, out, ac, 10*time.Millisecond, true, time.Now) }()
	const clearScreen = "\x1b[H\x1b[2J"
	for deadline := time.Now().Add(10 * time.Second); strings.Count(out.String(), clearScreen) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q: want two ticks", out.String())
		}
	}
	cancel()
	<-done
	if s := out.String(); !strings.HasPrefix(s, clearScreen) || strings.Contains(s, "\n\n") || !strings.Contains(s, "trying again") {
		t.Errorf("output %q: want each tick to clear the screen, no blocks", s)
	}
}

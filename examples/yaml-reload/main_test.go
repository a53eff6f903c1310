package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServe_Reload runs the service over loopback with the shipped guard
// file, then edits the file while it serves: a file with a problem is
// refused and changes nothing; a good one is swapped in, and the open
// breaker, whose configuration it leaves as it was, stays open.
func TestServe_Reload(t *testing.T) {
	var down atomic.Bool
	payments := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"paid":true}`)
	}))
	defer payments.Close()
	shipped, err := os.ReadFile("guard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "guard.yaml")
	write := func(s string) {
		t.Helper()
		// A later modification time than the file's, whatever the
		// file system's resolution: the watcher compares stamps. The
		// file is replaced at once, as most editors save: the watcher
		// sees the old file or the new one, never the instant between
		// truncating and writing, which a busy machine can stretch over
		// several polls.
		next := file + ".new"
		if err := os.WriteFile(next, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(time.Duration(len(s)) * time.Second)
		if err := os.Chtimes(next, at, at); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, file); err != nil {
			t.Fatal(err)
		}
	}
	write(string(shipped))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, config{payments: payments.URL, guardFile: file, watchEvery: 5 * time.Millisecond,
			reloaded: func(err error) { reloaded <- err }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + ln.Addr().String()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b)
	}

	if got := get("/api/orders"); !strings.Contains(got, `{"paid":true}`) {
		t.Errorf("healthy: %s", got)
	}
	down.Store(true)
	for range 20 {
		get("/api/orders")
	}
	const open = `resctl_guard_state{kind="breaker",policy="payments",state="open"} 1`
	if m := get("/metrics"); !strings.Contains(m, open) {
		t.Fatalf("the breaker did not open:\n%s", m)
	}

	write(string(shipped) + "- retry: {attempts: 99}\n")
	if err := <-reloaded; err == nil || !strings.Contains(err.Error(), "attempts") {
		t.Errorf("a file with 99 attempts: %v, want it refused", err)
	}
	// Without the fallback, the open breaker's refusals reach the users.
	var lines []string
	for _, l := range strings.Split(string(shipped), "\n") {
		if !strings.HasPrefix(l, "- fallback:") {
			lines = append(lines, l)
		}
	}
	write(strings.Join(lines, "\n"))
	if err := <-reloaded; err != nil {
		t.Fatalf("reload: %v", err)
	}
	got := get("/api/orders")
	if !strings.HasPrefix(got, "503") || !strings.Contains(got, "circuit open") {
		t.Errorf("after the fallback was dropped: %s, want the breaker's refusal", got)
	}
	m := get("/metrics")
	for _, want := range []string{open, `orders_guard_reloads_total{result="ok"} 1`, `orders_guard_reloads_total{result="refused"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resctl/resctl/inject/agent"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock fires TTL timers when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock and runs the timers that came due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func newAgent(t *testing.T) (*agent.Agent, *fakeClock, *agent.Client) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := agent.New(agent.Options{Clock: clk, MaxGoroutines: 5000, MaxBytes: 256 << 20})
	mux := http.NewServeMux()
	mux.Handle(agent.MountPath+"/", http.StripPrefix(agent.MountPath, a))
	srv := httptest.NewServer(mux)
	tr := &http.Transport{}
	t.Cleanup(func() { tr.CloseIdleConnections(); srv.Close(); a.Close() })
	return a, clk, &agent.Client{BaseURL: srv.URL + agent.MountPath, HTTP: &http.Client{Transport: tr}}
}

func TestAgent_GoroutinesExpireOnTheirOwn(t *testing.T) {
	for _, mode := range []string{"park", "spin"} {
		t.Run(mode, func(t *testing.T) {
			a, clk, c := newAgent(t)
			before := runtime.NumGoroutine()
			info, err := c.Start(t.Context(), "", "goroutines", time.Minute, map[string]any{"count": 1000, "mode": mode})
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != "goroutines" || !info.Expires.Equal(clk.Now().Add(time.Minute)) {
				t.Errorf("info = %+v", info)
			}
			if got := runtime.NumGoroutine() - before; got < 1000 {
				t.Errorf("%d more goroutines, want at least 1000", got)
			}
			clk.advance(59 * time.Second)
			if len(a.Active()) != 1 {
				t.Fatal("the fault ended before its TTL")
			}
			clk.advance(time.Second)
			if len(a.Active()) != 0 {
				t.Fatal("the fault outlived its TTL")
			}
			if got := runtime.NumGoroutine() - before; got > 10 {
				t.Errorf("%d goroutines left after the TTL", got)
			}
		})
	}
}

func TestAgent_MemoryBallast(t *testing.T) {
	a, _, c := newAgent(t)
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := c.Start(t.Context(), "m", "memory", time.Minute, map[string]any{"bytes": "64MiB"}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&during)
	if grew := int64(during.HeapAlloc) - int64(before.HeapAlloc); grew < 60<<20 {
		t.Errorf("heap grew by %d bytes, want about 64MiB", grew)
	}
	if err := c.Stop(t.Context(), "m"); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&during)
	if held := int64(during.HeapAlloc) - int64(before.HeapAlloc); held > 16<<20 {
		t.Errorf("%d bytes still held after stop", held)
	}
	_ = a
}

func TestAgent_ChurnCPUAndGC(t *testing.T) {
	_, _, c := newAgent(t)
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, f := range []struct {
		kind   string
		params map[string]any
	}{
		{"memory", map[string]any{"bytes": "10MiB", "mode": "churn"}},
		{"cpu", map[string]any{"workers": 1, "percent": 50}},
		{"gc", map[string]any{"interval": "5ms", "percent": 20}},
	} {
		if _, err := c.Start(t.Context(), "", f.kind, time.Minute, f.params); err != nil {
			t.Fatalf("%s: %v", f.kind, err)
		}
	}
	if got := debug.SetGCPercent(20); got != 20 {
		t.Errorf("GOGC during the gc fault = %d, want 20", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var now runtime.MemStats
		runtime.ReadMemStats(&now)
		if now.NumForcedGC > before.NumForcedGC+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no forced collections under the gc fault")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Clear(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after the gc fault = %d, want it restored to 100", got)
	}
}

func TestAgent_BadRequests(t *testing.T) {
	_, _, c := newAgent(t)
	tests := []struct {
		name, kind string
		ttl        time.Duration
		params     map[string]any
		fields     []string
	}{
		{"unknown kind", "goroutine", time.Minute, nil, []string{"kind"}},
		{"ttl of zero", "goroutines", 0, map[string]any{"count": 1}, []string{"ttl"}},
		{"ttl over the cap", "goroutines", time.Hour, map[string]any{"count": 1}, []string{"ttl"}},
		{"count over the cap", "goroutines", time.Minute, map[string]any{"count": 1_000_000}, []string{"params.count"}},
		{"negative count", "goroutines", time.Minute, map[string]any{"count": -1}, []string{"params.count"}},
		{"bytes below zero", "memory", time.Minute, map[string]any{"bytes": -1}, []string{"params.bytes"}},
		{"bytes over the cap", "memory", time.Minute, map[string]any{"bytes": "1GiB"}, []string{"params.bytes"}},
		{"percent over 100", "cpu", time.Minute, map[string]any{"percent": 150}, []string{"params.percent"}},
		{"gc with nothing to do", "gc", time.Minute, nil, []string{"params.interval"}},
		{"unknown param", "cpu", time.Minute, map[string]any{"cores": 2}, []string{"params.cores"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Start(t.Context(), "", tt.kind, tt.ttl, tt.params)
			var re *agent.RequestError
			if !errors.As(err, &re) || re.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400", err)
			}
			var fields []string
			for _, p := range re.Problems {
				fields = append(fields, p.Field)
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("problem fields %v (%v), want %v", fields, err, tt.fields)
			}
		})
	}
	if _, err := c.Start(t.Context(), "dup", "gc", time.Minute, map[string]any{"interval": "1s"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Start(t.Context(), "dup", "gc", time.Minute, map[string]any{"interval": "1s"})
	var re *agent.RequestError
	if !errors.As(err, &re) || re.Status != http.StatusConflict {
		t.Errorf("duplicate id: %v, want 409", err)
	}
	if err := c.Stop(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("stop of an unknown fault: %v, want 404", err)
	}
	if fs, err := c.List(context.Background()); err != nil || len(fs) != 1 {
		t.Errorf("list = %v, %v", fs, err)
	}
}

func TestAgent_CloseEndsEverything(t *testing.T) {
	a, _, c := newAgent(t)
	before := runtime.NumGoroutine()
	if _, err := c.Start(t.Context(), "", "goroutines", time.Minute, map[string]any{"count": 100}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if got := runtime.NumGoroutine() - before; got > 10 {
		t.Errorf("%d goroutines left after Close", got)
	}
	if _, err := c.Start(t.Context(), "", "goroutines", time.Minute, map[string]any{"count": 1}); err == nil {
		t.Error("a closed agent started a fault")
	}
}

// TestAgent_RefusesWebPages sends what a web page can make a browser send,
// and a DNS-rebinding request, to an agent on a real listener: each is
// refused with a JSON error and starts nothing.
func TestAgent_RefusesWebPages(t *testing.T) {
	a, _, c := newAgent(t)
	const fault = `{"kind": "goroutines", "ttl": "1m", "params": {"count": 10}}`
	tests := []struct {
		name   string
		header map[string]string
		host   string
		want   int
	}{
		{"cross-site text/plain post", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}, "", 403},
		{"text/plain post", map[string]string{"Content-Type": "text/plain"}, "", 415},
		{"form post", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "", 415},
		{"origin", map[string]string{"Content-Type": "application/json", "Origin": "null"}, "", 403},
		{"sec-fetch-site", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, "", 403},
		{"browser user agent", map[string]string{"Content-Type": "application/json", "User-Agent": "Mozilla/5.0"}, "", 403},
		{"foreign host", map[string]string{"Content-Type": "application/json"}, "rebind.evil.example", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, c.BaseURL+"/faults", strings.NewReader(fault))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := c.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error string }
			if resp.StatusCode != tt.want || json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
				t.Fatalf("status %d (%q), want %d with a JSON error", resp.StatusCode, e.Error, tt.want)
			}
			if n := len(a.Active()); n != 0 {
				t.Errorf("%d faults running after a refused request", n)
			}
		})
	}
	if _, err := c.Start(t.Context(), "", "goroutines", time.Minute, map[string]any{"count": 10}); err != nil {
		t.Fatalf("the client's own request: %v", err)
	}
	if err := c.Clear(t.Context()); err != nil {
		t.Fatalf("the client's clear: %v", err)
	}
}

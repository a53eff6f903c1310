package harness_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// eventsUntil reads the admin API's event log until done says it holds
// what the test waits for, or fails at hangGuard; it returns every event
// read.
func eventsUntil(t *testing.T, c *harness.AdminClient, done func([]harness.Event) bool) []harness.Event {
	t.Helper()
	var all []harness.Event
	var after uint64
	deadline := time.Now().Add(hangGuard)
	for {
		evs, next, err := c.Events(t.Context(), after)
		if err != nil {
			t.Fatal(err)
		}
		all, after = append(all, evs...), next
		if done(all) {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %s: still waiting after %v", brief(all), hangGuard)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// brief writes events as "proxy source/kind id", one per event.
func brief(evs []harness.Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, fmt.Sprintf("%s %s/%s %s", e.Proxy, e.Source, e.Kind, e.ID))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func has(evs []harness.Event, kind, id string) bool {
	return slices.ContainsFunc(evs, func(e harness.Event) bool { return e.Kind == kind && e.ID == id })
}

// TestAdmin_FaultEvents: every change of a fault through the resctl API
// and the Toxiproxy API is an event, in order, numbered from 1, and so is
// the expiry of a fault whose TTL ended (the board's clock moved past it,
// nobody called the API); OnEvent hears the same events.
func TestAdmin_FaultEvents(t *testing.T) {
	var mu sync.Mutex
	var heard []harness.Event
	f := newAdminFixture(t, harness.AdminOptions{ExpiryCheck: 10 * time.Millisecond, OnEvent: func(e harness.Event) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, e)
	}})
	c := &harness.AdminClient{BaseURL: f.url, HTTP: newClient(t, false)}
	ctx := t.Context()
	add := func(proxy string, req harness.FaultRequest) harness.FaultInfo {
		t.Helper()
		fi, err := c.AddFault(ctx, proxy, req)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	add("web", harness.FaultRequest{Kind: "latency", TTL: "5m", Params: []byte(`{"delay": "200ms", "percent": 30}`)})
	if fi := add("web", harness.FaultRequest{Kind: "latency", TTL: "5m", Params: []byte(`{"delay": "300ms"}`)}); !fi.Replaced || fi.ID != "latency" {
		t.Errorf("second latency: %+v, want it to replace the first", fi)
	}
	if fi := add("web", harness.FaultRequest{ID: "latency-b", Kind: "latency", Params: []byte(`{"delay": "1ms"}`)}); fi.Replaced || fi.ID != "latency-b" {
		t.Errorf("latency with an id of its own: %+v, want a second fault", fi)
	}
	if code, body := f.call(t, http.MethodPut, "/api/v1/proxies/web/faults/latency-b", `{"kind": "latency", "params": {"delay": "2ms"}}`); code != 200 {
		t.Fatalf("PUT: %d %v", code, body)
	}
	if err := c.RemoveFault(ctx, "web", "latency-b"); err != nil {
		t.Fatal(err)
	}
	if code, body := f.call(t, http.MethodPost, "/proxies/db/toxics", `{"name": "slow", "type": "latency", "attributes": {"latency": 5}}`); code != 200 {
		t.Fatalf("toxic: %d %v", code, body)
	}
	if code, body := f.call(t, http.MethodPost, "/proxies/db/toxics/slow", `{"attributes": {"latency": 6}}`); code != 200 {
		t.Fatalf("toxic update: %d %v", code, body)
	}
	if code, _ := f.call(t, http.MethodDelete, "/proxies/db/toxics/slow", ""); code != http.StatusNoContent {
		t.Fatalf("toxic delete: %d", code)
	}
	add("web", harness.FaultRequest{Kind: "abort", TTL: "10s"})
	f.clk.advance(10 * time.Second) // the abort's TTL ends; the latency's does not
	evs := eventsUntil(t, c, func(evs []harness.Event) bool { return has(evs, harness.FaultExpired, "abort") })
	if _, err := c.ClearProxy(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	evs = append(evs, eventsUntil(t, c, func(more []harness.Event) bool { return len(more) > len(evs) })[len(evs):]...)

	want := []string{
		"web fault/added latency", "web fault/replaced latency", "web fault/added latency-b", "web fault/changed latency-b",
		"web fault/removed latency-b", "db fault/added slow", "db fault/changed slow", "db fault/removed slow",
		"web fault/added abort", "web fault/expired abort", "web fault/cleared latency",
	}
	if got := brief(evs); got != "["+strings.Join(want, "; ")+"]" {
		t.Fatalf("events %s,\nwant %v", got, want)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.At.IsZero() {
			t.Errorf("event %d: seq %d at %v, want seq %d and a time", i, e.Seq, e.At, i+1)
		}
	}
	if d := evs[0].Detail; d != "latency delay=200ms percent=30% ttl=5m0s" {
		t.Errorf("detail of the first latency = %q", d)
	}
	if d := evs[1].Detail; d != "latency delay=300ms percent=100% ttl=5m0s" {
		t.Errorf("detail of the replacing latency = %q", d)
	}
	if at := evs[9].At; !at.Equal(time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC)) {
		t.Errorf("the expiry is stamped %v, want the end of the TTL on the board's clock", at)
	}
	mu.Lock()
	defer mu.Unlock()
	same := func(a, b harness.Event) bool {
		a.At, b.At = a.At.UTC(), b.At.UTC()
		return a.At.Equal(b.At) && a.Seq == b.Seq && brief([]harness.Event{a}) == brief([]harness.Event{b}) && a.Detail == b.Detail
	}
	if !slices.EqualFunc(heard, evs, same) {
		t.Errorf("OnEvent heard %s, want %s", brief(heard), brief(evs))
	}
}

// TestAdmin_ReplaceLeavesRunFaults: a fault a run armed for a later phase
// is the run's: a POST of its id is refused and leaves it armed, where a
// POST of an id that is switched on replaces it.
func TestAdmin_ReplaceLeavesRunFaults(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	spec, err := inject.ParseSpec("latency", []byte(`{"delay": "1ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	armed, err := f.web.Board().ActivateWith("latency", spec, inject.ActivateOptions{Scope: "fault", Armed: true})
	if err != nil {
		t.Fatal(err)
	}
	code, body := f.call(t, http.MethodPost, "/api/v1/proxies/web/faults", `{"kind": "latency", "params": {"delay": "1s"}}`)
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(body["error"]), "belongs to the run") {
		t.Errorf("POST over an armed fault: %d %v, want 409", code, body)
	}
	if h := f.web.Board().History(); len(h) != 1 || h[0] != armed || armed.Stats().Until != (time.Time{}) {
		t.Errorf("history %v: the armed fault must stay as it was", h)
	}
}

// TestAdmin_Marks: a mark is an event with its text; an empty or
// oversized text is refused and records nothing.
func TestAdmin_Marks(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	c := &harness.AdminClient{BaseURL: f.url, HTTP: newClient(t, false)}
	if err := c.Mark(t.Context(), "  deploy v2 "); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"", " ", strings.Repeat("x", harness.MaxMarkLen+1)} {
		var ae *harness.APIError
		if err := c.Mark(t.Context(), text); !errors.As(err, &ae) || ae.Status != 400 || len(ae.Problems) != 1 || ae.Problems[0].Field != "text" {
			t.Errorf("mark %.10q: %v, want a 400 naming text", text, err)
		}
	}
	if code, _ := f.call(t, http.MethodPost, "/api/v1/marks", `{"txt": "x"}`); code != 400 {
		t.Errorf("unknown key: %d, want 400", code)
	}
	evs, next, err := c.Events(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Source != "mark" || evs[0].Kind != "mark" || evs[0].Detail != "deploy v2" || next != 1 {
		t.Errorf("events %+v next %d, want the one mark", evs, next)
	}
}

// TestAdmin_EventLogBounded: the log keeps the newest events; a client
// reads on from the seq it saw, and a client ahead of the log (its Admin
// restarted) starts over from the newest.
func TestAdmin_EventLogBounded(t *testing.T) {
	admin := harness.NewAdmin(harness.AdminOptions{EventLog: 3})
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	srv, err := harness.ListenAdmin("127.0.0.1:0", admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	for i := range 5 {
		admin.Record(harness.Event{Source: "mark", Kind: "mark", Detail: fmt.Sprint(i + 1)})
	}
	c := &harness.AdminClient{BaseURL: srv.URL(), HTTP: newClient(t, false)}
	tests := []struct {
		after    uint64
		wantSeqs []uint64
		wantNext uint64
	}{
		{0, []uint64{3, 4, 5}, 5},
		{3, []uint64{4, 5}, 5},
		{5, nil, 5},
		{99, nil, 5},
	}
	for _, tt := range tests {
		evs, next, err := c.Events(t.Context(), tt.after)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range evs {
			seqs = append(seqs, e.Seq)
		}
		if !slices.Equal(seqs, tt.wantSeqs) || next != tt.wantNext {
			t.Errorf("after %d: seqs %v next %d, want %v next %d", tt.after, seqs, next, tt.wantSeqs, tt.wantNext)
		}
	}
	r := get(t, newClient(t, false), srv.URL()+"/api/v1/events?after=x")
	if r.status != 400 {
		t.Errorf("after=x: %d, want 400", r.status)
	}
}

// TestServe_GuardEvents: a breaker behind a proxy whose upstream is gone
// opens, and the transition is an event of the admin API, with the
// proxy's name and the policy's kind (a proxy's policies share its
// name); the proxy's guard shows the breaker open.
func TestServe_GuardEvents(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "proxies.yaml")
	body := "- name: web\n  upstream: " + dead + "\n  guard: [{breaker: {consecutive_failures: 2, open_for: 10m, backoff: {max: 10m}}}]\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	started, _ := serveConfig(t, cfg)
	hc := newClient(t, false)
	for range 3 {
		get(t, hc, "http://"+started.Proxies[0].Listen+"/")
	}
	c := &harness.AdminClient{BaseURL: started.AdminURL, HTTP: hc}
	evs := eventsUntil(t, c, func(evs []harness.Event) bool {
		return slices.ContainsFunc(evs, func(e harness.Event) bool { return e.Source == "guard" })
	})
	e := evs[0]
	if e.Proxy != "web" || e.Kind != "transition" || e.ID != "web" || e.PolicyKind != "breaker" || e.From != "closed" || e.To != "open" ||
		e.Detail != "breaker web: closed → open" {
		t.Errorf("event %+v, want web's breaker closed → open", e)
	}
	p, err := c.Proxy(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Guard) != 1 || p.Guard[0].Kind != "breaker" || p.Guard[0].State != "open" || p.Guard[0].Rejected["open"] != 1 || p.Guard[0].Admitted != 2 {
		t.Errorf("guard %+v, want the breaker open with 2 admitted and 1 rejected", p.Guard)
	}
}

// TestAdmin_ProxyDownEvents: a tcp proxy taken down through the Toxiproxy
// API, and brought back by a reset, is an event each time; asking for the
// state it is already in is none.
func TestAdmin_ProxyDownEvents(t *testing.T) {
	f := newAdminFixture(t, harness.AdminOptions{})
	for _, body := range []string{`{"enabled": false}`, `{"enabled": false}`} {
		if code, resp := f.call(t, http.MethodPost, "/proxies/db", body); code != 200 {
			t.Fatalf("disable: %d %v", code, resp)
		}
	}
	if code, _ := f.call(t, http.MethodPost, "/reset", ""); code != http.StatusNoContent {
		t.Fatalf("reset: %d", code)
	}
	c := &harness.AdminClient{BaseURL: f.url, HTTP: newClient(t, false)}
	evs, _, err := c.Events(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := brief(evs); got != "[db proxy/disabled ; db proxy/enabled ]" {
		t.Errorf("events %s, want db disabled then enabled", got)
	}
}

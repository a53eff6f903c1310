package inject_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/quantity"
)

func TestBoard_Abort(t *testing.T) {
	tests := []struct {
		name       string
		spec       *inject.AbortSpec
		wantStatus int
		wantBody   string
	}{
		{
			name:       "configured status and body",
			spec:       &inject.AbortSpec{Match: inject.Match{Percent: 100}, Status: http.StatusTeapot, Body: `{"tea":true}`},
			wantStatus: http.StatusTeapot,
			wantBody:   `{"tea":true}`,
		},
		{
			name:       "default body names the status",
			spec:       &inject.AbortSpec{Match: inject.Match{Percent: 100}, Status: http.StatusServiceUnavailable},
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   `{"error":"Service Unavailable","injected_by":"resctl"}`,
		},
		{
			name:       "a 5xx other than the default",
			spec:       &inject.AbortSpec{Match: inject.Match{Percent: 100}, Status: http.StatusGatewayTimeout, Body: "gone"},
			wantStatus: http.StatusGatewayTimeout,
			wantBody:   "gone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &upstream{}
			b := inject.NewBoard(1, nil)
			activate(t, b, "abort", tt.spec)
			srv := serve(t, b.Middleware(up))

			resp, err := client(t).Post(srv.URL+"/api/orders", "application/json", strings.NewReader(`{"item":1}`))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if got := resp.Header.Get(inject.FaultHeader); got != "abort" {
				t.Errorf("%s = %q, want abort", inject.FaultHeader, got)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if resp.ContentLength != int64(len(tt.wantBody)) {
				t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(tt.wantBody))
			}
			if n := up.calls.Load(); n != 0 {
				t.Errorf("upstream called %d times behind an abort", n)
			}
		})
	}
}

// TestBoard_ZeroPercentUntouched compares responses on the wire: through a
// board whose faults never fire, every byte is what the upstream sent.
func TestBoard_ZeroPercentUntouched(t *testing.T) {
	faults := []struct {
		name string
		spec inject.Spec
	}{
		{"no fault", nil},
		{"abort at 0%", abortSpec(0, inject.Match{})},
		{"latency at 0%", latencySpec(0, time.Hour)},
		{"abort on another path", abortSpec(100, inject.Match{Path: "/elsewhere"})},
		{"abort for another method", abortSpec(100, inject.Match{Method: http.MethodPut})},
	}
	plain := serve(t, &upstream{})
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			up := &upstream{}
			b := inject.NewBoard(1, nil)
			if f.spec != nil {
				activate(t, b, "f", f.spec)
			}
			srv := serve(t, b.Middleware(up))
			for _, r := range rawRequests {
				want := rawExchange(t, plain.Listener.Addr().String(), r.raw)
				got := rawExchange(t, srv.Listener.Addr().String(), r.raw)
				if !bytes.Equal(got, want) {
					t.Errorf("%s: response differs from the upstream's own:\n got %q\nwant %q", r.name, got, want)
				}
			}
			if n := up.calls.Load(); n != int64(len(rawRequests)) {
				t.Errorf("upstream called %d times, want %d", n, len(rawRequests))
			}
		})
	}
}

func TestBoard_LatencyDelays(t *testing.T) {
	const delay = 30 * time.Millisecond
	up := &upstream{}
	b := inject.NewBoard(1, nil)
	a := activate(t, b, "slow", &inject.LatencySpec{Match: inject.Match{Percent: 100}, Delay: delay})
	srv := serve(t, b.Middleware(up))

	c := client(t)
	for range 3 {
		start := time.Now()
		resp, err := c.Get(srv.URL + "/api/orders")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if elapsed := time.Since(start); elapsed < delay {
			t.Errorf("request took %v, want at least the %v delay", elapsed, delay)
		}
		if resp.StatusCode != http.StatusCreated || resp.Header.Get(inject.FaultHeader) != "" {
			t.Errorf("delayed request answered %d (fault header %q), want the upstream's 201", resp.StatusCode, resp.Header.Get(inject.FaultHeader))
		}
	}
	if st := a.Stats(); st.Matched != 3 || st.Injected != 3 || up.calls.Load() != 3 {
		t.Errorf("stats %+v, upstream calls %d; want 3 matched, injected and forwarded", st, up.calls.Load())
	}
}

func TestBoard_CancelledRequestEndsLatency(t *testing.T) {
	up := &upstream{}
	b := inject.NewBoard(1, nil)
	activate(t, b, "slow", &inject.LatencySpec{Match: inject.Match{Percent: 100}, Delay: time.Hour, Jitter: time.Minute})
	h := b.Middleware(up)
	returnsPromptly(t, "a latency fault on a cancelled request", func() {
		h.ServeHTTP(httptest.NewRecorder(), cancelledRequest(http.MethodGet, "/api/orders"))
	})
}

func TestBoard_Selectors(t *testing.T) {
	tests := []struct {
		name         string
		match        inject.Match
		method, path string
		want         bool
	}{
		{"everything", inject.Match{}, http.MethodGet, "/", true},
		{"path prefix", inject.Match{Path: "/api"}, http.MethodGet, "/api/orders", true},
		{"exact path", inject.Match{Path: "/api/orders"}, http.MethodGet, "/api/orders", true},
		{"other path", inject.Match{Path: "/api/orders"}, http.MethodGet, "/api/users", false},
		{"prefix is of the path, not the query", inject.Match{Path: "/api"}, http.MethodGet, "/health?next=/api", false},
		{"method", inject.Match{Method: http.MethodPost}, http.MethodPost, "/api/orders", true},
		{"method is case-insensitive", inject.Match{Method: "post"}, http.MethodPost, "/api/orders", true},
		{"other method", inject.Match{Method: http.MethodPost}, http.MethodGet, "/api/orders", false},
		{"path and method", inject.Match{Path: "/api", Method: http.MethodDelete}, http.MethodDelete, "/api/orders/1", true},
		{"path but not method", inject.Match{Path: "/api", Method: http.MethodDelete}, http.MethodGet, "/api/orders/1", false},
		{"method but not path", inject.Match{Path: "/api", Method: http.MethodDelete}, http.MethodDelete, "/admin", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &upstream{}
			b := inject.NewBoard(1, nil)
			a := activate(t, b, "abort", abortSpec(100, tt.match))
			if got := hit(b.Middleware(up), tt.method, tt.path); got != tt.want {
				t.Errorf("%s %s aborted = %v, want %v", tt.method, tt.path, got, tt.want)
			}
			wantMatched := uint64(0)
			if tt.want {
				wantMatched = 1
			}
			if st := a.Stats(); st.Matched != wantMatched || st.Injected != wantMatched {
				t.Errorf("stats = %+v, want %d matched and injected", st, wantMatched)
			}
		})
	}
}

// decisions sends n requests through a board with one abort at percent and
// returns which ones it aborted.
func decisions(t *testing.T, seed uint64, id string, percent float64, n int) []bool {
	t.Helper()
	b := inject.NewBoard(seed, nil)
	activate(t, b, id, abortSpec(percent, inject.Match{}))
	h := b.Middleware(&upstream{})
	out := make([]bool, n)
	for i := range out {
		out[i] = hit(h, http.MethodGet, "/api/orders")
	}
	return out
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func TestBoard_Percent(t *testing.T) {
	const n = 2000
	tests := []struct {
		name    string
		percent float64
	}{
		{"30%", 30},
		{"1%", 1},
		{"50%", 50},
		{"99%", 99},
		{"fraction of a percent", 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := count(decisions(t, 42, "f", tt.percent, n))
			// Five standard deviations of a binomial count: a correct
			// board fails this about once in two million seeds, and the
			// seed is fixed.
			p := tt.percent / 100
			mean, sd := n*p, math.Sqrt(n*p*(1-p))
			if math.Abs(float64(got)-mean) > 5*sd {
				t.Errorf("%d of %d requests aborted, want %.0f ± %.0f", got, n, mean, 5*sd)
			}
		})
	}
}

func TestBoard_PercentReproducible(t *testing.T) {
	const n = 500
	base := decisions(t, 42, "phase/abort", 30, n)
	tests := []struct {
		name string
		seed uint64
		id   string
		same bool
	}{
		{"same seed and id", 42, "phase/abort", true},
		{"another seed", 43, "phase/abort", false},
		{"another id", 42, "phase/abort#2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decisions(t, tt.seed, tt.id, 30, n)
			if slices.Equal(got, base) != tt.same {
				t.Errorf("decision sequence equal to seed 42's = %v, want %v", !tt.same, tt.same)
			}
		})
	}
}

func TestBoard_PercentLatencyCounts(t *testing.T) {
	const n = 2000
	b := inject.NewBoard(7, nil)
	// A nanosecond's delay: the fault acts, the test does not wait.
	a := activate(t, b, "slow", &inject.LatencySpec{Match: inject.Match{Path: "/api", Percent: 30}, Delay: time.Nanosecond})
	up := &upstream{}
	h := b.Middleware(up)
	for i := range n {
		path := "/api/orders"
		if i%4 == 0 {
			path = "/health" // not matched: a quarter of the traffic
		}
		if hit(h, http.MethodGet, path) {
			t.Fatal("a latency fault answered a request itself")
		}
	}
	st := a.Stats()
	if st.Matched != n*3/4 {
		t.Errorf("matched = %d, want %d", st.Matched, n*3/4)
	}
	mean, sd := float64(st.Matched)*0.3, math.Sqrt(float64(st.Matched)*0.3*0.7)
	if math.Abs(float64(st.Injected)-mean) > 5*sd {
		t.Errorf("injected = %d of %d matched, want %.0f ± %.0f", st.Injected, st.Matched, mean, 5*sd)
	}
	if up.calls.Load() != n {
		t.Errorf("upstream called %d times, want every one of %d", up.calls.Load(), n)
	}
}

// clock is a settable now for the board's activation stamps.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBoard_ActivateDuplicate(t *testing.T) {
	b := inject.NewBoard(1, nil)
	activate(t, b, "a", abortSpec(100, inject.Match{}))
	if _, err := b.Activate("a", latencySpec(100, time.Second)); !errors.Is(err, inject.ErrDuplicate) {
		t.Errorf("second Activate(a) error = %v, want ErrDuplicate", err)
	}
	if got := len(b.Active()); got != 1 {
		t.Errorf("%d active faults after a refused activation, want 1", got)
	}
	b.Deactivate("a")
	if _, err := b.Activate("a", latencySpec(100, time.Second)); err != nil {
		t.Errorf("Activate(a) after Deactivate: %v", err)
	}
}

func TestBoard_Deactivate(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	b := inject.NewBoard(1, clk.now)
	a := activate(t, b, "a", abortSpec(100, inject.Match{}))
	activate(t, b, "b", abortSpec(100, inject.Match{Path: "/b"}))

	if got := b.Deactivate("unknown"); got != nil {
		t.Errorf("Deactivate(unknown) = %v, want nil", got)
	}
	clk.t = clk.t.Add(90 * time.Second)
	got := b.Deactivate("a")
	if got != a {
		t.Fatalf("Deactivate(a) = %v, want the activation", got)
	}
	st := got.Stats()
	if !st.Since.Equal(clk.t.Add(-90*time.Second)) || !st.Until.Equal(clk.t) {
		t.Errorf("Since, Until = %v, %v; want activation and deactivation times", st.Since, st.Until)
	}
	if ids := activeIDs(b); !slices.Equal(ids, []string{"b"}) {
		t.Errorf("active = %v, want [b]", ids)
	}
	if hit(b.Middleware(&upstream{}), http.MethodGet, "/a") {
		t.Error("a deactivated fault still acts")
	}
	if b.Deactivate("a") != nil {
		t.Error("second Deactivate(a) returned the activation again")
	}
}

func activeIDs(b *inject.Board) []string {
	var ids []string
	for _, a := range b.Active() {
		ids = append(ids, a.ID)
	}
	return ids
}

func TestBoard_Clear(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	b := inject.NewBoard(1, clk.now)
	activate(t, b, "a", abortSpec(100, inject.Match{}))
	activate(t, b, "b", latencySpec(100, time.Second))
	activate(t, b, "c", abortSpec(50, inject.Match{}))
	b.Deactivate("b")
	clk.t = clk.t.Add(time.Minute)

	cleared := b.Clear()
	var ids []string
	for _, a := range cleared {
		ids = append(ids, a.ID)
		if until := a.Stats().Until; !until.Equal(clk.t) {
			t.Errorf("%s: Until = %v, want %v", a.ID, until, clk.t)
		}
	}
	if !slices.Equal(ids, []string{"a", "c"}) {
		t.Errorf("Clear() = %v, want the active ones [a c] in activation order", ids)
	}
	if got := b.Active(); len(got) != 0 {
		t.Errorf("%d faults active after Clear", len(got))
	}
	if got := len(b.History()); got != 3 {
		t.Errorf("history holds %d activations, want all 3", got)
	}
	if again := b.Clear(); len(again) != 0 {
		t.Errorf("second Clear() = %d activations, want none", len(again))
	}
}

func TestBoard_Stats(t *testing.T) {
	b := inject.NewBoard(3, nil)
	abort := activate(t, b, "abort", abortSpec(50, inject.Match{Path: "/api", Method: http.MethodPost}))
	slow := activate(t, b, "slow", &inject.LatencySpec{Match: inject.Match{Path: "/api", Percent: 100}, Delay: time.Nanosecond})
	h := b.Middleware(&upstream{})

	var aborted int
	for i := range 400 {
		method := http.MethodGet
		if i%2 == 0 {
			method = http.MethodPost
		}
		if hit(h, method, "/api/orders") {
			aborted++
		}
		hit(h, http.MethodPost, "/health")
	}
	ab, sl := abort.Stats(), slow.Stats()
	if ab.Matched != 200 || ab.Injected != uint64(aborted) {
		t.Errorf("abort: %+v; want 200 matched (POSTs to /api), %d injected", ab, aborted)
	}
	// Faults run in activation order and an abort ends the request, so
	// the latency fault only sees what the abort let through.
	if want := uint64(400 - aborted); sl.Matched != want || sl.Injected != want {
		t.Errorf("latency: %+v; want %d matched and injected", sl, want)
	}
	if !sl.Until.IsZero() {
		t.Errorf("an active fault has Until %v", sl.Until)
	}
}

func TestBoard_Scope(t *testing.T) {
	const header = "X-Resctl-Phase"
	tests := []struct {
		name      string
		scope     string // the fault's; "" is unscoped
		label     string // the request's
		wantFault bool
	}{
		{"scoped fault, request of its scope", "fault", "fault", true},
		{"scoped fault, request of another scope", "fault", "baseline", false},
		{"scoped fault, unlabelled request", "fault", "", true},
		{"unscoped fault, labelled request", "", "baseline", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := inject.NewBoard(1, nil)
			b.ScopeByHeader(header)
			if _, err := b.ActivateScoped("f", abortSpec(100, inject.Match{}), tt.scope); err != nil {
				t.Fatal(err)
			}
			var sawLabel bool
			h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sawLabel = r.Header.Get(header) != ""
			}))
			r := httptest.NewRequest(http.MethodGet, "/api", nil)
			if tt.label != "" {
				r.Header.Set(header, tt.label)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Header().Get(inject.FaultHeader) != ""; got != tt.wantFault {
				t.Errorf("faulted = %v, want %v", got, tt.wantFault)
			}
			if sawLabel {
				t.Error("the scope header reached the upstream")
			}
		})
	}
}

// An armed fault acts on the requests labelled with its scope from the
// moment it is armed until it is deactivated, and on unlabelled requests
// only between Widen and Narrow: a phase's requests meet its faults
// however late the clock switches them.
func TestBoard_ArmedWidenNarrow(t *testing.T) {
	const header = "X-Resctl-Phase"
	clk := &clock{t: time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)}
	b := inject.NewBoard(1, clk.now)
	b.ScopeByHeader(header)
	if _, err := b.ActivateWith("f", abortSpec(100, inject.Match{}), inject.ActivateOptions{Scope: "fault", Armed: true}); err != nil {
		t.Fatal(err)
	}
	h := b.Middleware(&upstream{})
	faulted := func(label string) bool {
		r := httptest.NewRequest(http.MethodGet, "/api", nil)
		if label != "" {
			r.Header.Set(header, label)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Header().Get(inject.FaultHeader) != ""
	}
	type want struct{ own, other, unlabelled, listed, on bool }
	check := func(when string, w want) {
		t.Helper()
		got := want{faulted("fault"), faulted("baseline"), faulted(""), len(b.Active()) == 1, series(t, b)["resctl_fault_active{f,abort}"] == 1}
		if got != w {
			t.Errorf("%s: own phase, other phase, unlabelled, listed, on = %+v, want %+v", when, got, w)
		}
	}
	check("armed", want{own: true})
	if a := b.History()[0]; a.SwitchedOn() {
		t.Error("an armed fault says it was switched on")
	}
	// The admin API's clear and delete leave a run's armed faults alone.
	if n := len(b.Clear()); n != 0 {
		t.Errorf("Clear took %d armed faults, want none", n)
	}
	if b.Deactivate("f") != nil {
		t.Error("Deactivate took an armed fault")
	}
	check("armed, after the admin's clear", want{own: true})
	b.Widen("f")
	check("widened", want{own: true, unlabelled: true, listed: true, on: true})
	clk.t = clk.t.Add(time.Second)
	b.Narrow("f")
	narrowed := clk.t
	check("narrowed", want{own: true})
	if a := b.History()[0]; !a.SwitchedOn() || !a.Stats().Until.Equal(narrowed) {
		t.Errorf("a narrowed fault: switched on %v, until %v; want true and %v", a.SwitchedOn(), a.Stats().Until, narrowed)
	}
	clk.t = clk.t.Add(time.Second)
	if n := len(b.ClearAll()); n != 1 {
		t.Errorf("ClearAll took %d faults, want the narrowed one", n)
	}
	check("cleared at the end of the run", want{})
	if until := b.History()[0].Stats().Until; !until.Equal(narrowed) {
		t.Errorf("the end of the run moved the fault's end to %v; want it narrowed at %v", until, narrowed)
	}
}

// series gathers c through a pedantic registry (which also checks the
// collector against its descriptions) into "name{fault,kind}" → value.
//
// prometheus/testutil would read better, but it needs
// github.com/kylelemons/godebug in go.mod, which the module does not list.
func series(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			key := fmt.Sprintf("%s{%s,%s}", mf.GetName(), labels["fault"], labels["kind"])
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			default:
				t.Errorf("%s: neither counter nor gauge", key)
			}
		}
	}
	return out
}

func TestBoard_Collect(t *testing.T) {
	b := inject.NewBoard(1, nil)
	h := b.Middleware(&upstream{})
	if got := series(t, b); len(got) != 0 {
		t.Errorf("an empty board exports %v, want nothing", got)
	}

	activate(t, b, "fault/abort", abortSpec(100, inject.Match{Path: "/api"}))
	activate(t, b, "fault/latency", latencySpec(100, time.Nanosecond))
	for range 3 {
		hit(h, http.MethodGet, "/api/orders") // aborted: the latency fault never sees it
	}
	for range 2 {
		hit(h, http.MethodGet, "/health") // only the latency fault matches
	}
	b.Deactivate("fault/abort")
	hit(h, http.MethodGet, "/api/orders") // the abort is off: latency only

	tests := []struct {
		name string
		do   func()
		want map[string]float64
	}{
		{
			name: "after deactivation",
			do:   func() {},
			want: map[string]float64{
				"resctl_fault_active{fault/abort,abort}":             0,
				"resctl_fault_active{fault/latency,latency}":         1,
				"resctl_fault_injected_total{fault/abort,abort}":     3,
				"resctl_fault_injected_total{fault/latency,latency}": 3,
				"resctl_fault_matched_total{fault/abort,abort}":      3,
				"resctl_fault_matched_total{fault/latency,latency}":  3,
			},
		},
		{
			name: "after Clear counters stay",
			do:   func() { b.Clear() },
			want: map[string]float64{
				"resctl_fault_active{fault/abort,abort}":             0,
				"resctl_fault_active{fault/latency,latency}":         0,
				"resctl_fault_injected_total{fault/abort,abort}":     3,
				"resctl_fault_injected_total{fault/latency,latency}": 3,
				"resctl_fault_matched_total{fault/abort,abort}":      3,
				"resctl_fault_matched_total{fault/latency,latency}":  3,
			},
		},
		{
			name: "reactivated id: the newest activation is exported",
			do: func() {
				activate(t, b, "fault/abort", abortSpec(100, inject.Match{Path: "/api"}))
				hit(h, http.MethodGet, "/api/orders")
			},
			want: map[string]float64{
				"resctl_fault_active{fault/abort,abort}":             1,
				"resctl_fault_active{fault/latency,latency}":         0,
				"resctl_fault_injected_total{fault/abort,abort}":     1,
				"resctl_fault_injected_total{fault/latency,latency}": 3,
				"resctl_fault_matched_total{fault/abort,abort}":      1,
				"resctl_fault_matched_total{fault/latency,latency}":  3,
			},
		},
	}
	for _, tt := range tests { // in order: each step builds on the last
		tt.do()
		if got := series(t, b); !maps.Equal(got, tt.want) {
			t.Errorf("%s: series = %v,\nwant %v", tt.name, got, tt.want)
		}
	}
}

func TestNewSpec(t *testing.T) {
	tests := []struct {
		kind   string
		ok     bool
		wantPc quantity.Percent
	}{
		{"latency", true, inject.DefaultPercent},
		{"abort", true, inject.DefaultPercent},
		{"Latency", false, 0},
		{"blackhole", false, 0},
		{"", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			s, ok := inject.NewSpec(tt.kind)
			if ok != tt.ok {
				t.Fatalf("NewSpec(%q) ok = %v, want %v", tt.kind, ok, tt.ok)
			}
			if !ok {
				return
			}
			if s.Kind() != tt.kind || s.Selector().Percent != tt.wantPc {
				t.Errorf("NewSpec(%q) = kind %q, percent %v", tt.kind, s.Kind(), s.Selector().Percent)
			}
			if a, isAbort := s.(*inject.AbortSpec); isAbort && a.Status != inject.DefaultAbortStatus {
				t.Errorf("abort default status = %d, want %d", a.Status, inject.DefaultAbortStatus)
			}
			other, _ := inject.NewSpec(tt.kind)
			if other == s {
				t.Error("NewSpec returned the same Spec twice; decoding into one would change the other")
			}
		})
	}
	if got := inject.Kinds(); !slices.IsSorted(got) || len(got) == 0 {
		t.Errorf("Kinds() = %v, want a sorted, non-empty list", got)
	}
}

func TestSpec_Check(t *testing.T) {
	tests := []struct {
		name string
		spec inject.Spec
		want []string // fields with problems, in order reported
	}{
		{"valid latency", &inject.LatencySpec{Delay: time.Second, Jitter: time.Second}, nil},
		{"valid abort", &inject.AbortSpec{Status: 500}, nil},
		{"valid selector", &inject.AbortSpec{Match: inject.Match{Path: "/api", Method: "GET"}, Status: 599}, nil},
		{"latency without delay", &inject.LatencySpec{}, []string{"delay"}},
		{"negative delay", &inject.LatencySpec{Delay: -time.Second}, []string{"delay"}},
		{"negative jitter", &inject.LatencySpec{Delay: time.Second, Jitter: -time.Millisecond}, []string{"jitter"}},
		{"jitter beyond delay", &inject.LatencySpec{Delay: time.Second, Jitter: 2 * time.Second}, []string{"jitter"}},
		{"every latency problem", &inject.LatencySpec{Match: inject.Match{Path: "api"}, Jitter: -1}, []string{"path", "delay", "jitter"}},
		{"abort without status", &inject.AbortSpec{}, []string{"status"}},
		{"status below 100", &inject.AbortSpec{Status: 99}, []string{"status"}},
		{"status above 599", &inject.AbortSpec{Status: 600}, []string{"status"}},
		{"path without slash", &inject.AbortSpec{Match: inject.Match{Path: "api/orders"}, Status: 503}, []string{"path"}},
		{"every abort problem", &inject.AbortSpec{Match: inject.Match{Path: "x"}, Status: 1000}, []string{"path", "status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			tt.spec.Check(func(field, msg string) {
				if msg == "" {
					t.Errorf("%s: empty message", field)
				}
				got = append(got, field)
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("Check reported %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkBoard_Middleware_NoFault(b *testing.B) {
	benchMiddleware(b, nil)
}

func BenchmarkBoard_Middleware_NonMatchingFault(b *testing.B) {
	benchMiddleware(b, abortSpec(100, inject.Match{Path: "/admin"}))
}

func benchMiddleware(b *testing.B, spec inject.Spec) {
	board := inject.NewBoard(1, nil)
	if spec != nil {
		if _, err := board.Activate("f", spec); err != nil {
			b.Fatal(err)
		}
	}
	h := board.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

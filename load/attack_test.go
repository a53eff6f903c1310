package load_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.uber.org/goleak"

	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
)

// hangGuard bounds how long a test waits for Run to return. It is not a
// performance assertion: Run normally returns within its schedule; this only
// turns a hang into a failure.
const hangGuard = 30 * time.Second

// startServer serves h on 127.0.0.1, speaking h2c as well as HTTP/1.1 when
// asked, and closes it at test end.
func startServer(t *testing.T, h http.Handler, h2c bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// spans lays the steps out as the recorder's phases, as the runner does.
func spans(steps []load.Step) []record.PhaseSpan {
	var out []record.PhaseSpan
	var at time.Duration
	for _, s := range steps {
		out = append(out, record.PhaseSpan{Name: s.Name, Start: at, End: at + s.Duration})
		at += s.Duration
	}
	return out
}

// drained appends a pause to a schedule. The run still ends right after the
// last hit (the pacer stops it there), but vegeta's own cut-off, the
// schedule's Duration, moves out of the way: on a loaded machine a generator
// running a few milliseconds late at the very end loses the last hits, by
// design (Stats.Scheduled reports it), and a test that counts every hit
// exactly would flake.
func drained(steps ...load.Step) []load.Step {
	return append(slices.Clip(steps), load.Step{Name: "drain", Duration: 10 * time.Second})
}

// run calls load.Run in the background and waits for it, failing the test
// if it does not return within hangGuard.
func run(t *testing.T, ctx context.Context, opts load.Options) (load.Stats, error) {
	t.Helper()
	type result struct {
		st  load.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := load.Run(ctx, opts)
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-time.After(hangGuard):
		t.Fatalf("Run did not return within %v", hangGuard)
		return load.Stats{}, nil
	}
}

func TestRun_Results(t *testing.T) {
	get := []load.Request{{Method: http.MethodGet, Path: "/api/orders"}}
	tests := []struct {
		name   string
		status int
		h2c    bool
		steps  []load.Step
		want   record.Counts
		phases []uint64 // requests per phase
	}{
		{
			name:   "1s at 100/s",
			status: http.StatusOK,
			steps:  []load.Step{{Name: "only", Duration: time.Second, Rate: 100}},
			want:   record.Counts{Requests: 100, Successes: 100, Codes: map[int]uint64{200: 100}},
			phases: []uint64{100},
		},
		{
			name:   "h2c",
			status: http.StatusOK,
			h2c:    true,
			steps:  []load.Step{{Name: "only", Duration: 500 * time.Millisecond, Rate: 100}},
			want:   record.Counts{Requests: 50, Successes: 50, Codes: map[int]uint64{200: 50}},
			phases: []uint64{50},
		},
		{
			name:   "error status",
			status: http.StatusServiceUnavailable,
			steps:  []load.Step{{Name: "only", Duration: 500 * time.Millisecond, Rate: 40}},
			want:   record.Counts{Requests: 20, Errors: 20, Codes: map[int]uint64{503: 20}, Reasons: map[string]uint64{"status: 503": 20}},
			phases: []uint64{20},
		},
		{
			name:   "redirect reported, not followed",
			status: http.StatusFound,
			steps:  []load.Step{{Name: "only", Duration: 500 * time.Millisecond, Rate: 20}},
			want:   record.Counts{Requests: 10, Successes: 10, Codes: map[int]uint64{302: 10}},
			phases: []uint64{10},
		},
		{
			name:   "phases by schedule",
			status: http.StatusOK,
			steps: []load.Step{
				{Name: "baseline", Duration: 400 * time.Millisecond, Rate: 50},
				{Name: "fault", Duration: 200 * time.Millisecond, Rate: 100},
				{Name: "recovery", Duration: 400 * time.Millisecond, Rate: 25},
			},
			want:   record.Counts{Requests: 50, Successes: 50, Codes: map[int]uint64{200: 50}},
			phases: []uint64{20, 20, 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wrongProto, wrongPath atomic.Int64
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				wantMajor := 1
				if tt.h2c {
					wantMajor = 2
				}
				if r.ProtoMajor != wantMajor {
					wrongProto.Add(1)
				}
				if r.URL.Path != "/api/orders" {
					wrongPath.Add(1) // a followed redirect
				}
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, `{"ok":true}`)
			}), tt.h2c)

			steps := drained(tt.steps...)
			rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
			st, err := run(t, t.Context(), load.Options{
				BaseURL:  srv.URL + "/", // a trailing slash is not doubled
				Requests: get,
				Pacer:    load.NewPacer(steps),
				Timeout:  5 * time.Second,
				H2C:      tt.h2c,
				Recorder: rec,
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if st.Interrupted || st.Sent != tt.want.Requests || st.Scheduled != tt.want.Requests {
				t.Errorf("Stats = %+v, want %d scheduled and sent, not interrupted", st, tt.want.Requests)
			}
			got := rec.Snapshot()
			if !reflect.DeepEqual(got.Total.Counts, tt.want) {
				t.Errorf("recorded %+v, want %+v", got.Total.Counts, tt.want)
			}
			var perPhase []uint64
			for _, ph := range got.PhaseStats {
				perPhase = append(perPhase, ph.Requests)
			}
			if want := append(slices.Clip(tt.phases), 0); !slices.Equal(perPhase, want) { // nothing in the drain
				t.Errorf("requests per phase = %v, want %v", perPhase, want)
			}
			if n := wrongProto.Load(); n > 0 {
				t.Errorf("%d requests arrived over the wrong protocol (h2c %v)", n, tt.h2c)
			}
			if n := wrongPath.Load(); n > 0 {
				t.Errorf("%d requests to another path: a redirect was followed", n)
			}
		})
	}
}

func TestRun_RequestsReachServer(t *testing.T) {
	type seen struct {
		method, path, query, body, custom, contentType, phase string
		vegeta                                                bool
	}
	var mu sync.Mutex
	var got []seen
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := seen{
			method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, body: string(b),
			custom: r.Header.Get("X-Custom"), contentType: r.Header.Get("Content-Type"),
			phase:  r.Header.Get(load.PhaseHeader),
			vegeta: r.Header.Get("X-Vegeta-Seq") != "" || r.Header.Get("X-Vegeta-Attack") != "",
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}), false)

	reqs := []load.Request{
		{
			Method: http.MethodPost, Path: "/api/orders",
			Header: http.Header{"X-Custom": {"one"}, "Content-Type": {"application/json"}},
			Body:   []byte(`{"item":42}`),
		},
		{Method: http.MethodDelete, Path: "/api/orders/7?force=true", Header: http.Header{"X-Custom": {"two"}}},
	}
	steps := drained(load.Step{Name: "baseline", Duration: 200 * time.Millisecond, Rate: 50})
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	if _, err := run(t, t.Context(), load.Options{
		BaseURL: srv.URL, Requests: reqs, Pacer: load.NewPacer(steps), Recorder: rec,
	}); err != nil {
		t.Fatalf("Run: %v", err)
	}

	want := map[seen]int{
		{method: "POST", path: "/api/orders", body: `{"item":42}`, custom: "one", contentType: "application/json", phase: "baseline"}: 5,
		{method: "DELETE", path: "/api/orders/7", query: "force=true", custom: "two", phase: "baseline"}:                              5,
	}
	counts := map[seen]int{}
	for _, s := range got {
		counts[s]++
	}
	if !maps.Equal(counts, want) {
		t.Errorf("server saw %v,\nwant %v (requests round-robin, as configured, labelled with their phase, without vegeta's headers)", counts, want)
	}
	// Run must not have changed the caller's headers.
	if !reflect.DeepEqual(reqs[0].Header, http.Header{"X-Custom": {"one"}, "Content-Type": {"application/json"}}) {
		t.Errorf("caller's header changed to %v", reqs[0].Header)
	}
}

func TestRun_Timeout(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the client gives up
	}), false)
	steps := drained(load.Step{Name: "only", Duration: 100 * time.Millisecond, Rate: 20})
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	st, err := run(t, t.Context(), load.Options{
		BaseURL:  srv.URL,
		Requests: []load.Request{{Method: http.MethodGet, Path: "/slow"}},
		Pacer:    load.NewPacer(steps),
		Timeout:  50 * time.Millisecond,
		Recorder: rec,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := record.Counts{Requests: 2, Errors: 2, Codes: map[int]uint64{0: 2}, Reasons: map[string]uint64{"transport: timeout": 2}}
	if got := rec.Snapshot().Total.Counts; st.Interrupted || !reflect.DeepEqual(got, want) {
		t.Errorf("timed-out requests recorded as %+v (interrupted %v), want %+v", got, st.Interrupted, want)
	}
}

func TestRun_Cancel(t *testing.T) {
	const answered = 5 // the first requests are answered; the rest block
	var arrived atomic.Int64
	blocked := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) <= answered {
			return
		}
		select {
		case blocked <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), false)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	steps := []load.Step{{Name: "only", Duration: 10 * time.Second, Rate: 50}}
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	type result struct {
		st  load.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := load.Run(ctx, load.Options{
			BaseURL:  srv.URL,
			Requests: []load.Request{{Method: http.MethodGet, Path: "/"}},
			Pacer:    load.NewPacer(steps),
			Recorder: rec,
		})
		done <- result{st, err}
	}()

	// Cancel once the answered requests are recorded and two more hang in
	// the handler.
	guard := time.After(hangGuard)
	for range 2 {
		select {
		case <-blocked:
		case <-guard:
			t.Fatal("requests never reached the blocking handler")
		}
	}
	for rec.Snapshot().Total.Requests < answered {
		select {
		case <-guard:
			t.Fatalf("only %d answered requests recorded", rec.Snapshot().Total.Requests)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()

	var r result
	select {
	case r = <-done:
	case <-guard:
		t.Fatalf("Run did not return within %v of being cancelled", hangGuard)
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if !r.st.Interrupted {
		t.Error("Stats.Interrupted = false after cancel")
	}
	if r.st.Sent < answered+2 {
		t.Errorf("Stats.Sent = %d, want at least %d", r.st.Sent, answered+2)
	}
	if r.st.Sent >= 500 {
		t.Errorf("Stats.Sent = %d: the schedule ran on after cancel", r.st.Sent)
	}
	want := record.Counts{Requests: answered, Successes: answered, Codes: map[int]uint64{200: answered}}
	if got := rec.Snapshot().Total.Counts; !reflect.DeepEqual(got, want) {
		t.Errorf("recorded %+v, want only the answered requests %+v", got, want)
	}
}

func TestRun_MaxInFlight(t *testing.T) {
	const limit = 3
	var arrived, inFlight, peak atomic.Int64
	release := make(chan struct{})
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), false)
	t.Cleanup(func() { close(release) })

	checkCapHolds(t, limit, arrived.Load, peak.Load, "requests", func(ctx context.Context) load.Stats {
		st, _ := load.Run(ctx, load.Options{
			BaseURL:     srv.URL,
			Requests:    []load.Request{{Method: http.MethodGet, Path: "/"}},
			Pacer:       load.NewPacer(capSteps),
			Recorder:    record.NewRecorder(time.Now(), spans(capSteps), time.Second),
			MaxInFlight: limit,
		})
		return st
	})
}

func TestRun_NoRequests(t *testing.T) {
	steps := []load.Step{{Duration: time.Second, Rate: 10}}
	_, err := load.Run(t.Context(), load.Options{
		BaseURL:  "http://127.0.0.1:1",
		Pacer:    load.NewPacer(steps),
		Recorder: record.NewRecorder(time.Now(), spans(steps), time.Second),
	})
	if err == nil || !strings.Contains(err.Error(), "no requests") {
		t.Errorf("Run without requests: err = %v, want one saying there are no requests", err)
	}
}

// TestRun_LeavesNoGoroutines checks that Run stops everything it started,
// including its transport's keep-alive connections, while the target is
// still up: a target that outlives the run must not keep Run's goroutines
// alive.
func TestRun_LeavesNoGoroutines(t *testing.T) {
	for _, h2c := range []bool{false, true} {
		name := map[bool]string{false: "http1", true: "h2c"}[h2c]
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), h2c)
			before := goleak.IgnoreCurrent()
			steps := []load.Step{{Duration: 200 * time.Millisecond, Rate: 50}}
			if _, err := run(t, t.Context(), load.Options{
				BaseURL:  srv.URL,
				Requests: []load.Request{{Method: http.MethodGet, Path: "/"}},
				Pacer:    load.NewPacer(steps),
				H2C:      h2c,
				Recorder: record.NewRecorder(time.Now(), spans(steps), time.Second),
			}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if err := goleak.Find(before); err != nil {
				t.Errorf("goroutines left running after Run returned: %v", err)
			}
		})
	}
}

func TestRun_UnreachableTarget(t *testing.T) {
	// A closed server's port on loopback: connections are refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	steps := drained(load.Step{Name: "only", Duration: 200 * time.Millisecond, Rate: 25})
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	st, err := run(t, t.Context(), load.Options{
		BaseURL:  url,
		Requests: []load.Request{{Method: http.MethodGet, Path: "/"}},
		Pacer:    load.NewPacer(steps),
		Recorder: rec,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := record.Counts{Requests: 5, Errors: 5, Codes: map[int]uint64{0: 5}, Reasons: map[string]uint64{"transport: connection refused": 5}}
	if got := rec.Snapshot().Total.Counts; st.Interrupted || !reflect.DeepEqual(got, want) {
		t.Errorf("refused requests recorded as %+v, want %+v", got, want)
	}
}

// A run at a low rate is waiting for its next hit most of the time; an
// interrupt must end that wait instead of sleeping through it and then
// sending one more request.
func TestRun_CancelDuringLongWait(t *testing.T) {
	var hits atomic.Int64
	srv := startServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }), false)
	steps := []load.Step{{Name: "slow", Duration: time.Hour, Rate: 1.0 / 60}} // one request a minute
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for rec.Snapshot().Total.Requests < 1 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	st, err := run(t, ctx, load.Options{
		BaseURL:  srv.URL,
		Requests: []load.Request{{Method: http.MethodGet, Path: "/"}},
		Pacer:    load.NewPacer(steps),
		Recorder: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 1 || hits.Load() != 1 || !st.Interrupted {
		t.Errorf("sent %d, server saw %d, interrupted %v; want 1, 1, true", st.Sent, hits.Load(), st.Interrupted)
	}
}

// A success a guard's fallback served counts as a success and as a
// fallback, so SLAs can tell served-by-fallback from served-by-upstream.
func TestRun_CountsFallbacks(t *testing.T) {
	var n atomic.Int64
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 0 {
			w.Header().Set(load.FallbackHeader, "static")
		}
	}), false)
	steps := drained(load.Step{Name: "only", Duration: 200 * time.Millisecond, Rate: 50})
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	if _, err := run(t, t.Context(), load.Options{
		BaseURL:  srv.URL,
		Requests: []load.Request{{Method: http.MethodGet, Path: "/"}},
		Pacer:    load.NewPacer(steps),
		Recorder: rec,
	}); err != nil {
		t.Fatal(err)
	}
	c := rec.Snapshot().Total.Counts
	if c.Requests != 10 || c.Successes != 10 || c.Fallbacks != 5 {
		t.Errorf("counts %+v, want 10 requests, 10 successes, 5 of them fallbacks", c)
	}
}

// A target that answers 20 requests a second at most (two at a time, 100 ms
// each) under a schedule of 40/s: dropping at the cap keeps the schedule
// and counts the drops; waiting at the cap falls behind, and the response
// times, measured from when each request was due, show it while the service
// times do not — coordinated omission caught, not hidden.
func TestRun_AtTheCap(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.Context().Done():
		}
	}), false)
	steps := []load.Step{{Name: "only", Duration: time.Second, Rate: 40}}
	for _, wait := range []bool{false, true} {
		t.Run(map[bool]string{false: "drop", true: "wait"}[wait], func(t *testing.T) {
			rec := record.NewRecorder(time.Now(), spans(steps), 10*time.Second)
			st, err := run(t, t.Context(), load.Options{
				BaseURL:     srv.URL,
				Requests:    []load.Request{{Method: http.MethodGet, Path: "/"}},
				Pacer:       load.NewPacer(drained(steps...)),
				Recorder:    rec,
				MaxInFlight: 2,
				WaitAtCap:   wait,
			})
			if err != nil {
				t.Fatal(err)
			}
			ph := rec.Snapshot().PhaseStats[0]
			if ph.Requests != 40 || st.Sent+st.Dropped != 40 {
				t.Fatalf("recorded %d, sent %d + dropped %d; want the 40 scheduled", ph.Requests, st.Sent, st.Dropped)
			}
			if ph.Dropped != st.Dropped || ph.Errors < ph.Dropped {
				t.Errorf("phase dropped %d errors %d, Stats.Dropped %d: every drop is an error", ph.Dropped, ph.Errors, st.Dropped)
			}
			checkAtCap(t, st, ph, wait)
		})
	}
}

// Saved results are vegeta's own encoding: its decoder reads back one
// result per request, in the order they ended, with their status codes.
func TestRun_ResultsFile(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Other", "dropped from the file")
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set(load.FallbackHeader, "static")
	}), false)
	path := filepath.Join(t.TempDir(), "results.bin")
	rf, err := load.CreateResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	steps := []load.Step{{Name: "only", Duration: 500 * time.Millisecond, Rate: 40}}
	if _, err := run(t, t.Context(), load.Options{
		BaseURL:  srv.URL,
		Requests: []load.Request{{Method: http.MethodGet, Path: "/ok"}, {Method: http.MethodGet, Path: "/fail"}},
		Pacer:    load.NewPacer(drained(steps...)),
		Recorder: record.NewRecorder(time.Now(), spans(steps), time.Second),
		Results:  rf,
	}); err != nil {
		t.Fatal(err)
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	codes := map[uint16]int{}
	for i, res := range decodeResults(t, path) {
		codes[res.Code]++
		// Only the fallback mark is kept, for a merged report to count,
		// and when the result was due; the first result also says when
		// the schedule started.
		if got := res.Headers.Get(load.FallbackHeader); (got == "static") != (res.Code == 200) {
			t.Errorf("result %d: fallback header %q with code %d", res.Seq, got, res.Code)
		}
		if _, err := strconv.ParseInt(res.Headers.Get(load.DueHeader), 10, 64); err != nil {
			t.Errorf("result %d: %s %q: %v", res.Seq, load.DueHeader, res.Headers.Get(load.DueHeader), err)
		}
		if has := res.Headers.Get(load.StartHeader) != ""; has != (i == 0) {
			t.Errorf("result %d (#%d in the file) has %s: %v", res.Seq, i, load.StartHeader, has)
		}
		if res.Headers.Get("X-Other") != "" {
			t.Errorf("result %d kept a response header: %v", res.Seq, res.Headers)
		}
	}
	if codes[200] != 10 || codes[503] != 10 {
		t.Errorf("decoded codes %v, want 10 × 200 and 10 × 503", codes)
	}
}

// decodeResults reads a results file with vegeta's own decoder, as
// `vegeta report` would, failing the test on anything but a clean end.
func decodeResults(t *testing.T, path string) []vegeta.Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var out []vegeta.Result
	for {
		var res vegeta.Result
		if err := dec.Decode(&res); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("decode after %d results: %v", len(out), err)
			}
			return out
		}
		out = append(out, res)
	}
}

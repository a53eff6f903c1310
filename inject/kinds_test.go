package inject_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resctl/resctl/inject"
)

// bodyUpstream answers every request with a fixed body of n bytes, with a
// Content-Length, in several writes.
func bodyUpstream(n int) (http.Handler, []byte) {
	body := bytes.Repeat([]byte("0123456789"), n/10+1)[:n]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("X-Upstream", "served")
		w.Header().Set("Cache-Control", "max-age=60")
		for p := body; len(p) > 0; {
			k := min(len(p), 1024)
			if _, err := w.Write(p[:k]); err != nil {
				return
			}
			p = p[k:]
		}
	}), body
}

// through serves up behind a board with one fault parsed from params.
func through(t *testing.T, up http.Handler, kind, params string) (*inject.Activation, string) {
	t.Helper()
	s, err := inject.ParseSpec(kind, []byte(params))
	if err != nil {
		t.Fatalf("ParseSpec(%s, %s): %v", kind, params, err)
	}
	b := inject.NewBoard(1, nil)
	a := activate(t, b, kind, s)
	return a, serve(t, b.Middleware(up)).URL
}

func TestHTTPKinds_Response(t *testing.T) {
	up, body := bodyUpstream(10_000)
	tests := []struct {
		kind, params string
		check        func(t *testing.T, resp *http.Response, got []byte, readErr error)
	}{
		{"truncate", "bytes: 100", func(t *testing.T, resp *http.Response, got []byte, readErr error) {
			if readErr != nil || !bytes.Equal(got, body[:100]) {
				t.Errorf("body = %d bytes (err %v), want the first 100 and a clean end", len(got), readErr)
			}
			if resp.ContentLength == int64(len(body)) {
				t.Error("the full Content-Length was kept on a cut body")
			}
		}},
		{"truncate", "bytes: 0", func(t *testing.T, resp *http.Response, got []byte, readErr error) {
			if readErr != nil || len(got) != 0 || resp.StatusCode != 200 {
				t.Errorf("status %d, %d bytes, err %v; want an empty 200", resp.StatusCode, len(got), readErr)
			}
		}},
		{"corrupt", "rate: 10%", func(t *testing.T, _ *http.Response, got []byte, readErr error) {
			if readErr != nil || len(got) != len(body) {
				t.Fatalf("read %d bytes (err %v), want %d", len(got), readErr, len(body))
			}
			diff := 0
			for i := range got {
				if got[i] != body[i] {
					diff++
				}
			}
			// 10% of 10,000 bytes: 1,000 ± 5 standard deviations (~150).
			if diff < 850 || diff > 1150 {
				t.Errorf("%d bytes differ, want about 1000", diff)
			}
		}},
		{"header", "set: {X-Added: yes}\nremove: [Cache-Control]", func(t *testing.T, resp *http.Response, got []byte, _ error) {
			if resp.Header.Get("X-Added") != "yes" || resp.Header.Get("Cache-Control") != "" || resp.Header.Get("X-Upstream") != "served" {
				t.Errorf("headers = %v", resp.Header)
			}
			if !bytes.Equal(got, body) {
				t.Error("a header fault changed the body")
			}
		}},
		{"reset", "after: 2KiB", func(t *testing.T, resp *http.Response, got []byte, readErr error) {
			if readErr == nil {
				t.Fatalf("read %d bytes with no error, want a reset after 2048", len(got))
			}
			if len(got) != 2048 || !bytes.Equal(got, body[:2048]) {
				t.Errorf("got %d bytes before the reset, want 2048", len(got))
			}
			if !errors.Is(readErr, syscall.ECONNRESET) && !errors.Is(readErr, io.ErrUnexpectedEOF) {
				t.Errorf("read error = %v, want a connection reset", readErr)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.params, func(t *testing.T) {
			a, url := through(t, up, tt.kind, tt.params)
			resp, err := client(t).Get(url + "/api/orders")
			if err != nil {
				t.Fatal(err)
			}
			got, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			tt.check(t, resp, got, readErr)
			if st := a.Stats(); st.Matched != 1 || st.Injected != 1 || !st.Fired() {
				t.Errorf("stats = %+v, want one request matched and injected", st)
			}
		})
	}
}

func TestHTTPKinds_ResetBeforeBody(t *testing.T) {
	up, _ := bodyUpstream(100)
	_, url := through(t, up, "reset", "")
	resp, err := client(t).Get(url + "/")
	if err != nil {
		return // reset before the client parsed the headers: also a reset
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) != 0 {
		t.Errorf("read %d bytes, err %v; want the reset right after the headers", len(got), err)
	}
}

func TestHTTPKinds_Bandwidth(t *testing.T) {
	const size, rate = 30_000, 100_000 // 0.3 s at 100 kB/s
	up, body := bodyUpstream(size)
	_, url := through(t, up, "bandwidth", fmt.Sprintf("rate: %d", rate))
	start := time.Now()
	resp, err := client(t).Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body %d bytes, err %v; want it whole", len(got), err)
	}
	want := time.Duration(float64(size) / rate * float64(time.Second))
	// The pacer never runs ahead; a busy machine may run behind.
	if elapsed < want*9/10 || elapsed > want*5 {
		t.Errorf("took %v for %d bytes at %d B/s, want about %v", elapsed, size, rate, want)
	}
}

func TestHTTPKinds_RequestHeader(t *testing.T) {
	var saw http.Header
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { saw = r.Header.Clone() })
	_, url := through(t, up, "header", "side: request\nset: {X-Injected: '1'}\nremove: [Authorization]")
	req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if saw.Get("Authorization") != "" || saw.Get("X-Injected") != "1" {
		t.Errorf("upstream saw %v", saw)
	}
}

func TestHTTPKinds_LatencyDistributions(t *testing.T) {
	tests := []struct {
		params string
		lo, hi time.Duration // every draw
	}{
		{"delay: 1ms, jitter: 500us", 500 * time.Microsecond, 1500 * time.Microsecond},
		{"delay: 1ms, jitter: 200us, distribution: normal", 0, 10 * time.Millisecond},
		{"delay: 1ms, distribution: pareto, shape: 1.5", time.Millisecond, 10 * time.Millisecond},
		{"delay: 1ms, distribution: pareto, max: 3ms", time.Millisecond, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			s, err := inject.ParseSpec("latency", []byte("{"+tt.params+"}"))
			if err != nil {
				t.Fatal(err)
			}
			draws := inject.DrawDelays(s.(*inject.LatencySpec), 7, 2000)
			if lo, hi := slices.Min(draws), slices.Max(draws); lo < tt.lo || hi > tt.hi {
				t.Errorf("draws span [%v, %v], want within [%v, %v]", lo, hi, tt.lo, tt.hi)
			}
			if slices.Min(draws) == slices.Max(draws) {
				t.Error("every draw is the same")
			}
		})
	}
}

// TestHTTPKinds_Match checks the selectors every HTTP kind shares: path
// prefix, path pattern, method and request headers.
func TestHTTPKinds_Match(t *testing.T) {
	tests := []struct {
		name, params, method, path string
		header                     map[string]string
		want                       bool
	}{
		{"pattern matches", `path_pattern: '^/api/orders/[0-9]+$'`, "GET", "/api/orders/42", nil, true},
		{"pattern does not match", `path_pattern: '^/api/orders/[0-9]+$'`, "GET", "/api/orders/x", nil, false},
		{"header with value", `headers: {X-Tenant: beta}`, "GET", "/", map[string]string{"X-Tenant": "beta"}, true},
		{"header with another value", `headers: {X-Tenant: beta}`, "GET", "/", map[string]string{"X-Tenant": "prod"}, false},
		{"header absent", `headers: {X-Tenant: beta}`, "GET", "/", nil, false},
		{"header present, any value", `headers: {x-debug: ""}`, "GET", "/", map[string]string{"X-Debug": "1"}, true},
		{"all of them", `{path: /api, method: POST, headers: {X-A: "1"}}`, "POST", "/api/x", map[string]string{"X-A": "1"}, true},
		{"all but the method", `{path: /api, method: POST, headers: {X-A: "1"}}`, "GET", "/api/x", map[string]string{"X-A": "1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := inject.ParseSpec("abort", []byte(tt.params))
			if err != nil {
				t.Fatal(err)
			}
			b := inject.NewBoard(1, nil)
			activate(t, b, "f", s)
			r := httptest.NewRequest(tt.method, tt.path, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := &headerRecorder{h: http.Header{}}
			b.Middleware(&upstream{}).ServeHTTP(w, r)
			if got := w.h.Get(inject.FaultHeader) != ""; got != tt.want {
				t.Errorf("aborted = %v, want %v", got, tt.want)
			}
		})
	}
}

// headerRecorder is the least ResponseWriter: it keeps headers.
type headerRecorder struct{ h http.Header }

func (w *headerRecorder) Header() http.Header         { return w.h }
func (w *headerRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerRecorder) WriteHeader(int)             {}

func TestSpec_CheckNewKinds(t *testing.T) {
	tests := []struct {
		kind, params string
		want         []string // fields with problems
	}{
		{"latency", "delay: 1s, distribution: zipf", []string{"distribution"}},
		{"latency", "delay: 1s, max: -1s", []string{"max"}},
		{"bandwidth", "", []string{"rate"}},
		{"bandwidth", "rate: -5", []string{"rate"}},
		{"truncate", "bytes: -1", []string{"bytes"}},
		{"corrupt", "rate: 0", []string{"rate"}},
		{"header", "", []string{"set"}},
		{"header", "side: both, set: {A: b}", []string{"side"}},
		{"header", "set: {'a b': c}", []string{"set"}},
		{"abort", "path_pattern: '('", []string{"path_pattern"}},
		{"abort", "schedule: {on: 5s}", []string{"schedule.on"}},
		{"abort", "schedule: {ramp: {to: 50%}}", []string{"schedule.ramp.over"}},
		{"abort", "percent: 50, schedule: {ramp: {to: 50%, over: 10s}}", []string{"percent"}},
		{"abort", "schedule: {first: -1}", []string{"schedule.first"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.params, func(t *testing.T) {
			_, err := inject.ParseSpec(tt.kind, []byte("{"+tt.params+"}"))
			var se *inject.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a SpecError", err)
			}
			var got []string
			for _, p := range se.Problems {
				got = append(got, p.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems %v (%v), want fields %v", got, err, tt.want)
			}
		})
	}
}

func TestParseSpecFor_Layers(t *testing.T) {
	if _, err := inject.ParseSpecFor(inject.LayerTCP, "blackhole", nil); err != nil {
		t.Errorf("tcp blackhole: %v", err)
	}
	_, err := inject.ParseSpec("blackhole", nil)
	if err == nil || !strings.Contains(err.Error(), "tcp proxies") {
		t.Errorf("http blackhole: err = %v, want a pointer to tcp proxies", err)
	}
	s, err := inject.ParseSpecFor(inject.LayerTCP, "latency", []byte("delay: 5ms"))
	if err != nil || inject.LayerOf(s) != inject.LayerTCP {
		t.Errorf("tcp latency = %T, %v", s, err)
	}
	if s, _ := inject.ParseSpec("latency", []byte("delay: 5ms")); inject.LayerOf(s) != inject.LayerHTTP {
		t.Errorf("http latency layer = %v", inject.LayerOf(s))
	}
}

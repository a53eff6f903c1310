package inject_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/quantity"
)

// minimal holds, per layer, the least configuration each kind needs to
// pass Check. Delays are long so that a fault which ignores a cancelled
// request hangs the conformance test instead of passing it by luck. A kind
// missing here fails TestConformance: every kind must go through the suite.
var minimal = map[inject.Layer]map[string]string{
	inject.LayerHTTP: {
		"latency":   "delay: 1h",
		"abort":     "",
		"reset":     "after: 4",
		"bandwidth": "rate: 1",
		"truncate":  "bytes: 3",
		"corrupt":   "rate: 100%",
		"header":    "set: {X-Upstream: changed}",
	},
	inject.LayerGRPC: {
		"abort":        "",
		"delay":        "delay: 1h",
		"reset":        "after: 1",
		"stream_error": "after: 1",
		"metadata":     "set: {x-upstream: changed}",
		"bandwidth":    "rate: 1",
	},
}

// conformingSpec returns a Spec of a layer's kind with its defaults, the
// minimal parameters and the given percent, parsed as the admin API parses
// it.
func conformingSpec(t *testing.T, layer inject.Layer, kind string, percent quantity.Percent) inject.HTTPSpec {
	t.Helper()
	params, ok := minimal[layer][kind]
	if !ok {
		t.Fatalf("%s kind %q has no minimal parameters in the conformance suite: add them", layer, kind)
	}
	s, err := inject.ParseSpecFor(layer, kind, fmt.Appendf(nil, "{%s%spercent: %v}", params, sepIf(params), float64(percent)))
	if err != nil {
		t.Fatalf("kind %q: minimal spec: %v", kind, err)
	}
	if s.Selector().Percent != percent {
		t.Fatalf("kind %q: percent %v did not reach the selector", kind, percent)
	}
	hs, ok := s.(inject.HTTPSpec)
	if !ok {
		t.Fatalf("kind %q: %T is not an HTTPSpec", kind, s)
	}
	return hs
}

func sepIf(params string) string {
	if params == "" {
		return ""
	}
	return ", "
}

// TestConformance runs every fault kind of the request layers (http and
// grpc) through what every fault must do: leave traffic untouched at 0%,
// give up at once when the client has gone, and leave no goroutine behind.
// gRPC faults act on any request their selector matches, so plain HTTP
// requests exercise them as well as calls would.
func TestConformance(t *testing.T) {
	for _, layer := range []inject.Layer{inject.LayerHTTP, inject.LayerGRPC} {
		t.Run(string(layer), func(t *testing.T) { conformance(t, layer) })
	}
}

func conformance(t *testing.T, layer inject.Layer) {
	kinds := inject.KindsFor(layer)
	if len(kinds) == 0 {
		t.Fatal("no fault kinds")
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			// Registered first, so it runs after the servers and clients
			// below are closed.
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

			t.Run("zero percent leaves traffic byte-identical", func(t *testing.T) {
				plain := serve(t, &upstream{})
				b := inject.NewBoard(1, nil)
				a := activate(t, b, kind, conformingSpec(t, layer, kind, 0))
				srv := serve(t, b.Middleware(&upstream{}))
				for _, r := range rawRequests {
					want := rawExchange(t, plain.Listener.Addr().String(), r.raw)
					got := rawExchange(t, srv.Listener.Addr().String(), r.raw)
					if !bytes.Equal(got, want) {
						t.Errorf("%s: response changed:\n got %q\nwant %q", r.name, got, want)
					}
				}
				if st := a.Stats(); st.Matched != uint64(len(rawRequests)) || st.Injected != 0 {
					t.Errorf("stats = %+v, want every request matched and none injected", st)
				}
			})

			t.Run("fault returns once the request is cancelled", func(t *testing.T) {
				f := conformingSpec(t, layer, kind, 100).Build()
				returnsPromptly(t, kind+" Inject", func() {
					f.Inject(httptest.NewRecorder(), cancelledRequest(http.MethodGet, "/api/orders"))
				})
			})

			t.Run("board returns once the request is cancelled", func(t *testing.T) {
				b := inject.NewBoard(1, nil)
				activate(t, b, kind, conformingSpec(t, layer, kind, 100))
				h := b.Middleware(&upstream{})
				returnsPromptly(t, kind+" through the board", func() {
					h.ServeHTTP(httptest.NewRecorder(), cancelledRequest(http.MethodGet, "/api/orders"))
				})
			})

			t.Run("client going away ends the request", func(t *testing.T) {
				b := inject.NewBoard(1, nil)
				activate(t, b, kind, conformingSpec(t, layer, kind, 100))
				srv := serve(t, b.Middleware(&upstream{}))
				c := client(t)
				c.Timeout = 50 * time.Millisecond // the client gives up; the server must too
				resp, err := c.Get(srv.URL + "/api/orders")
				if err == nil {
					resp.Body.Close()
				}
				// srv.Close (at cleanup) waits for the handler: a fault
				// that kept waiting would hang the test there, and leak.
			})
		})
	}
}

package verify_test

import (
	"errors"
	"maps"
	"math"
	"testing"

	"github.com/resctl/resctl/verify"
)

// mapEnv is an Env backed by a map: absent keys have no data.
type mapEnv map[string]float64

func (m mapEnv) Value(name string) (float64, bool) {
	v, ok := m[name]
	return v, ok
}

// window is a plausible load window: 1234 requests at ~50/s, 99.82% success.
var window = mapEnv{
	"requests":      1234,
	"rps":           49.87,
	"success_rate":  0.9982,
	"error_rate":    0.0018,
	"fallback_rate": 0,
	"p50":           0.050,
	"p90":           0.080,
	"p95":           0.100,
	"p99":           0.121,
	"p999":          0.300,
	"min":           0.00085,
	"mean":          0.060,
	"max":           1.25,
}

// without returns a copy of env lacking the named series.
func without(env mapEnv, names ...string) mapEnv {
	out := maps.Clone(env)
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// with returns a copy of env with name set to v.
func with(env mapEnv, name string, v float64) mapEnv {
	out := maps.Clone(env)
	out[name] = v
	return out
}

func TestExpr_Eval(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		env      mapEnv
		passed   bool
		observed string
		values   map[string]float64
		noData   bool
	}{
		{
			name: "pass", src: "success_rate >= 99% and p99 < 150ms", env: window,
			passed: true, observed: "success_rate=99.82%, p99=121ms",
			values: map[string]float64{"success_rate": 0.9982, "p99": 0.121},
		},
		{
			name: "fail", src: "p99 < 100ms", env: window,
			passed: false, observed: "p99=121ms",
			values: map[string]float64{"p99": 0.121},
		},
		{
			name: "fail on one side of and", src: "success_rate >= 99.9% and p99 < 150ms", env: window,
			passed: false, observed: "success_rate=99.82%, p99=121ms",
		},
		{
			name: "or observes both sides", src: "p99 < 1s or error_rate < 1%", env: window,
			passed: true, observed: "p99=121ms, error_rate=0.18%",
		},
		{
			name: "each series listed once in order", src: "requests > 1000 and p99 >= p50 and requests < 2000", env: window,
			passed: true, observed: "requests=1234, p99=121ms, p50=50ms",
		},
		{name: "exact duration equality", src: "p99 == 121ms", env: window, passed: true},
		{name: "exact percent equality", src: "success_rate == 99.82%", env: window, passed: true},
		{name: "inequality", src: "fallback_rate != 0", env: window, passed: false, observed: "fallback_rate=0%"},
		{name: "not", src: "not (rps >= 50/s)", env: window, passed: true, observed: "rps=49.9/s"},
		{name: "bang without parens", src: "!p99 > 1s", env: window, passed: true},
		{name: "scaled series", src: "mean < 2 * p50", env: window, passed: true},
		{name: "plain ratio of durations", src: "p99 / p50 < 2", env: window, passed: false},
		{name: "difference", src: "max - min > 1s", env: window, passed: true, observed: "max=1.25s, min=850µs"},
		{name: "precedence", src: "p99 < 1ms or p50 < 1s and p95 < 1s", env: window, passed: true},
		{name: "parenthesised precedence", src: "(p99 < 1ms or p50 < 1s) and p95 < 10ms", env: window, passed: false},
		{name: "unary minus", src: "-p99 < -100ms", env: window, passed: true},
		{name: "ratio times count", src: "error_rate * requests < 3", env: window, passed: true},
		{name: "scaled ratio", src: "2 * error_rate < 0.5% and error_rate * 2 < 0.5%", env: window, passed: true},
		{name: "rate without unit", src: "rps > 40", env: window, passed: true},
		{name: "constant condition", src: "1KiB > 1KB", env: window, passed: true, observed: "", values: map[string]float64{}},
		{
			name: "division by zero is infinite", src: "p99 / p50 > 1000",
			env: with(window, "p50", 0), passed: true, observed: "p99=121ms, p50=0s",
		},
		{
			name: "missing data", src: "success_rate >= 99% and p99 < 150ms", env: without(window, "p99"),
			noData: true, observed: "success_rate=99.82%, p99=n/a",
			values: map[string]float64{"success_rate": 0.9982},
		},
		{
			name: "all missing", src: "p99 < 1s or requests > 0", env: mapEnv{},
			noData: true, observed: "p99=n/a, requests=n/a", values: map[string]float64{},
		},
		{
			name: "NaN is no data", src: "p99 < 1s", env: with(window, "p99", math.NaN()),
			noData: true, observed: "p99=n/a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := verify.Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.src, err)
			}
			res, err := evalValues(e, tt.env)
			switch {
			case tt.noData && !errors.Is(err, verify.ErrNoData):
				t.Errorf("Eval error = %v, want one wrapping ErrNoData", err)
			case !tt.noData && err != nil:
				t.Errorf("Eval error = %v, want nil", err)
			}
			if res.Passed != tt.passed {
				t.Errorf("Passed = %v, want %v (observed %q)", res.Passed, tt.passed, res.Observed)
			}
			if tt.observed != "" || tt.values != nil {
				if res.Observed != tt.observed {
					t.Errorf("Observed = %q, want %q", res.Observed, tt.observed)
				}
			}
			if tt.values != nil && !maps.Equal(res.Values, tt.values) {
				t.Errorf("Values = %v, want %v", res.Values, tt.values)
			}
		})
	}
}

func TestExpr_EvalNoDataMessage(t *testing.T) {
	e, err := verify.Parse("p50 < 1s and p99 < 1s and success_rate > 99%")
	if err != nil {
		t.Fatal(err)
	}
	_, err = evalValues(e, without(window, "p50", "p99"))
	if want := "no data for p50, p99"; err == nil || err.Error() != want {
		t.Errorf("Eval error = %v, want %q", err, want)
	}
}

package verify_test

import (
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/verify"
)

// checkCase is one Check of an expression against an Env in a Scope.
type checkCase struct {
	name     string
	src      string
	env      verify.RunEnv
	scope    verify.Scope
	passed   bool
	observed string             // checked if not empty
	values   map[string]float64 // checked if not nil
	kind     string             // checked if not empty
	at       time.Duration      // checked if kind is time_to or recovery_time; never = -1
	err      error              // wanted with errors.Is; nil for none
}

const never = time.Duration(-1)

func runCheckCases(t *testing.T, tests []checkCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := verify.Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.src, err)
			}
			res, err := e.Check(tt.env, tt.scope)
			switch {
			case tt.err == nil && err != nil:
				t.Errorf("Check error = %v, want nil", err)
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Errorf("Check error = %v, want one wrapping %v", err, tt.err)
			}
			if res.Passed != tt.passed {
				t.Errorf("Passed = %v, want %v (observed %q)", res.Passed, tt.passed, res.Observed)
			}
			if tt.observed != "" && res.Observed != tt.observed {
				t.Errorf("Observed = %q, want %q", res.Observed, tt.observed)
			}
			if tt.values != nil && !maps.Equal(res.Values, tt.values) {
				t.Errorf("Values = %v, want %v", res.Values, tt.values)
			}
			if tt.kind == "" {
				return
			}
			if res.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q", res.Kind, tt.kind)
			}
			switch {
			case tt.kind == verify.ResultCheck && res.At != nil:
				t.Errorf("At = %v, want nil for a check", *res.At)
			case tt.kind == verify.ResultCheck:
			case tt.at == never && res.At != nil:
				t.Errorf("At = %v, want nil (never)", *res.At)
			case tt.at != never && res.At == nil:
				t.Errorf("At = nil, want %v", tt.at)
			case tt.at != never && *res.At != tt.at:
				t.Errorf("At = %v, want %v", *res.At, tt.at)
			}
		})
	}
}

// scopeOf returns the Scope of an SLA during the named phase ("" for the
// whole run), detecting and recovering from the fault phase.
func scopeOf(e *tableEnv, during string) verify.Scope {
	w := e.run
	if during != "" {
		w = e.phases[during]
	}
	return verify.Scope{Window: w, DetectFrom: e.phases["fault"], RecoverFrom: e.phases["fault"]}
}

func TestExpr_CheckTimeTo(t *testing.T) {
	// Half the requests fail in seconds 13 to 16: with 1s buckets the
	// error is detected at bucket 13, exactly 3s into the fault phase.
	env := threePhases().failing(0.5, 13, 14, 15, 16)
	sc := scopeOf(env, "")
	runCheckCases(t, []checkCase{
		{
			name: "detected at bucket N", src: "time_to(error_rate > 5%) < 5s", env: env, scope: sc,
			passed: true, observed: "time_to=3s", values: map[string]float64{"time_to": 3},
			kind: verify.ResultTimeTo, at: sec(13),
		},
		{
			name: "too slow", src: "time_to(error_rate > 5%) <= 2s", env: env, scope: sc,
			passed: false, observed: "time_to=3s", kind: verify.ResultTimeTo, at: sec(13),
		},
		{
			name: "from another phase", src: "time_to(error_rate > 5%, from: baseline) == 13s", env: env, scope: sc,
			passed: true, values: map[string]float64{"time_to": 13}, kind: verify.ResultTimeTo, at: sec(13),
		},
		{
			name: "from a quoted phase", src: `time_to(error_rate > 5%, from: "fault") == 3s`, env: env, scope: sc,
			passed: true, kind: verify.ResultTimeTo, at: sec(13),
		},
		{
			name: "from the run", src: "time_to(error_rate > 5%, from: run) == 13s", env: env, scope: sc,
			passed: true, kind: verify.ResultTimeTo, at: sec(13),
		},
		{
			name: "never", src: "time_to(error_rate > 60%) < 5s", env: env, scope: sc,
			passed: false, observed: "time_to=never", values: map[string]float64{},
			kind: verify.ResultTimeTo, at: never,
		},
		{
			name: "never fails whatever the comparison", src: "time_to(error_rate > 60%) > 1s", env: env, scope: sc,
			passed: false, observed: "time_to=never", kind: verify.ResultTimeTo, at: never,
		},
		{
			name: "event before the start is not seen", src: "time_to(error_rate > 5%, from: recovery) < 1h", env: env, scope: sc,
			passed: false, observed: "time_to=never", kind: verify.ResultTimeTo, at: never,
		},
		{
			name: "holds at the start", src: "time_to(success_rate > 0) == 0s", env: env, scope: sc,
			passed: true, kind: verify.ResultTimeTo, at: sec(10),
		},
		{
			name: "observed beside a check", src: "p99 during baseline < 50ms and time_to(error_rate > 5%) < 5s", env: env, scope: sc,
			passed: true, observed: "p99 during baseline=10ms, time_to=3s", kind: verify.ResultTimeTo, at: sec(13),
		},
		{
			name: "first timing function decides kind and instant",
			src:  "recovery_time(error_rate < 1%) < 5s and time_to(error_rate > 5%) < 5s", env: env, scope: sc,
			passed: true, observed: "recovery_time=0s, time_to=3s", kind: verify.ResultRecoveryTime, at: sec(20),
		},
		{
			name: "repeated timing functions are numbered",
			src:  "time_to(error_rate > 5%) < 5s and time_to(error_rate > 40%, from: baseline) < 15s", env: env, scope: sc,
			passed: true, observed: "time_to=3s, time_to#2=13s", kind: verify.ResultTimeTo, at: sec(13),
		},
	})
}

func TestExpr_CheckNoDataInstants(t *testing.T) {
	// No requests at all in seconds 10 to 12: those instants have no
	// error_rate, which counts as "the condition does not hold".
	env := threePhases()
	for s := 10; s < 13; s++ {
		env.buckets[s] = bucket{}
	}
	env.phases["silent"] = verify.Window{From: sec(10), To: sec(13)}
	env.states[verify.StateRef{Kind: "breaker", Name: "payments"}] = stateHistory{initial: "closed"}
	sc := scopeOf(env, "")
	runCheckCases(t, []checkCase{
		{name: "no data does not hold", src: "time_to(error_rate < 1%) == 3s", env: env, scope: sc, passed: true, at: sec(13), kind: verify.ResultTimeTo},
		{name: "nor does its negation", src: "time_to(not (error_rate >= 1%)) == 3s", env: env, scope: sc, passed: true, at: sec(13), kind: verify.ResultTimeTo},
		{name: "or with a true side holds", src: `time_to(error_rate < 1% or breaker("payments") == closed) == 0s`, env: env, scope: sc, passed: true, at: sec(10), kind: verify.ResultTimeTo},
		{name: "and with a false side is false", src: `time_to(not (error_rate < 1% and breaker("payments") == open)) == 0s`, env: env, scope: sc, passed: true, at: sec(10), kind: verify.ResultTimeTo},
		{
			name: "a window with some data", src: "error_rate during fault < 1%", env: env, scope: sc,
			observed: "error_rate during fault=0%", passed: true,
		},
		{
			name: "outside instants no data is an error", src: "error_rate during silent < 1%", env: env, scope: sc,
			observed: "error_rate during silent=n/a", err: verify.ErrNoData,
		},
	})
}

func TestExpr_CheckStates(t *testing.T) {
	// The breaker opens 2.345s into the fault phase, between two steps,
	// goes half-open 0.5s after it and closes 1.25s after it.
	env := threePhases()
	env.states[verify.StateRef{Kind: "breaker", Name: "payments"}] = stateHistory{
		initial: "closed",
		changes: []stateChange{{ms(12345), "open"}, {ms(20500), "half_open"}, {ms(21250), "closed"}},
	}
	env.states[verify.StateRef{Kind: "fault", Name: "latency-1"}] = stateHistory{
		initial: "off",
		changes: []stateChange{{sec(10), "on"}, {sec(20), "off"}},
	}
	env.states[verify.StateRef{Kind: "pool", Name: "db"}] = stateHistory{initial: "ready"}
	sc := scopeOf(env, "")
	runCheckCases(t, []checkCase{
		{
			name: "exact transition instant", src: `time_to(breaker("payments") == open) < 3s`, env: env, scope: sc,
			passed: true, values: map[string]float64{"time_to": ms(2345).Seconds()},
			kind: verify.ResultTimeTo, at: ms(12345),
		},
		{
			name: "recovery at the exact instant", src: `recovery_time(breaker("payments") == closed, hold: 3s) < 2s`, env: env, scope: sc,
			passed: true, observed: "recovery_time=1.25s", values: map[string]float64{"recovery_time": 1.25},
			kind: verify.ResultRecoveryTime, at: ms(21250),
		},
		{
			name: "hold defaults to zero", src: `recovery_time(breaker("payments") != "open") == 500ms`, env: env, scope: sc,
			passed: true, kind: verify.ResultRecoveryTime, at: ms(20500),
		},
		{
			name: "state at the end of the SLA window", src: `breaker("payments") == open`, env: env, scope: scopeOf(env, "fault"),
			passed: true, observed: `breaker("payments")=open`, values: map[string]float64{}, kind: verify.ResultCheck,
		},
		{
			name: "a change at the window's end belongs to the next window", src: `fault("latency-1") == on`, env: env, scope: scopeOf(env, "fault"),
			passed: true, observed: `fault("latency-1")=on`,
		},
		{
			name: "state literal on the left", src: `closed == breaker("payments")`, env: env, scope: sc,
			passed: true, observed: `breaker("payments")=closed`,
		},
		{
			name: "fault state", src: `fault("latency-1") == off and time_to(fault("latency-1") == on, from: run) == 10s`, env: env, scope: sc,
			passed: true, observed: `fault("latency-1")=off, time_to=10s`,
		},
		{
			name: "generic state", src: `state("pool", "db") != "draining"`, env: env, scope: sc,
			passed: true, observed: `state("pool", "db")=ready`,
		},
		{
			name: "unknown breaker", src: `breaker("orders") == open`, env: env, scope: sc,
			err: verify.ErrUnknownName,
		},
	})
}

func TestExpr_CheckRecoveryTime(t *testing.T) {
	// Everything fails during the fault phase. After it the signal holds
	// for 3s (20-22), fails at 23, then holds for 6s (24-29) to the end.
	flapping := threePhases().failing(1, append(seconds(10, 20), 23)...)
	sc := scopeOf(flapping, "")
	down := threePhases().failing(1, seconds(10, 30)...)
	runCheckCases(t, []checkCase{
		{
			name: "recovers at the stretch that holds", src: "recovery_time(error_rate < 1%, hold: 5s) < 10s", env: flapping, scope: sc,
			passed: true, observed: "recovery_time=4s", values: map[string]float64{"recovery_time": 4},
			kind: verify.ResultRecoveryTime, at: sec(24),
		},
		{
			name: "a short hold is met by the first stretch", src: "recovery_time(error_rate < 1%, hold: 3s) == 0s", env: flapping, scope: sc,
			passed: true, kind: verify.ResultRecoveryTime, at: sec(20),
		},
		{
			name: "hold up to the end of the run", src: "recovery_time(error_rate < 1%, hold: 6s) == 4s", env: flapping, scope: sc,
			passed: true, kind: verify.ResultRecoveryTime, at: sec(24),
		},
		{
			name: "hold past the end of the run", src: "recovery_time(error_rate < 1%, hold: 7s) < 1h", env: flapping, scope: sc,
			passed: false, observed: "recovery_time=never", kind: verify.ResultRecoveryTime, at: never,
		},
		{
			name: "from another phase's end", src: "recovery_time(error_rate < 1%, hold: 5s, from: baseline) == 14s", env: flapping, scope: sc,
			passed: true, kind: verify.ResultRecoveryTime, at: sec(24),
		},
		{
			name: "never recovers", src: "recovery_time(error_rate < 1%, hold: 1s) < 1h", env: down, scope: scopeOf(down, ""),
			passed: false, observed: "recovery_time=never", values: map[string]float64{},
			kind: verify.ResultRecoveryTime, at: never,
		},
	})
}

func TestExpr_CheckWindows(t *testing.T) {
	// The first and last seconds of the fault phase are slow: windows
	// that end or start at its edges must not see them.
	env := threePhases()
	env.buckets[10].p99 = ms(900)
	env.buckets[19].p99 = ms(800)
	env.buckets[12].p99 = ms(30)
	env.scraped = []scrapedSeries{
		gauge("target", "go_goroutines", nil, append(append(repeat(10, 11), repeat(12, 4)...), repeat(20, 15)...)...),
	}
	runCheckCases(t, []checkCase{
		{name: "phase window excludes the next phase's first step", src: "p99 during baseline < 100ms", env: env, scope: scopeOf(env, ""), passed: true, observed: "p99 during baseline=10ms"},
		{name: "phase window includes its first step", src: "p99 during fault > 800ms", env: env, scope: scopeOf(env, ""), passed: true, observed: "p99 during fault=900ms"},
		{name: "SLA window", src: "p99 < 100ms", env: env, scope: scopeOf(env, "recovery"), passed: true},
		{name: "whole run", src: "p99 during run == 900ms and requests == 3000", env: env, scope: scopeOf(env, "baseline"), passed: false, observed: "p99 during run=900ms, requests=1000"},
		{name: "trailing window ends with the SLA window", src: "p99 over 5s == 800ms", env: env, scope: scopeOf(env, "fault"), passed: true},
		{name: "trailing window excludes what is before it", src: "p99 over 1s < 100ms", env: env, scope: scopeOf(env, "recovery"), passed: true},
		{name: "trailing window is clipped to the run", src: "requests over 1h == 3000", env: env, scope: scopeOf(env, ""), passed: true},
		{
			name: "during inside an instant condition", src: "time_to(p99 > 2 * p99 during baseline, from: recovery) < 1s", env: env, scope: scopeOf(env, ""),
			passed: false, observed: "time_to=never",
		},
		{
			name: "during inside an instant condition detects", src: "time_to(p99 > 2 * p99 during baseline) == 0s", env: env, scope: scopeOf(env, ""),
			passed: true, observed: "time_to=0s", kind: verify.ResultTimeTo, at: sec(10),
		},
		{
			// At instant t, over 3s covers the steps t-2, t-1 and t: the
			// slow step 10 is out of it from 13 on.
			name: "over inside an instant condition", src: "recovery_time(p99 over 3s < 100ms, from: baseline) == 3s", env: env, scope: scopeOf(env, ""),
			passed: true, kind: verify.ResultRecoveryTime, at: sec(13),
		},
		{
			// The sample at 15s ends the step that starts at 14s.
			name: "selector against its baseline average",
			src:  "time_to(last(target:go_goroutines) > 1.5 * avg(target:go_goroutines during baseline)) == 4s", env: env, scope: scopeOf(env, ""),
			passed: true, kind: verify.ResultTimeTo, at: sec(14),
		},
		{
			name: "the same in a check", src: "last(target:go_goroutines) <= 1.1 * avg(target:go_goroutines during baseline)", env: env, scope: scopeOf(env, "fault"),
			passed: false, observed: "last(target:go_goroutines)=20, avg(target:go_goroutines during baseline)=10",
		},
		{
			name: "window outside the call is the same window", src: "avg(target:go_goroutines) during baseline == avg(target:go_goroutines during baseline)", env: env, scope: scopeOf(env, ""),
			passed: true, observed: "avg(target:go_goroutines during baseline)=10",
		},
		{name: "bare selector in an instant condition", src: "time_to(target:go_goroutines >= 20) == 4s", env: env, scope: scopeOf(env, ""), passed: true, at: sec(14), kind: verify.ResultTimeTo},
		{name: "unknown phase", src: "p99 during warmup < 1s", env: env, scope: scopeOf(env, ""), err: verify.ErrUnknownName},
	})
}

func TestExpr_CheckAggregations(t *testing.T) {
	env := threePhases()
	env.phases["inner"] = verify.Window{From: sec(1), To: sec(4)}
	env.phases["empty"] = verify.Window{From: ms(1100), To: ms(1900)}
	env.scraped = []scrapedSeries{
		gauge("target", "queue_depth", nil, 5, 3, 8, 1, 9, 4),
		// Two series sampled at different instants: their sum is
		// 1, 11, 12, 22, 23 at 0s, 1s, 2s, 3s, 4s.
		{source: "db", metric: "connections", labels: map[string]string{"pool": "a"}, points: []verify.Point{{T: 0, V: 1}, {T: sec(2), V: 2}, {T: sec(4), V: 3}}},
		{source: "db", metric: "connections", labels: map[string]string{"pool": "b"}, points: []verify.Point{{T: sec(1), V: 10}, {T: sec(3), V: 20}}},
	}
	whole := verify.Scope{Window: verify.Window{From: 0, To: sec(5)}}
	runCheckCases(t, []checkCase{
		{
			name: "over the SLA window", src: "avg(target:queue_depth) == 5 and min(target:queue_depth) == 1 and max(target:queue_depth) == 9 and first(target:queue_depth) == 5 and last(target:queue_depth) == 4",
			env: env, scope: whole, passed: true,
			values: map[string]float64{"avg(target:queue_depth)": 5, "min(target:queue_depth)": 1, "max(target:queue_depth)": 9, "first(target:queue_depth)": 5, "last(target:queue_depth)": 4},
		},
		{
			name: "over a phase, both edges included", src: "avg(target:queue_depth during inner) == 5.25 and first(target:queue_depth during inner) == 3 and last(target:queue_depth during inner) == 9",
			env: env, scope: whole, passed: true,
		},
		{name: "bare selector is the latest sample", src: "target:queue_depth == 9", env: env, scope: verify.Scope{Window: verify.Window{From: sec(1), To: ms(4500)}}, passed: true},
		{name: "bare selector with a window needs a sample in it", src: "target:queue_depth during empty > 0", env: env, scope: whole, err: verify.ErrNoData, observed: "target:queue_depth during empty=n/a"},
		{name: "function over a window without samples", src: "avg(target:queue_depth during empty) > 0", env: env, scope: whole, err: verify.ErrNoData},
		{
			name: "sum over series", src: "avg(db:connections) == 13.8 and last(db:connections) == 23 and min(db:connections) == 1 and db:connections == 23",
			env: env, scope: verify.Scope{Window: verify.Window{From: 0, To: sec(4)}}, passed: true,
		},
		{name: "latest sample of a sum", src: "db:connections == 22", env: env, scope: verify.Scope{Window: verify.Window{From: 0, To: ms(3999)}}, passed: true},
		{name: "one series of a sum", src: `max(db:connections{pool="b"}) == 20`, env: env, scope: whole, passed: true},
		{name: "no series matched", src: "avg(db:nothing) > 0", env: env, scope: whole, err: verify.ErrNoData, observed: "avg(db:nothing)=n/a"},
	})
}

func TestExpr_CheckRateIncrease(t *testing.T) {
	env := threePhases()
	env.scraped = []scrapedSeries{
		// Restarts between 3s and 4s: 30 → 5 is an increase of 5.
		gauge("target", "http_requests_total", map[string]string{"code": "200"}, 0, 10, 20, 30, 5, 15, 25),
		// Errors start at 13s, 5 a second.
		gauge("target", "http_requests_total", map[string]string{"code": "500"}, append(repeat(0, 13), 5, 10, 15, 20, 25)...),
	}
	first6 := verify.Scope{Window: verify.Window{From: 0, To: sec(6)}}
	runCheckCases(t, []checkCase{
		{
			name: "increase across a reset", src: `increase(target:http_requests_total{code="200"}) == 55`, env: env, scope: first6,
			passed: true, observed: `increase(target:http_requests_total{code="200"})=55`,
		},
		{
			name: "rate across a reset", src: `rate(target:http_requests_total{code="200"}) == 55 / 6`, env: env, scope: first6,
			passed: true, values: map[string]float64{`rate(target:http_requests_total{code="200"})`: 55.0 / 6},
		},
		{
			name: "increase from the sample at the window's start", src: `increase(target:http_requests_total{code="200"} over 3s) == 25`, env: env,
			scope: verify.Scope{Window: verify.Window{From: 0, To: sec(5)}}, passed: true,
		},
		{
			name: "summed over series", src: `increase(target:http_requests_total) during fault == 25`, env: env, scope: first6,
			passed: true, observed: "increase(target:http_requests_total during fault)=25",
		},
		{
			name: "rate in an instant condition", src: `time_to(rate(target:http_requests_total{code="500"}) > 1/s) == 2s`, env: env, scope: scopeOf(env, ""),
			passed: true, kind: verify.ResultTimeTo, at: sec(12),
		},
		{
			name: "one sample is no rate", src: `rate(target:http_requests_total{code="200"}) > 0`, env: env,
			scope: verify.Scope{Window: verify.Window{From: ms(6500), To: sec(30)}}, err: verify.ErrNoData,
		},
	})
}

func TestExpr_CheckHistogramQuantile(t *testing.T) {
	// 100 observations over 10s: 10 up to 100ms, 30 more up to 250ms, 40
	// more up to 500ms, 15 more up to 1s and 5 above.
	bounds := []string{"0.1", "0.25", "0.5", "1", "+Inf"}
	counts := []float64{10, 40, 80, 95, 100}
	env := threePhases()
	env.phases["quiet"] = verify.Window{From: sec(20), To: sec(30)}
	for i, le := range bounds {
		// Instance a sees all of them; instance b restarts at 5s and sees
		// none, so its buckets must add nothing.
		env.scraped = append(env.scraped,
			scrapedSeries{source: "target", metric: "http_request_duration_seconds_bucket", labels: map[string]string{"le": le, "instance": "a"},
				points: []verify.Point{{T: 0, V: 0}, {T: sec(10), V: counts[i]}, {T: sec(20), V: counts[i]}, {T: sec(30), V: counts[i]}}},
			scrapedSeries{source: "target", metric: "http_request_duration_seconds_bucket", labels: map[string]string{"le": le, "instance": "b"},
				points: []verify.Point{{T: 0, V: 7 * counts[i]}, {T: sec(5), V: 0}, {T: sec(10), V: 0}}},
		)
	}
	first10 := verify.Scope{Window: verify.Window{From: 0, To: sec(10)}}
	median := interpolate(0.25, 0.5, 50-40, 80-40) // the 50th of 100 is the 10th of 40 in the 250ms-500ms bucket
	p90 := interpolate(0.5, 1, 90-80, 95-80)       // the 90th is the 10th of 15 in the 500ms-1s bucket
	runCheckCases(t, []checkCase{
		{
			name: "median", src: "histogram_quantile(0.5, target:http_request_duration_seconds) == 312.5ms", env: env, scope: first10,
			passed: true, values: map[string]float64{"histogram_quantile(0.5, target:http_request_duration_seconds)": median},
		},
		{
			name: "percent quantile", src: "histogram_quantile(90%, target:http_request_duration_seconds) < 1s", env: env, scope: first10,
			passed: true, values: map[string]float64{"histogram_quantile(90%, target:http_request_duration_seconds)": p90},
		},
		{
			name: "in the +Inf bucket is the highest finite bound", src: "histogram_quantile(0.99, target:http_request_duration_seconds) == 1s", env: env, scope: first10,
			passed: true,
		},
		{
			name: "lowest bucket starts at zero", src: "histogram_quantile(0.05, target:http_request_duration_seconds) == 50ms", env: env, scope: first10,
			passed: true,
		},
		{
			name: "bucket series named", src: `histogram_quantile(0.5, target:http_request_duration_seconds_bucket{instance="a"}) < 1s`, env: env, scope: first10,
			passed: true, observed: `histogram_quantile(0.5, target:http_request_duration_seconds{instance="a"})=312ms`,
		},
		{
			name: "no observations in the window", src: "histogram_quantile(0.5, target:http_request_duration_seconds during quiet) < 1s", env: env, scope: first10,
			err: verify.ErrNoData, observed: "histogram_quantile(0.5, target:http_request_duration_seconds during quiet)=n/a",
		},
	})
}

// interpolate is Prometheus' linear interpolation of the rank-th of count
// observations in a bucket from lower to upper, computed at run time as
// the implementation does (a constant expression would be rounded once).
func interpolate(lower, upper, rank, count float64) float64 {
	return lower + (upper-lower)*(rank/count)
}

func TestExpr_CheckSelectorMatching(t *testing.T) {
	env := threePhases()
	env.scraped = []scrapedSeries{
		gauge("target", "http_requests_total", map[string]string{"code": "200", "job": "api"}, 1),
		gauge("target", "http_requests_total", map[string]string{"code": "500", "job": "api"}, 10),
		gauge("target", "http_requests_total", map[string]string{"code": "503", "job": "worker"}, 100),
		gauge("proxy", "http_requests_total", map[string]string{"code": "200", "job": "api"}, 1000),
	}
	sc := scopeOf(env, "")
	tests := []struct {
		sel  string
		want float64 // -1: no series matched
	}{
		{"target:http_requests_total", 111},
		{"proxy:http_requests_total", 1000},
		{`target:http_requests_total{code="500"}`, 10},
		{`target:http_requests_total{code!="200"}`, 110},
		{`target:http_requests_total{code=~"5.."}`, 110},
		{`target:http_requests_total{code!~"5.."}`, 1},
		{`target:http_requests_total{code=~"5..", job="api"}`, 10},
		{`target:http_requests_total{job=~"api|worker",}`, 111},
		{`target:http_requests_total{code=~"50"}`, -1}, // anchored
		{`target:http_requests_total{missing=""}`, 111},
		{`target:http_requests_total{code="404"}`, -1},
	}
	var cases []checkCase
	for _, tt := range tests {
		c := checkCase{name: tt.sel, src: "last(" + tt.sel + ") == " + plain(tt.want), env: env, scope: sc, passed: true}
		if tt.want < 0 {
			c.passed, c.err = false, verify.ErrNoData
		}
		cases = append(cases, c)
	}
	runCheckCases(t, cases)
}

// plain prints a test's expected number as a literal.
func plain(v float64) string { return verify.FormatValue(verify.KindPlain, v) }

func TestExpr_CheckKindsAndObserved(t *testing.T) {
	env := threePhases()
	env.scraped = []scrapedSeries{
		gauge("target", "go_memstats_heap_inuse_bytes", nil, 100<<20),
		gauge("target", "cache_hit_ratio", nil, 0.875),
		gauge("target", "gc_pause_seconds", nil, 0.0042),
		gauge("target", "go_goroutines", nil, 12),
		gauge("proxy", "requests_total", nil, 0, 30),
	}
	env.states[verify.StateRef{Kind: "breaker", Name: "payments"}] = stateHistory{initial: "closed"}
	sc := scopeOf(env, "")
	runCheckCases(t, []checkCase{
		{
			name: "each kind formatted", src: "target:go_memstats_heap_inuse_bytes < 150MiB and target:cache_hit_ratio > 80% and target:gc_pause_seconds < 5ms and target:go_goroutines < 100 and increase(proxy:requests_total) > 10 and rate(proxy:requests_total) < 50/s",
			env: env, scope: sc, passed: true,
			observed: "target:go_memstats_heap_inuse_bytes=100MiB, target:cache_hit_ratio=87.5%, target:gc_pause_seconds=4.2ms, target:go_goroutines=12, increase(proxy:requests_total)=30, rate(proxy:requests_total)=30/s",
		},
		{
			name: "plain scales any kind", src: "target:gc_pause_seconds * target:go_goroutines < 100ms and target:go_memstats_heap_inuse_bytes / target:go_goroutines < 10MiB",
			env: env, scope: sc, passed: true,
		},
		{
			name: "everything at once", src: `success_rate >= 99% and breaker("payments") == closed and time_to(error_rate > 5%) < 5s and recovery_time(error_rate < 1%, hold: 2s) < 5s`,
			env: env, scope: sc, passed: false,
			observed: `success_rate=100%, breaker("payments")=closed, time_to=never, recovery_time=0s`,
			values:   map[string]float64{"success_rate": 1, "recovery_time": 0},
			kind:     verify.ResultTimeTo, at: never,
		},
		{
			name: "missing values are named", src: `p99 during fault < 1s and avg(target:nothing) > 0 and last(db:nothing) > 0`,
			env: env, scope: sc, err: verify.ErrNoData,
			observed: "p99 during fault=10ms, avg(target:nothing)=n/a, last(db:nothing)=n/a",
		},
	})
}

func TestExpr_CheckNoDataMessage(t *testing.T) {
	e, err := verify.Parse("avg(target:a) > 0 and p99 < 1s and last(target:b) > 0")
	if err != nil {
		t.Fatal(err)
	}
	env := threePhases()
	_, err = e.Check(env, scopeOf(env, ""))
	if want := "no data for avg(target:a), last(target:b)"; err == nil || err.Error() != want {
		t.Errorf("Check error = %v, want %q", err, want)
	}
}

func TestExpr_CheckZeroStep(t *testing.T) {
	e, err := verify.Parse("time_to(p99 > 1s) < 1s")
	if err != nil {
		t.Fatal(err)
	}
	env := threePhases()
	env.step = 0
	if _, err := e.Check(env, scopeOf(env, "")); err == nil {
		t.Error("Check with a zero step succeeded, want an error")
	}
}

func TestExpr_EvalV1Env(t *testing.T) {
	// The v1 Env knows load series only.
	e, err := verify.Parse("p99 < 1s and last(target:up) == 1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := evalValues(e, window)
	if !errors.Is(err, verify.ErrNoData) || res.Observed != "p99=121ms, last(target:up)=n/a" {
		t.Errorf("Eval = %q, %v; want no data for last(target:up)", res.Observed, err)
	}
	e, err = verify.Parse("p99 during baseline < 1s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evalValues(e, window); !errors.Is(err, verify.ErrUnknownName) {
		t.Errorf("Eval error = %v, want ErrUnknownName", err)
	}
}

func TestExpr_CheckConcurrent(t *testing.T) {
	// An Expr is immutable: concurrent checks share it safely (run with
	// -race) and agree.
	env := threePhases().failing(0.5, 13, 14)
	e, err := verify.Parse("time_to(error_rate > 5%) < 5s and recovery_time(error_rate < 1%, hold: 2s) < 5s and p99 < 1s")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]verify.Result, 8)
	for i := range results {
		wg.Go(func() {
			results[i], _ = e.Check(env, scopeOf(env, ""))
		})
	}
	wg.Wait()
	for _, r := range results[1:] {
		if r.Observed != results[0].Observed || r.Passed != results[0].Passed {
			t.Fatalf("concurrent results differ: %+v and %+v", r, results[0])
		}
	}
}

func TestExpr_CheckScanDoesNotAllocatePerInstant(t *testing.T) {
	// The same never-true condition scanned over 2,400 and over 1,200
	// instants allocates the same: nothing per instant.
	env := hourEnv()
	allocs := func(from string) float64 {
		e, err := verify.Parse("time_to(error_rate > 50% or histogram_quantile(0.99, target:http_request_duration_seconds over 30s) > 10s or target:go_goroutines > 1000, from: " + from + ") < 1s")
		if err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(5, func() {
			if res, err := e.Check(env, scopeOf(env, "")); err != nil || res.Observed != "time_to=never" {
				t.Fatalf("Check = %q, %v", res.Observed, err)
			}
		})
	}
	if long, short := allocs("fault"), allocs("recovery"); long != short {
		t.Errorf("allocations: %v scanning 2,400 instants, %v scanning 1,200", long, short)
	}
}

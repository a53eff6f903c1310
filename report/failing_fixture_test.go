package report

import (
	"time"
)

// The fixtures of failing runs: what the runner writes when SLAs break,
// with the checks verify.Explain gives, so the HTML's explanations (the
// banner, limit lines, shaded breaches, deadlines) are pinned down by
// golden files.

func ptr(v float64) *float64 { return &v }

// threePhaseRun is a 30-second run of baseline, fault and recovery at
// 50 requests a second; each second's values come from sec.
func threePhaseRun(name string, sec func(t int) Second) *Report {
	r := &Report{
		Schema: Schema, Scenario: name, File: "testdata/" + name + ".yaml", Version: "v0.0.0-test", Seed: 7,
		Target: "http://127.0.0.1:8080", StartedAt: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), DurationS: 30,
		Run: RunResources{Sent: 1500, Scheduled: 1500},
	}
	for i, n := range []string{"baseline", "fault", "recovery"} {
		r.Phases = append(r.Phases, Phase{Name: n, StartS: float64(i * 10), EndS: float64(i*10 + 10)})
	}
	r.Faults = []Fault{{ID: "fault/abort", Kind: "abort", Proxy: "proxy", Layer: "http", Phase: "fault", Config: map[string]any{"status": 503, "percent": "40%"},
		Matched: 500, Injected: 200, ConfiguredRate: 0.4, EffectiveRate: 0.4, Fired: true, StartS: 10, EndS: 20}}
	var total Phase
	for t := range 30 {
		s := sec(t)
		s.T = t
		r.Series = append(r.Series, s)
		p := &r.Phases[t/10]
		for _, ph := range []*Phase{p, &total} {
			ph.Requests += s.Requests
			ph.Successes += s.Successes
			ph.Errors += s.Errors
		}
	}
	for i := range r.Phases {
		p := &r.Phases[i]
		p.SuccessRate, p.RPS = float64(p.Successes)/float64(p.Requests), float64(p.Requests)/10
		p.LatencyMs = Latency{Min: 1, Mean: 20, P50: 12, P90: 30, P95: 45, P99: 90, P999: 130, Max: 140}
		p.Codes = map[string]uint64{"200": p.Successes}
	}
	total.EndS, total.SuccessRate, total.RPS = 30, float64(total.Successes)/float64(total.Requests), 50
	r.Total = total
	return r
}

// failingRunFixture: the target was slow before the fault (p99 over its
// limit in seconds 0–1), and a 40% abort made the fault phase fail fast.
func failingRunFixture() *Report {
	r := threePhaseRun("orders-abort", func(t int) Second {
		s := Second{Requests: 50, Successes: 50, P50Ms: 12, P90Ms: 28, P95Ms: 40, P99Ms: 60, MaxMs: 70}
		switch {
		case t < 2:
			s.P99Ms, s.MaxMs = 127, 131
		case t >= 10 && t < 20:
			s.Successes, s.Errors = 30, 20
			s.P50Ms, s.P90Ms, s.P95Ms, s.P99Ms, s.MaxMs = 3, 25, 38, 58, 66
			s.SuccessP50Ms, s.SuccessP90Ms, s.SuccessP95Ms, s.SuccessP99Ms, s.SuccessMaxMs = 14, 30, 41, 60, 66
			s.ErrorP50Ms, s.ErrorP99Ms, s.ErrorMaxMs = 0.8, 2.1, 2.4
			s.ErrorReasons = map[string]uint64{"status: 503": 18, "transport: connection reset": 2}
		}
		return s
	})
	r.ErrorReasons = []ErrorReason{{Kind: "status", Reason: "503", Phases: []uint64{0, 200, 0}, Total: 200}}
	r.Warnings = []string{"no metrics from target (404 Not Found); SLAs on target:… cannot be checked"}
	r.SLAs = []SLA{
		{Name: "fast before the fault", Expect: "p99 < 100ms", During: "baseline", Kind: "check",
			Observed: "p99=127ms", Values: map[string]float64{"p99": 0.127},
			Checks: []SLACheck{{Subject: "p99", Op: "<", Unit: "duration", Value: ptr(0.127), Limit: ptr(0.1), Load: "p99", Breaches: [][2]float64{{0, 2}}}}},
		{Name: "users kept being served", Expect: "success_rate >= 99% and p90 < 100ms", During: "fault", Kind: "check",
			Observed: "success_rate=60%, p90=25ms", Values: map[string]float64{"success_rate": 0.6, "p90": 0.025},
			Checks: []SLACheck{
				{Subject: "success_rate", Op: ">=", Unit: "ratio", Value: ptr(0.6), Limit: ptr(0.99), Load: "success_rate", Breaches: [][2]float64{{10, 20}}},
				{Subject: "p90", Op: "<", Unit: "duration", Value: ptr(0.025), Limit: ptr(0.1), Held: true, Load: "p90"},
			}},
		{Name: "healthy again", Expect: "success_rate >= 99%", During: "recovery", Kind: "check", Passed: true,
			Observed: "success_rate=100%", Values: map[string]float64{"success_rate": 1},
			Checks: []SLACheck{{Subject: "success_rate", Op: ">=", Unit: "ratio", Value: ptr(1), Limit: ptr(0.99), Held: true, Load: "success_rate"}}},
	}
	return r
}

// timingFixture: detection never happened before its deadline and
// recovery came late.
func timingFixture() *Report {
	r := threePhaseRun("orders-timing", func(t int) Second {
		s := Second{Requests: 50, Successes: 50, P50Ms: 12, P90Ms: 28, P95Ms: 40, P99Ms: 60, MaxMs: 70}
		if t >= 10 && t < 24 {
			s.Successes, s.Errors = 44, 6
			s.SuccessP50Ms, s.SuccessP90Ms, s.SuccessP95Ms, s.SuccessP99Ms, s.SuccessMaxMs = 12, 28, 40, 60, 70
			s.ErrorP50Ms, s.ErrorP99Ms, s.ErrorMaxMs = 1, 2, 2
		}
		return s
	})
	r.SLAs = []SLA{
		{Name: "errors seen within 2 s", Expect: "time_to(error_rate > 20%) < 2s", Kind: "time_to",
			Observed: "time_to=never", Values: map[string]float64{},
			Checks: []SLACheck{
				{Subject: "error_rate", Op: ">", Unit: "ratio", Limit: ptr(0.2), Load: "error_rate", Within: "time_to"},
				{Subject: "time_to", Op: "<", Unit: "duration", Limit: ptr(2), SinceS: ptr(10)},
			}},
		{Name: "recovered within 2 s", Expect: "recovery_time(success_rate >= 99%, hold=2s) < 2s", Kind: "recovery_time", AtS: ptr(24),
			Observed: "recovery_time=4s", Values: map[string]float64{"recovery_time": 4},
			Checks: []SLACheck{
				{Subject: "success_rate", Op: ">=", Unit: "ratio", Limit: ptr(0.99), Load: "success_rate", Within: "recovery_time"},
				{Subject: "recovery_time", Op: "<", Unit: "duration", Value: ptr(4), Limit: ptr(2), SinceS: ptr(20)},
			}},
	}
	return r
}

// scrapedFixture: SLAs on the service's own breaker, read from its
// /metrics, on its goroutines, and on a guard's state.
func scrapedFixture() *Report {
	r := threePhaseRun("dependency-breaker", func(int) Second {
		return Second{Requests: 50, Successes: 50, Fallbacks: 0, P50Ms: 12, P90Ms: 28, P95Ms: 40, P99Ms: 60, MaxMs: 70}
	})
	r.Faults[0] = Fault{ID: "slow_payments/latency", Kind: "latency", Proxy: "payments", Layer: "http", Phase: "fault",
		Config: map[string]any{"delay": "600ms"}, Matched: 500, Injected: 500, ConfiguredRate: 1, EffectiveRate: 1, Fired: true, StartS: 10, EndS: 20}
	open := MetricSeries{Source: "target", Name: "resctl_guard_state", Type: "gauge", Labels: map[string]string{"policy": "payments", "state": "open"}}
	goroutines := MetricSeries{Source: "target", Name: "go_goroutines", Type: "gauge"}
	for i := range 120 {
		t := float64(i) / 4
		v := 0.0
		if t >= 13.5 && t < 22 {
			v = 1
		}
		open.Points = append(open.Points, [2]float64{t, v})
		g := 14.0
		if t >= 10 {
			g = 14 + min(t-10, 10)*3
		}
		goroutines.Points = append(goroutines.Points, [2]float64{t, g})
	}
	r.Metrics = []MetricSeries{open, goroutines}
	openSel := `target:resctl_guard_state{policy="payments", state="open"}`
	r.Panels = []Panel{
		{Title: openSel, Selector: openSel, Series: []MetricSeries{open}},
		{Title: "target:go_goroutines", Selector: "target:go_goroutines", Series: []MetricSeries{goroutines}},
	}
	r.Events = []Event{
		{AtS: 11.2, Source: "guard", Kind: "transition", Name: "orders", From: "closed", To: "open", Detail: "breaker orders: closed → open"},
		{AtS: 21.5, Source: "guard", Kind: "transition", Name: "orders", From: "open", To: "closed", Detail: "breaker orders: open → closed"},
	}
	r.SLAs = []SLA{
		{Name: "the service's own breaker opened within 2 s", Expect: `time_to(max(` + openSel + ` over 1s) == 1) < 2s`, Kind: "time_to", AtS: ptr(13.5),
			Observed: "time_to=3.5s", Values: map[string]float64{"time_to": 3.5},
			Checks: []SLACheck{
				{Subject: "max(" + openSel + " over 1s)", Op: "==", Unit: "plain", Limit: ptr(1), Selector: openSel, Func: "max", Within: "time_to"},
				{Subject: "time_to", Op: "<", Unit: "duration", Value: ptr(3.5), Limit: ptr(2), SinceS: ptr(10)},
			}},
		{Name: "no goroutine pile-up", Expect: "last(target:go_goroutines) <= 30", During: "fault", Kind: "check",
			Observed: "last(target:go_goroutines)=41", Values: map[string]float64{"last(target:go_goroutines)": 41},
			Checks: []SLACheck{{Subject: "last(target:go_goroutines)", Op: "<=", Unit: "plain", Value: ptr(41), Limit: ptr(30),
				Selector: "target:go_goroutines", Func: "last", Breaches: [][2]float64{{15, 20}}}}},
		{Name: "the proxy's breaker closed again", Expect: `breaker("orders") == closed`, During: "recovery", Kind: "check", Passed: true,
			Observed: `breaker("orders")=closed`,
			Checks:   []SLACheck{{Subject: `breaker("orders")`, Op: "==", ValueState: "closed", LimitState: "closed", Held: true}}},
	}
	return r
}

// oneHourFailingFixture is the one-hour run with ten SLAs, three of them
// failing with their checks and hundreds of breaches, and failures timed
// apart with their reasons every second of the fault: the size the
// rendering benchmark and the HTML budget are set for when a run fails.
func oneHourFailingFixture() *Report {
	r := oneHourFixture(20)
	r.Passed = false
	for i := range r.Series {
		s := &r.Series[i]
		if s.T >= 1500 && s.T < 2700 {
			s.SuccessP50Ms, s.SuccessP90Ms, s.SuccessP95Ms, s.SuccessP99Ms, s.SuccessMaxMs = s.P50Ms+2, s.P90Ms+2, s.P95Ms+2, s.P99Ms, s.MaxMs
			s.ErrorP50Ms, s.ErrorP99Ms, s.ErrorMaxMs = 0.9, 3, 4
			s.ErrorReasons = map[string]uint64{"status: 503": s.Errors - 1, "transport: connection reset": 1}
		}
	}
	var breaches [][2]float64
	for t := 1500.0; t < 2700; t += 4 {
		breaches = append(breaches, [2]float64{t, t + 2})
	}
	r.SLAs = r.SLAs[:5]
	r.SLAs = append(r.SLAs,
		SLA{Name: "p99 held during the fault", Expect: "p99 < 45ms", During: "fault", Kind: "check", Observed: "p99=900ms",
			Checks: []SLACheck{{Subject: "p99", Op: "<", Unit: "duration", Value: ptr(0.9), Limit: ptr(0.045), Load: "p99", Breaches: breaches}}},
		SLA{Name: "users served", Expect: "success_rate >= 99%", During: "fault", Kind: "check", Observed: "success_rate=98.9%",
			Checks: []SLACheck{{Subject: "success_rate", Op: ">=", Unit: "ratio", Value: ptr(0.989), Limit: ptr(0.99), Load: "success_rate", Breaches: breaches}}},
		SLA{Name: "series stayed low", Expect: "last(target:series_00) < 120", Kind: "check", Observed: "last(target:series_00)=130",
			Checks: []SLACheck{{Subject: "last(target:series_00)", Op: "<", Unit: "plain", Value: ptr(130), Limit: ptr(120), Selector: "target:series_00", Func: "last", Breaches: breaches}}},
		SLA{Name: "healthy before", Expect: "success_rate >= 98%", During: "baseline", Kind: "check", Passed: true, Observed: "success_rate=99%",
			Checks: []SLACheck{{Subject: "success_rate", Op: ">=", Unit: "ratio", Value: ptr(0.99), Limit: ptr(0.98), Held: true, Load: "success_rate"}}},
		SLA{Name: "recovered in time", Expect: "recovery_time(success_rate >= 98%, hold=5s) < 30s", Kind: "recovery_time", Passed: true, AtS: ptr(2710), Observed: "recovery_time=10s",
			Checks: []SLACheck{{Subject: "recovery_time", Op: "<", Unit: "duration", Value: ptr(10), Limit: ptr(30), Held: true, SinceS: ptr(2700)}}},
	)
	r.Panels = append([]Panel{{Title: "target:series_00", Selector: "target:series_00", Series: r.Metrics[:1]}}, r.Panels...)
	return r
}

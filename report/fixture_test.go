package report

import (
	"fmt"
	"math"
	"time"
)

// richFixture is a fixed recording of a minute-long run with everything a
// report can hold: fallbacks and service times per second, two faults, a
// breaker and a limiter changing state, timing SLAs with their instants, an
// SLA that could not be decided, scraped gauges and a counter in chosen
// panels, and a failed scrape. Nothing in resctl fills all of these yet;
// the fixture pins down how each is rendered when something does.
func richFixture() *Report {
	at := func(s float64) *float64 { return &s }
	r := &Report{
		Schema:    Schema,
		Scenario:  "orders-latency-recovery",
		File:      "testdata/orders.yaml",
		Version:   "v0.0.0-test",
		Seed:      42,
		Target:    "http://127.0.0.1:8080",
		StartedAt: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		DurationS: 60,
		Passed:    false,
		Phases: []Phase{
			{Name: "baseline", StartS: 0, EndS: 20, Requests: 2000, Successes: 2000, SuccessRate: 1, RPS: 100,
				LatencyMs: Latency{Min: 1.1, Mean: 6.2, P50: 5.1, P90: 9.8, P95: 12.4, P99: 19.9, P999: 31, Max: 33.5},
				Codes:     map[string]uint64{"200": 2000}},
			{Name: "fault", StartS: 20, EndS: 40, Requests: 2000, Successes: 1942, Errors: 58, Fallbacks: 890, SuccessRate: 0.971, RPS: 100,
				LatencyMs: Latency{Min: 0.4, Mean: 212, P50: 180, P90: 505, P95: 540, P99: 802, P999: 911, Max: 1203},
				Codes:     map[string]uint64{"200": 1960, "503": 40}},
			{Name: "recovery", StartS: 40, EndS: 60, Requests: 2000, Successes: 2000, SuccessRate: 1, RPS: 100,
				LatencyMs: Latency{Min: 1.0, Mean: 7.9, P50: 5.4, P90: 11.2, P95: 14.8, P99: 41.7, P999: 120, Max: 131},
				Codes:     map[string]uint64{"200": 2000}},
		},
		Total: Phase{StartS: 0, EndS: 60, Requests: 6000, Successes: 5942, Errors: 58, Fallbacks: 890, SuccessRate: 0.99033, RPS: 100,
			LatencyMs: Latency{Min: 0.4, Mean: 75, P50: 6.3, P90: 402, P95: 506, P99: 781, P999: 905, Max: 1203},
			Codes:     map[string]uint64{"200": 5960, "503": 40}},
		ErrorReasons: []ErrorReason{
			{Kind: "status", Reason: "503", Phases: []uint64{0, 40, 0}, Total: 40},
			{Kind: "check", Reason: "json orders missing", Phases: []uint64{0, 18, 0}, Total: 18},
		},
		SLAs: []SLA{
			{Name: "healthy before the fault", Expect: "success_rate >= 99.9% and p99 < 50ms", During: "baseline", Passed: true, Kind: "check",
				Observed: "success_rate=100%, p99=19.9ms", Values: map[string]float64{"success_rate": 1, "p99": 0.0199}},
			{Name: "users keep being served", Expect: "success_rate >= 99% and fallback_rate <= 100%", During: "fault", Passed: false, Kind: "check",
				Observed: "success_rate=97.1%, fallback_rate=44.5%", Values: map[string]float64{"success_rate": 0.971, "fallback_rate": 0.445}},
			{Name: "breaker detects the fault fast", Expect: `time_to(breaker("/api/orders") == open, from: fault) < 2s`, Passed: true, Kind: "time_to",
				Observed: "time_to=1.4s", Values: map[string]float64{"time_to": 1.4}, AtS: at(21.4)},
			{Name: "recovers after the fault", Expect: "recovery_time(success_rate >= 99.9% and fallback_rate == 0, hold: 5s) < 5s", Passed: false, Kind: "recovery_time",
				Observed: "recovery_time=7.5s", Values: map[string]float64{"recovery_time": 7.5}, AtS: at(47.5)},
			{Name: "no goroutine leak in the target", Expect: "last(target:go_goroutines) <= 1.1 * avg(target:go_goroutines during baseline)", Passed: false, Kind: "check",
				Observed: "last(target:go_goroutines)=n/a", Error: "no samples of target:go_goroutines after 55s"},
			{Name: "the proxy shed load", Expect: `increase(proxy:resctl_guard_rejected_total) > 0`, Kind: "check",
				NotEvaluated: "results files hold the load only: give resctl report merge --coordinator"},
		},
		Faults: []Fault{
			{ID: "fault/latency", Kind: "latency", Phase: "fault", Config: map[string]any{"delay": "800ms", "jitter": "100ms", "percent": "100%"},
				Matched: 2000, Injected: 2000, ConfiguredRate: 1, EffectiveRate: 1, Fired: true, StartS: 20, EndS: 40},
			{ID: "fault/abort", Kind: "abort", Phase: "fault", Config: map[string]any{"status": 503, "percent": "5%"},
				Matched: 1110, Injected: 58, ConfiguredRate: 0.05, EffectiveRate: 58.0 / 1110, Fired: true, StartS: 20, EndS: 40},
		},
		Events: []Event{
			{AtS: 0, Source: "phase", Kind: "start", Detail: "baseline"},
			{AtS: 20, Source: "phase", Kind: "start", Detail: "fault"},
			{AtS: 20, Source: "fault", Kind: "on", Detail: "fault/latency"},
			{AtS: 20, Source: "fault", Kind: "on", Detail: "fault/abort"},
			{AtS: 21.4, Source: "guard", Kind: "transition", Name: `breaker("/api/orders")`, From: "closed", To: "open", Detail: "slow-call rate 62% > 50%"},
			{AtS: 22, Source: "guard", Kind: "transition", Name: "limiter(/api/orders)", From: "limit 64", To: "limit 32"},
			{AtS: 25, Source: "guard", Kind: "transition", Name: "limiter(/api/orders)", From: "limit 32", To: "limit 16"},
			{AtS: 26.4, Source: "guard", Kind: "transition", Name: `breaker("/api/orders")`, From: "open", To: "half-open"},
			{AtS: 26.9, Source: "guard", Kind: "transition", Name: `breaker("/api/orders")`, From: "half-open", To: "open"},
			{AtS: 40, Source: "fault", Kind: "off", Detail: "fault/latency"},
			{AtS: 40, Source: "fault", Kind: "off", Detail: "fault/abort"},
			{AtS: 40, Source: "phase", Kind: "start", Detail: "recovery"},
			{AtS: 41.9, Source: "guard", Kind: "transition", Name: `breaker("/api/orders")`, From: "open", To: "half-open"},
			{AtS: 42.5, Source: "guard", Kind: "transition", Name: `breaker("/api/orders")`, From: "half-open", To: "closed"},
			{AtS: 45, Source: "guard", Kind: "transition", Name: "limiter(/api/orders)", From: "limit 16", To: "limit 64"},
		},
		Run: RunResources{Sent: 6000, Scheduled: 6000, PeakRSSBytes: 48 << 20},
		Panels: []Panel{
			{Title: "Target goroutines", Series: []MetricSeries{goroutines(60)}},
			{Title: "Proxy requests by code", Series: []MetricSeries{proxyRequests("200", 60, 100), proxyRequests("503", 60, 0)}},
		},
		ScrapeErrors: []ScrapeError{{Source: "target", AtS: 56, Error: "Get \"http://127.0.0.1:8080/metrics\": context deadline exceeded"}},
	}
	r.Metrics = []MetricSeries{goroutines(60), heap(60), proxyRequests("200", 60, 100), proxyRequests("503", 60, 0)}
	for t := range 60 {
		s := Second{T: t, Requests: 100, Successes: 100, P50Ms: 5 + float64(t%3), P90Ms: 10, P95Ms: 12 + float64(t%4), P99Ms: 18 + float64(t%5), MaxMs: 30,
			ServiceP50Ms: 4 + float64(t%3), ServiceP95Ms: 10 + float64(t%4), ServiceP99Ms: 15 + float64(t%5)}
		switch {
		case t >= 20 && t < 40:
			s.Errors = 3
			s.Successes = 97
			s.P50Ms, s.P95Ms, s.P99Ms, s.MaxMs = 180, 540, 800, 1200
			s.ServiceP50Ms, s.ServiceP95Ms, s.ServiceP99Ms = 170, 520, 780
			if t >= 21 && t < 38 {
				s.Fallbacks = 52
				s.P50Ms, s.ServiceP50Ms = 2, 1.5
			}
		case t >= 40 && t < 48:
			s.P99Ms = 40
		}
		r.Series = append(r.Series, s)
	}
	return r
}

func goroutines(n int) MetricSeries {
	m := MetricSeries{Source: "target", Name: "go_goroutines", Type: "gauge"}
	for t := range n {
		v := 12.0
		if t >= 20 && t < 45 {
			v = 12 + float64(min(t-20, 10))*9
		}
		m.Points = append(m.Points, [2]float64{float64(t), v})
	}
	return m
}

func heap(n int) MetricSeries {
	m := MetricSeries{Source: "target", Name: "go_memstats_heap_alloc_bytes", Type: "gauge"}
	for t := range n {
		m.Points = append(m.Points, [2]float64{float64(t), float64(4<<20 + (t%10)*300<<10)})
	}
	return m
}

func proxyRequests(code string, n int, rate float64) MetricSeries {
	m := MetricSeries{Source: "proxy", Name: "resctl_proxy_requests_total", Type: "counter", Labels: map[string]string{"code": code}}
	total := 0.0
	for t := range n {
		r := rate
		if t >= 20 && t < 40 {
			if code == "503" {
				r = 3
			} else {
				r = 97
			}
		}
		total += r
		m.Points = append(m.Points, [2]float64{float64(t), total})
	}
	return m
}

// oneHourFixture is a one-hour run with nSeries scraped series sampled
// every second, charted in panels of five: the size the HTML budget and the
// rendering benchmark are set for.
func oneHourFixture(nSeries int) *Report {
	const secs = 3600
	at := func(s float64) *float64 { return &s }
	r := &Report{
		Schema: Schema, Scenario: "one-hour soak", Version: "v0.0.0-test", Seed: 7, Target: "http://127.0.0.1:8080",
		StartedAt: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), DurationS: secs, Passed: true,
		Run: RunResources{Sent: secs * 500, Scheduled: secs * 500},
	}
	names := []string{"warmup", "baseline", "fault", "recovery"}
	bounds := []float64{0, 300, 1500, 2700, secs}
	for i, n := range names {
		r.Phases = append(r.Phases, Phase{Name: n, StartS: bounds[i], EndS: bounds[i+1], Requests: uint64(bounds[i+1]-bounds[i]) * 500,
			Successes: uint64(bounds[i+1]-bounds[i]) * 495, Errors: uint64(bounds[i+1]-bounds[i]) * 5, SuccessRate: 0.99, RPS: 500,
			LatencyMs: Latency{Min: 1, Mean: 9, P50: 7, P90: 15, P95: 21, P99: 48, P999: 90, Max: 240}, Codes: map[string]uint64{"200": 1, "503": 1}})
	}
	r.Total = Phase{StartS: 0, EndS: secs, Requests: secs * 500, Successes: secs * 495, Errors: secs * 5, SuccessRate: 0.99, RPS: 500}
	r.Faults = []Fault{{ID: "fault/latency", Kind: "latency", Phase: "fault", Config: map[string]any{"delay": "300ms"},
		Matched: 600000, Injected: 300000, ConfiguredRate: 0.5, EffectiveRate: 0.5, Fired: true, StartS: 1500, EndS: 2700}}
	for i := range 5 {
		r.SLAs = append(r.SLAs, SLA{Name: fmt.Sprintf("sla %d", i), Expect: "success_rate >= 99%", Passed: true, Observed: "success_rate=99%",
			Kind: "time_to", AtS: at(1500 + float64(i)*7)})
	}
	state := "closed"
	for t := 1500.0; t < 2700; t += 30 {
		next := map[string]string{"closed": "open", "open": "half-open", "half-open": "closed"}[state]
		r.Events = append(r.Events, Event{AtS: t + 0.5, Source: "guard", Kind: "transition", Name: "breaker(orders)", From: state, To: next})
		state = next
	}
	for t := range secs {
		// A deterministic wobble with a one-second spike every ten minutes,
		// which downsampling must keep.
		w := math.Sin(float64(t) / 37)
		p99 := 40 + 8*w
		if t%600 == 0 {
			p99 = 900
		}
		r.Series = append(r.Series, Second{T: t, Requests: 500, Successes: 490 + uint64(t%7), Errors: 10 - uint64(t%7), Fallbacks: uint64(t % 3),
			P50Ms: 7 + w, P90Ms: 15 + w, P95Ms: 21 + 2*w, P99Ms: p99, MaxMs: p99 + 20, ServiceP50Ms: 6 + w, ServiceP95Ms: 19 + w, ServiceP99Ms: 35 + w})
	}
	for k := range nSeries {
		m := MetricSeries{Source: "target", Name: fmt.Sprintf("series_%02d", k), Type: "gauge", Labels: map[string]string{"instance": "a"}}
		if k%4 == 3 {
			m.Type = "counter"
		}
		total := 0.0
		for t := range secs {
			v := 100 + 50*math.Sin(float64(t*(k+1))/300)
			if m.Type == "counter" {
				total += v
				v = total
			}
			m.Points = append(m.Points, [2]float64{float64(t), math.Round(v*100) / 100})
		}
		r.Metrics = append(r.Metrics, m)
	}
	for i := 0; i < nSeries; i += 5 {
		r.Panels = append(r.Panels, Panel{Title: fmt.Sprintf("panel %d", i/5), Series: r.Metrics[i:min(i+5, nSeries)]})
	}
	return r
}

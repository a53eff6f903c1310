package verify_test

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/resctl/resctl/verify"
)

// hourEnv is a one-hour run: 3,600 one-second load buckets and 20 scraped
// series sampled every second. Errors and a slow-down hit the first five
// minutes of the 20-minute fault phase, and a breaker opens and closes.
func hourEnv() *tableEnv {
	const n = 3600
	e := &tableEnv{
		run: verify.Window{From: 0, To: sec(n)},
		phases: map[string]verify.Window{
			"baseline": {From: 0, To: sec(1200)},
			"fault":    {From: sec(1200), To: sec(2400)},
			"recovery": {From: sec(2400), To: sec(n)},
		},
		step: time.Second,
		states: map[verify.StateRef]stateHistory{
			{Kind: "breaker", Name: "payments"}: {initial: "closed", changes: []stateChange{{ms(1203500), "open"}, {ms(1530250), "half_open"}, {ms(1531000), "closed"}}},
			{Kind: "fault", Name: "latency-1"}:  {initial: "off", changes: []stateChange{{sec(1200), "on"}, {sec(2400), "off"}}},
		},
	}
	hit := func(i int) bool { return i >= 1203 && i < 1500 }
	for i := range n {
		b := bucket{requests: 100, p99: ms(20 + float64(i%7))}
		if hit(i) {
			b.errors, b.p99 = 30, ms(450)
		}
		e.buckets = append(e.buckets, b)
	}

	series := func(source, metric string, labels map[string]string, f func(i int) float64) {
		s := scrapedSeries{source: source, metric: metric, labels: labels, points: make([]verify.Point, n)}
		for i := range n {
			s.points[i] = verify.Point{T: sec(float64(i)), V: f(i)}
		}
		e.scraped = append(e.scraped, s)
	}
	series("target", "go_goroutines", nil, func(i int) float64 { return 40 + float64(i%5) + 60*b2f(hit(i)) })
	series("target", "go_memstats_heap_inuse_bytes", nil, func(i int) float64 { return float64(64<<20 + (i%100)<<16) })
	series("target", "up", nil, func(i int) float64 { return 1 - b2f(i >= 1300 && i < 1310) })
	series("target", "process_cpu_seconds_total", nil, func(i int) float64 { return 0.02 * float64(i) })
	series("proxy", "requests_total", nil, func(i int) float64 { return 100 * float64(i) })
	errorsSoFar := 0.0
	for _, code := range []string{"200", "500", "503"} {
		series("target", "http_requests_total", map[string]string{"code": code}, func(i int) float64 {
			if code == "200" {
				return 95 * float64(i)
			}
			if hit(i) {
				errorsSoFar += 15
			}
			return errorsSoFar
		})
	}
	for _, pool := range []string{"a", "b"} {
		series("db", "pg_connections", map[string]string{"pool": pool}, func(i int) float64 { return 10 + float64(i%3) })
	}
	// A latency histogram: 100 requests a second, slower while hit.
	bounds := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, math.Inf(1)}
	cumulative := make([]float64, len(bounds))
	perSecond := make([][]float64, n)
	for i := range n {
		share := []float64{0.05, 0.15, 0.5, 0.75, 0.9, 0.97, 0.99, 1, 1, 1}
		if hit(i) {
			share = []float64{0, 0.01, 0.05, 0.1, 0.2, 0.5, 0.9, 0.99, 1, 1}
		}
		perSecond[i] = make([]float64, len(bounds))
		for b := range bounds {
			cumulative[b] += 100 * share[b]
			perSecond[i][b] = cumulative[b]
		}
	}
	for b, le := range bounds {
		series("target", "http_request_duration_seconds_bucket", map[string]string{"le": strconv.FormatFloat(le, 'g', -1, 64)},
			func(i int) float64 { return perSecond[i][b] })
	}
	if len(e.scraped) != 20 {
		panic(fmt.Sprintf("hourEnv has %d series, want 20", len(e.scraped)))
	}
	return e
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// hourSLAs are 50 SLAs of the kinds a scenario states, each with the phase
// it is checked during ("" for the whole run).
var hourSLAs = []struct{ during, expect string }{
	{"baseline", "success_rate >= 99.9% and p99 < 50ms"},
	{"baseline", "rps >= 90/s and requests > 100000"},
	{"fault", "success_rate >= 90%"},
	{"fault", "p99 < 1s"},
	{"recovery", "success_rate >= 99.9% and p99 < 50ms"},
	{"", "error_rate < 5%"},
	{"", "p99 during recovery <= 1.2 * p99 during baseline"},
	{"", "p99 over 5m < 100ms"},
	{"fault", "time_to(error_rate > 5%) < 10s"},
	{"fault", "time_to(p99 > 200ms) < 10s"},
	{"fault", "time_to(error_rate > 50%) < 10s"}, // never: scans the whole rest of the run
	{"", "time_to(error_rate > 5%, from: fault) < 10s and time_to(p99 > 200ms, from: fault) < 10s"},
	{"fault", `time_to(breaker("payments") == open) < 5s`},
	{"fault", `time_to(breaker("payments") == open and error_rate > 5%) < 5s`},
	{"fault", "recovery_time(error_rate < 1%, hold: 30s) < 5m"},
	{"fault", "recovery_time(error_rate < 1% and p99 < 100ms, hold: 1m) < 5m"},
	{"fault", `recovery_time(breaker("payments") == closed, hold: 10s, from: fault) < 1m`},
	{"fault", "recovery_time(p99 over 30s < 100ms, hold: 30s) < 5m"},
	{"fault", "recovery_time(p99 < 100ms, hold: 10s, from: baseline) < 10m"},
	{"fault", "recovery_time(error_rate < 0%, hold: 10s) < 5m"}, // never
	{"baseline", "target:go_goroutines < 100"},
	{"baseline", "max(target:go_goroutines) < 100 and min(target:go_goroutines) > 10"},
	{"fault", "max(target:go_goroutines) < 1.5 * avg(target:go_goroutines during baseline)"},
	{"recovery", "last(target:go_goroutines) <= 1.1 * avg(target:go_goroutines during baseline)"},
	{"", "target:go_memstats_heap_inuse_bytes < 150MiB"},
	{"", "max(target:go_memstats_heap_inuse_bytes) < 150MiB and avg(target:go_memstats_heap_inuse_bytes) < 100MiB"},
	{"", "min(target:up) == 1"},
	{"fault", "first(target:up) == 1 and last(target:up) == 1"},
	{"", "rate(target:process_cpu_seconds_total) < 0.5"},
	{"fault", "rate(proxy:requests_total) >= 90/s"},
	{"fault", `rate(target:http_requests_total{code=~"5.."}) < 1/s`},
	{"fault", `increase(target:http_requests_total{code!="200"}) < 1000`},
	{"", `rate(target:http_requests_total{code="200"}) > 50/s`},
	{"baseline", "histogram_quantile(0.99, target:http_request_duration_seconds) < 250ms"},
	{"fault", "histogram_quantile(0.99, target:http_request_duration_seconds) < 1s"},
	{"recovery", "histogram_quantile(0.5, target:http_request_duration_seconds) < 50ms"},
	{"", "histogram_quantile(0.9, target:http_request_duration_seconds over 1m) < 100ms"},
	{"fault", "time_to(histogram_quantile(0.99, target:http_request_duration_seconds) > 300ms) < 10s"},
	{"fault", "recovery_time(histogram_quantile(0.99, target:http_request_duration_seconds over 30s) < 250ms, hold: 30s) < 10m"},
	{"fault", "time_to(rate(target:http_requests_total{code=~\"5..\"}) > 1/s) < 10s"},
	{"fault", "recovery_time(rate(target:http_requests_total{code=~\"5..\"} over 10s) < 0.1/s, hold: 20s) < 10m"},
	{"fault", "time_to(last(target:go_goroutines) > 1.5 * avg(target:go_goroutines during baseline)) < 10s"},
	{"fault", "recovery_time(target:go_goroutines < 1.2 * avg(target:go_goroutines during baseline), hold: 10s) < 5m"},
	{"fault", "time_to(target:up == 0, from: fault) < 2m"},
	{"fault", "recovery_time(target:up == 1, hold: 10s, from: fault) < 1m"},
	{"fault", `fault("latency-1") == on and breaker("payments") == closed`},
	{"", `time_to(fault("latency-1") == on, from: run) == 20m`},
	{"", "avg(db:pg_connections) < 30 and max(db:pg_connections{pool=\"a\"}) < 20"},
	{"fault", "p99 during fault < 500ms and success_rate during fault > 90% and time_to(error_rate > 5%) < 10s and recovery_time(error_rate < 1%, hold: 30s) < 5m"},
	{"recovery", "requests over 10m > 50000 and rps over 1m > 90/s and error_rate over 10m < 0.1%"},
}

// BenchmarkEval_50SLAs_OneHour checks all 50 SLAs of an hour-long run per
// iteration: the work of deciding a run's report.
func BenchmarkEval_50SLAs_OneHour(b *testing.B) {
	env := hourEnv()
	type sla struct {
		expr  *verify.Expr
		scope verify.Scope
	}
	var slas []sla
	for _, s := range hourSLAs {
		e, err := verify.Parse(s.expect)
		if err != nil {
			b.Fatalf("Parse(%q): %v", s.expect, err)
		}
		slas = append(slas, sla{e, scopeOf(env, s.during)})
	}
	if len(slas) != 50 {
		b.Fatalf("%d SLAs, want 50", len(slas))
	}
	for _, s := range slas {
		if _, err := s.expr.Check(env, s.scope); err != nil {
			b.Fatalf("Check(%q): %v", s.expr, err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range slas {
			if _, err := s.expr.Check(env, s.scope); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Command detect prints the guard-policy detection table: the same faults
// of an upstream — latency ×10, errors at 50%, a brownout creeping up over
// a minute, a flapping dependency — against each admission policy and
// breaker configuration, with its defaults and tuned, in virtual time.
// Per cell: how long after the fault began the policy tripped or first
// refused a call, how many calls it let through before that that failed
// or were slower than the SLO, how often it tripped during a clean but
// noisy baseline, and how long after the fault ended it was back in its
// first state for good.
//
//	go run ./bench/detect              # the table of docs/guard.md
//	go run ./bench/detect -seeds 5     # medians over five seeds
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Policy is a row: one policy's YAML, as a scenario's guard: writes it.
type Policy struct {
	Name string
	YAML string
}

// Policies are the table's rows.
var Policies = []Policy{
	{"breaker, defaults", "- breaker: {}"},
	{"breaker, tuned", "- breaker: {window: 5s, min_calls: 20, failure_rate: 20%, slow_call: {over: 100ms, rate: 50%}, open_for: 5s}"},
	{"breaker, consecutive failures", "- breaker: {consecutive_failures: 5, failure_rate: 0}"},
	{"concurrency_breaker, defaults", "- concurrency_breaker: {}"},
	{"concurrency_breaker, tuned", "- concurrency_breaker: {max_in_flight: 40, p99: {multiple: 3, breaches: 2, samples: 3, interval: 500ms}, open_for: 5s}"},
	{"adaptive_limit, defaults", "- adaptive_limit: {}"},
	{"adaptive_limit, vegas", "- adaptive_limit: {algorithm: vegas}"},
	{"throttle, defaults", "- throttle: {}"},
	{"throttle, tuned", "- throttle: {k: 1.5, window: 10s}"},
}

func main() {
	seeds := flag.Int("seeds", 1, "run each cell with this many seeds (1 to 100) and print the medians")
	flag.Parse()
	if *seeds < 1 || *seeds > 100 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "detect: -seeds takes 1 to 100, and there are no arguments")
		os.Exit(2)
	}
	if err := write(os.Stdout, DefaultModel(), *seeds); err != nil {
		fmt.Fprintln(os.Stderr, "detect:", err)
		os.Exit(1)
	}
}

// write prints the model and one table per fault.
func write(w io.Writer, m Model, seeds int) error {
	fmt.Fprintf(w, "Model: %.0f calls/s (Poisson); healthy latency log-normal, median %v (σ %.1f), %.0f%% of calls ×5, "+
		"a one-second ×3 blip every %v, %.0f%% errors; client timeout %v; SLO %v. Baseline %v (the first %v not counted), fault %v, recovery %v. Medians of %d seed(s).\n\n",
		m.Rate, m.Median, m.Sigma, 100*m.Spikes, m.BlipEach, 100*m.ErrRate, m.Timeout, m.SLO, m.Baseline, warmup, m.Fault, m.Recovery, seeds)
	for _, f := range Faults {
		fmt.Fprintf(w, "**%s** — %s\n\n", f.Name, f.About)
		fmt.Fprintln(w, "| policy | detects after | calls hurt before | false trips in baseline | baseline refused | recovers after |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
		for _, p := range Policies {
			var rs []Result
			for s := range seeds {
				r, err := Simulate(m, f, p.YAML, uint64(s+1))
				if err != nil {
					return fmt.Errorf("%s: %w", p.Name, err)
				}
				rs = append(rs, r)
			}
			r := median(rs)
			fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s |\n", p.Name, dur(r.Detect), r.HurtBefore, r.FalseTrips, pct(r.Refused), dur(r.Recover))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Rows:")
	fmt.Fprintln(w)
	for _, p := range Policies {
		fmt.Fprintf(w, "- %s: `%s`\n", p.Name, strings.TrimPrefix(p.YAML, "- "))
	}
	return nil
}

// median takes each field's median over the seeds; "never" (<0) sorts
// last.
func median(rs []Result) Result {
	pick := func(get func(Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
			if v[i] < 0 && v[i] != float64(NotTripped) {
				v[i] = 1e18
			}
		}
		slices.Sort(v)
		if m := v[len(v)/2]; m < 1e18 {
			return m
		}
		return -1 // never
	}
	return Result{
		Detect:     time.Duration(pick(func(r Result) float64 { return float64(r.Detect) })),
		HurtBefore: int(pick(func(r Result) float64 { return float64(r.HurtBefore) })),
		FalseTrips: int(pick(func(r Result) float64 { return float64(r.FalseTrips) })),
		Refused:    pick(func(r Result) float64 { return r.Refused }),
		Recover:    time.Duration(pick(func(r Result) float64 { return float64(r.Recover) })),
	}
}

func dur(d time.Duration) string {
	switch {
	case d == NotTripped:
		return "–"
	case d < 0:
		return "never"
	}
	return d.Round(10 * time.Millisecond).String()
}

func pct(f float64) string {
	if f < 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}

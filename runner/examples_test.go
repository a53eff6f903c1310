package runner

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

// exampleGlobs are the example scenarios CI runs end to end: the guard
// examples, one per policy kind and call wrapper. Each runs for about ten
// seconds, a one-second warm-up that no SLA reads included, and is tuned
// to pass on a loaded two-core machine; the quickstart is left out, as it
// runs for half a minute.
//
// -examples replaces the list, to try scenarios by hand:
//
//	go test -run Examples ./runner -args -examples '/tmp/try-*.yaml'
var exampleGlobs = flag.String("examples", "../testdata/scenarios/guard-*.yaml", "comma-separated globs of the example scenarios TestExamples runs")

// maxParallelExamples bounds how many example runs share the machine at
// once, whatever -parallel says: each drives real load through a real
// proxy, and their verdicts time things to the second.
const maxParallelExamples = 2

// watchesProcess says whether a scenario has a policy that reads the
// process's own memory or CPU, or the machine's latency: memory and shed.
// In the test binary, every other test's goroutines, garbage and CPU would
// be part of its signal, so such a scenario runs in a test binary of its
// own, as `resctl run` runs it, and alone.
func watchesProcess(s *scenario.Scenario) bool {
	for _, p := range s.Policies() {
		switch p.Config.(type) {
		// The memory policy reads the process's memory; shed reads its CPU
		// or, without a CPU threshold, judges in-flight calls against the
		// least latency it saw, which other runs in the binary disturb too.
		case *guard.MemoryConfig, *guard.ShedConfig:
			return true
		}
	}
	return false
}

// TestExamples runs every example scenario through Run and requires every
// SLA to pass, in one run each: a verdict that needs a second try to pass
// is a failure. Scenarios that watch the process run first, one at a time,
// each in a process of its own; the others then run in parallel, at most
// maxParallelExamples at once.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every example scenario: about 50 s of real load")
	}
	var files []string
	for _, g := range strings.Split(*exampleGlobs, ",") {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no example scenarios match %s", *exampleGlobs)
	}
	type example struct {
		name, file string
		s          *scenario.Scenario
	}
	var alone, shared []example
	for _, file := range files {
		e := example{name: strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)), file: file}
		s, err := scenario.ReadFile(file)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if d := s.Duration(); d > 12*time.Second {
			t.Errorf("%s runs for %v; examples must stay under 12s so CI stays quick", file, d)
		}
		e.s = s
		if watchesProcess(s) {
			alone = append(alone, e)
		} else {
			shared = append(shared, e)
		}
	}
	for _, e := range alone {
		t.Run(e.name, func(t *testing.T) {
			checkExample(t, e.file, runExampleInProcess(t, e.file))
		})
	}
	slots := make(chan struct{}, maxParallelExamples)
	for _, e := range shared {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			r, err := Run(context.Background(), e.s, Options{})
			if err != nil {
				t.Fatalf("Run %s: %v", e.file, err)
			}
			checkExample(t, e.file, r)
		})
	}
}

// checkExample fails unless every SLA of the run passed, listing every
// SLA with what it observed and the run in brief.
func checkExample(t *testing.T, file string, r *report.Report) {
	t.Helper()
	if !r.Passed {
		t.Errorf("%s did not pass:\n%s%s", file, describeVerdicts(r), describeRun(r))
		return
	}
	t.Logf("%s passed:\n%s", file, describeVerdicts(r))
}

// describeVerdicts lists every SLA with what it observed.
func describeVerdicts(r *report.Report) string {
	var b strings.Builder
	for _, sla := range r.SLAs {
		verdict := "PASS"
		if !sla.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "  %s  %s\n        expect %s", verdict, sla.Name, sla.Expect)
		if sla.During != "" {
			fmt.Fprintf(&b, " during %s", sla.During)
		}
		fmt.Fprintf(&b, "\n        observed %s\n", sla.Observed)
		if sla.Error != "" {
			fmt.Fprintf(&b, "        error %s\n", sla.Error)
		}
	}
	for _, what := range []struct {
		on  bool
		say string
	}{
		{r.Aborted != "", "aborted: " + r.Aborted},
		{r.Error != "", "error: " + r.Error},
		{r.Interrupted, "interrupted"},
		{r.Run.GeneratorBehind, fmt.Sprintf("generator behind: sent %d of %d scheduled", r.Run.Sent, r.Run.Scheduled)},
	} {
		if what.on {
			fmt.Fprintf(&b, "  %s\n", what.say)
		}
	}
	return b.String()
}

// describeRun is the run in brief, for a failure: each phase's load and
// every guard transition.
func describeRun(r *report.Report) string {
	var b strings.Builder
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "  phase %-10s %4d requests, success %.1f%%, p50 %.0fms p99 %.0fms, codes %v\n",
			p.Name, p.Requests, 100*p.SuccessRate, p.LatencyMs.P50, p.LatencyMs.P99, p.Codes)
	}
	for _, e := range r.Events {
		if e.Source == "guard" || e.Source == "phase" {
			fmt.Fprintf(&b, "  %6.3fs %s %s %s\n", e.AtS, e.Source, e.Kind, e.Detail)
		}
	}
	return b.String()
}

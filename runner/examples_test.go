package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

// exampleGlobs are the example scenarios CI runs end to end: the guard
// examples, one per policy kind and call wrapper. Each runs for about ten
// seconds, a one-second warm-up that no SLA reads included; the quickstart
// is left out, as it runs for half a minute.
//
// -examples replaces the list, to try scenarios by hand:
//
//	go test -run Examples ./runner -args -examples '/tmp/try-*.yaml'
var exampleGlobs = flag.String("examples", "../testdata/scenarios/guard-*.yaml", "comma-separated globs of the example scenarios TestExamples runs")

// maxParallelExamples bounds how many example runs share the machine at
// once: each drives real load through a real proxy, and their verdicts
// time things to the second.
const maxParallelExamples = 2

// watchesProcess says whether a scenario has a policy that reads the
// process's own memory or CPU, or the machine's latency: memory and shed.
// Another run beside it would be part of its signal, so such a scenario
// runs alone.
func watchesProcess(s *scenario.Scenario) bool {
	for _, p := range s.Policies() {
		switch p.Config.(type) {
		// The memory policy reads the process's memory; shed reads its CPU
		// or, without a CPU threshold, judges in-flight calls against the
		// least latency it saw, which another run beside it disturbs too.
		case *guard.MemoryConfig, *guard.ShedConfig:
			return true
		}
	}
	return false
}

// TestExamples runs every example scenario as a user runs it — `resctl run
// FILE` with a resctl built by `go build`, the demo target in a process of
// its own — and requires every SLA to pass, in one run each: a verdict
// that needs a second try to pass is a failure. The examples promise
// their timings to users on a loaded two-core machine, and they keep them
// there; under the race detector (make test) resctl itself would need
// several times the CPU a user's build does, and the examples would judge
// the instrumentation, not the guard. Run's own code is raced by the other
// tests of this package. Scenarios that watch the process run first, one
// at a time; the others then run in parallel, at most maxParallelExamples
// at once.
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
	type example struct{ name, file string }
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
		if watchesProcess(s) {
			alone = append(alone, e)
		} else {
			shared = append(shared, e)
		}
	}
	bin := programs.wait(t, "./cmd/resctl")
	for _, e := range alone {
		t.Run(e.name, func(t *testing.T) {
			r := runExample(t, bin, e.file)
			// The signal of such an example is resctl's own process, so
			// its premise is that the process ran the load it was given.
			// When the machine starved it so badly that the generator
			// fell behind (resctl's own judgement: 1% of requests out
			// over GeneratorLagLimit late), the catch-up bursts shaped
			// the signal more than the fault did: the run says nothing
			// of the policy, either way.
			if !r.Passed && r.Run.GeneratorBehind {
				t.Skipf("inconclusive, the load generator fell behind (%s), so the process's signal was the machine's:\n%s", r.Run.BehindReason, describeVerdicts(r))
			}
			checkExample(t, e.file, r)
		})
	}
	slots := make(chan struct{}, maxParallelExamples)
	for _, e := range shared {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			checkExample(t, e.file, runExample(t, bin, e.file))
		})
	}
}

// runExample runs `resctl run FILE` with the resctl binary bin and env
// ("NAME=value") added to this process's environment, and returns the
// report it wrote. Exit codes 1 (the run failed) and 3 (an SLA failed)
// still leave one.
func runExample(t *testing.T, bin, file string, env ...string) *report.Report {
	t.Helper()
	r, _ := runExamplePid(t, bin, file, env...)
	return r
}

// runExamplePid is runExample that also returns the pid resctl ran as,
// which names what it creates (network namespaces).
func runExamplePid(t *testing.T, bin, file string, env ...string) (*report.Report, int) {
	t.Helper()
	out := t.TempDir()
	// Only a hang guard: an example runs for seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", file, "--out", out, "--no-html", "--quiet")
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second // a child left holding the output cannot hang the test
	b, err := cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1 && ee.ExitCode() != 3) {
		t.Fatalf("resctl run %s: %v\n%s", file, err, b)
	}
	f, err := os.Open(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatalf("resctl run %s wrote no report: %v\n%s", file, err, b)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatalf("read the report of %s: %v", file, err)
	}
	return r, cmd.Process.Pid
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

// programs are the binaries the example tests run: resctl, and the
// services and library examples their scenarios start.
var programs = programBuild{pkgs: []string{
	"./cmd/resctl",
	"./testdata/services/orders",
	"./testdata/services/cache",
	"./examples/http-client",
	"./examples/yaml-reload",
	"./examples/grpc-client",
}}

// programBuild is one `go build` of every package in pkgs (paths from
// the module's root, each a main package of a distinct name), started
// once, in the background: one command links them all while other tests
// run, where a build per test would link the same service again.
type programBuild struct {
	pkgs []string
	once sync.Once
	done chan struct{}
	dir  string
	err  error
}

// startEarly starts the build while other tests run, unless this test
// binary runs no example (-short, or a -run pattern that names none).
func (b *programBuild) startEarly() {
	if testing.Short() {
		return
	}
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" && !strings.Contains(f.Value.String(), "Example") {
		return
	}
	b.start()
}

// start starts the build into a directory of its own, once.
func (b *programBuild) start() {
	b.once.Do(func() {
		b.done = make(chan struct{})
		dir, err := os.MkdirTemp("", "resctl-examples-")
		if err != nil {
			b.err = err
			close(b.done)
			return
		}
		b.dir = dir
		go func() {
			defer close(b.done)
			cmd := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, b.pkgs...)...)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				b.err = fmt.Errorf("go build %s: %v\n%s", strings.Join(b.pkgs, " "), err, out)
			}
		}()
	})
}

// wait returns the path of pkg's binary (one of pkgs) once it is built.
func (b *programBuild) wait(t *testing.T, pkg string) string {
	t.Helper()
	if !slices.Contains(b.pkgs, pkg) {
		t.Fatalf("%s is not among the programs the example tests build: %v", pkg, b.pkgs)
	}
	b.start()
	<-b.done
	if b.err != nil {
		t.Fatal(b.err)
	}
	return filepath.Join(b.dir, filepath.Base(pkg))
}

// close waits for a build that was started and removes what it wrote.
func (b *programBuild) close() error {
	if b.done == nil {
		return nil
	}
	<-b.done
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}

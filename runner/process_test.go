package runner

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

// The test binary doubles as the processes a run of its own needs: with
// demoTargetArg as its first argument it serves the built-in demo target as
// `resctl demo-target` does, and with exampleEnv set it runs one example
// scenario, as `resctl run` would, and writes its report.json.
const (
	demoTargetArg = "demo-target"
	exampleEnv    = "RUNNER_EXAMPLE"
	exampleOutEnv = "RUNNER_EXAMPLE_OUT"
)

// childMain runs the test binary as one of those processes and says
// whether it did.
func childMain() bool {
	switch {
	case len(os.Args) > 1 && os.Args[1] == demoTargetArg:
		fs := flag.NewFlagSet(demoTargetArg, flag.ExitOnError)
		listen := fs.String("listen", "127.0.0.1:0", "")
		seed := fs.Int64("seed", 0, "")
		_ = fs.Parse(os.Args[2:])
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		err := demo.Serve(ctx, *listen, demo.Options{Seed: *seed}, func(addr string) {
			fmt.Printf("demo target listening on http://%s\n", addr)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return true
	case os.Getenv(exampleEnv) != "":
		if err := runExampleHere(os.Getenv(exampleEnv), os.Getenv(exampleOutEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return true
	}
	return false
}

// runExampleHere runs one scenario in this process, the demo target in a
// process of its own, and writes the report to out.
func runExampleHere(file, out string) error {
	s, err := scenario.ReadFile(file)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, err := Run(context.Background(), s, Options{DemoCommand: []string{self, demoTargetArg}, LogDir: filepath.Dir(out)})
	if err != nil {
		return err
	}
	return report.WriteJSONFile(out, r)
}

// runExampleInProcess runs one example scenario in a test binary of its
// own, with the demo target in another, and returns its report. A scenario
// whose policy reads the process's memory or CPU needs this: in the test
// binary, the other tests' goroutines and garbage would be its signal.
func runExampleInProcess(t *testing.T, file string) *report.Report {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	// Only a hang guard: an example runs for seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), exampleEnv+"="+file, exampleOutEnv+"="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run %s in a process of its own: %v\n%s", file, err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatalf("read the report of %s: %v", file, err)
	}
	return r
}

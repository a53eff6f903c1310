package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/runner"
	"github.com/resctl/resctl/scenario"
)

type runOptions struct {
	File   string
	OutDir string // empty: the scenario's output.dir
	Quiet  bool
	Stdout io.Writer
	Stderr io.Writer
}

func newRunCmd(runF func(context.Context, *runOptions) error) *cobra.Command {
	opts := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario and check its SLAs",
		Long: `Run a scenario: start the target (or check it is reachable), put the harness
proxy in front of it, drive the load through the proxy phase by phase while
faults switch on and off, then check the SLAs and write the reports.

report.json is written to --out (default: the scenario's output.dir, or
` + scenario.DefaultOutputDir + `) even when the run is interrupted with Ctrl-C.`,
		Example: "  resctl run testdata/scenarios/quickstart.yaml --out /tmp/resctl-out",
		Args:    exactArgs(1, "a scenario file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Stdout, opts.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runScenario(c.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.OutDir, "out", "o", "", "directory for report.json (default: output.dir of the scenario, or "+scenario.DefaultOutputDir+")")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the verdict summary, not phase progress")
	return cmd
}

// loadScenario reads a scenario file, mapping its problems to exit code 2.
func loadScenario(path string) (*scenario.Scenario, error) {
	s, err := scenario.ReadFile(path)
	if err == nil {
		return s, nil
	}
	var ve *scenario.ValidationError
	switch {
	case errors.As(err, &ve):
		return nil, &exitError{code: exitUsage, err: err, hint: fmt.Sprintf("%d problem(s) in %s; the scenario reference is docs/scenario.md", len(ve.Problems), path)}
	case errors.Is(err, fs.ErrNotExist):
		return nil, withCode(exitUsage, fmt.Errorf("scenario %s: no such file", path), "")
	default:
		return nil, withCode(exitUsage, fmt.Errorf("read scenario: %w", err), "")
	}
}

func runScenario(ctx context.Context, opts *runOptions) error {
	s, err := loadScenario(opts.File)
	if err != nil {
		return err
	}
	dir := s.Output.Dir
	if opts.OutDir != "" {
		dir = opts.OutDir
	}
	ropts := runner.Options{Progress: opts.Stderr}
	if opts.Quiet {
		ropts.Progress = nil
	}
	rep, runErr := runner.Run(ctx, s, ropts)
	if rep == nil {
		return withCode(exitRunFailed, runErr, hintFor(runErr))
	}

	jsonPath := filepath.Join(dir, "report.json")
	writeErr := report.WriteJSONFile(jsonPath, rep)
	var paths []string
	if writeErr == nil {
		paths = append(paths, jsonPath)
	}
	if err := report.WriteTerminal(opts.Stdout, rep, report.TerminalOptions{Styled: report.IsTerminal(opts.Stdout), Paths: paths}); err != nil {
		return withCode(exitRunFailed, fmt.Errorf("print summary: %w", err), "")
	}
	switch {
	case writeErr != nil:
		return withCode(exitRunFailed, fmt.Errorf("write report: %w", writeErr), "check that --out is a writable directory")
	case runErr != nil:
		return withCode(exitRunFailed, runErr, hintFor(runErr))
	case !rep.Passed:
		return &exitError{code: exitSLAFailed, err: errors.New("one or more SLAs failed"), hint: "see the SLA section above or " + jsonPath}
	}
	return nil
}

func hintFor(err error) string {
	switch {
	case errors.Is(err, runner.ErrUnreachable):
		return "is the service running? check target.url in the scenario, or use target: {builtin: demo}"
	case errors.Is(err, runner.ErrInterrupted):
		return "the report holds what was recorded until the interrupt"
	}
	return ""
}

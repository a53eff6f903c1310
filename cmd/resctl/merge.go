package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/runner"
	"github.com/resctl/resctl/scenario"
)

type mergeOptions struct {
	Files    []string
	Scenario string
	// Coordinator is the report.json of the run that scraped the metrics
	// and ran the faults.
	Coordinator string
	Start       time.Time
	OutDir      string
	Stdout      io.Writer
	Stderr      io.Writer
}

func newMergeCmd(runF func(context.Context, *mergeOptions) error) *cobra.Command {
	opts := &mergeOptions{}
	var start string
	cmd := &cobra.Command{
		Use:   "merge FILE...",
		Short: "Combine the saved results of several load shards into one report",
		Long: `Combine results files (resctl load --save-results, resctl run
--save-results, or any vegeta results) from several machines into one
report, with the scenario's phases and its SLAs over the load series:
success rates and latencies of the whole load, as if one generator had
sent it. Latencies are response times, from when each request was due,
where the files say so (resctl's do).

SLAs that read scraped metrics or fault and guard states need the
coordinating run's report: --coordinator report.json adds its scraped
series, faults and guard transitions, and every SLA is judged on the
combined evidence. Without it such SLAs are not evaluated (shown as such,
and they do not fail the merge). A coordinator report of another scenario
is refused (exit 2).

The phases start at --start, or at the earliest result; the coordinator's
metrics and states are timed from its own start, so start the coordinating
run when the shards start (their --start-at).`,
		Example: `  resctl report merge shard-*.bin --scenario scenario.yaml --out merged
  resctl report merge shard-*.bin --scenario scenario.yaml --coordinator run/report.json`,
		Args: minArgs(1, "results files"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Files = args
			opts.Stdout, opts.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			if opts.Scenario == "" {
				return withCode(exitUsage, errors.New("--scenario is required: it gives the phases and the SLAs"), "")
			}
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("--start %q: want RFC 3339, e.g. 2026-11-22T20:00:00Z", start), "")
				}
				opts.Start = t
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return mergeResults(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Scenario, "scenario", "", "the scenario `FILE` the shards ran (required)")
	cmd.Flags().StringVar(&opts.Coordinator, "coordinator", "", "the report.json `FILE` of the coordinating run, whose scraped metrics, faults and guard states the SLAs read")
	cmd.Flags().StringVar(&start, "start", "", "the shards' shared start `TIME` (RFC 3339; default the earliest result)")
	cmd.Flags().StringVarP(&opts.OutDir, "out", "o", "", "write every format into `DIR`")
	return cmd
}

func mergeResults(ctx context.Context, opts *mergeOptions) error {
	s, err := loadScenario(ctx, opts.Scenario, scenario.Limits{})
	if err != nil {
		return err
	}
	var coord *report.Report
	if opts.Coordinator != "" {
		if coord, err = readReport(opts.Coordinator); err != nil {
			return err
		}
	}
	rep, err := runner.Merge(s, opts.Files, opts.Start, coord)
	switch {
	case errors.Is(err, runner.ErrSameShard):
		return withCode(exitUsage, err, "give each shard's file once; a glob such as shard-*.bin may match a stale copy")
	case errors.Is(err, runner.ErrOtherScenario):
		return withCode(exitUsage, err, "give the report.json of the resctl run that coordinated these shards, with the same scenario")
	case err != nil:
		return withCode(exitUsage, err, "give the files resctl load --save-results wrote")
	}
	var paths []string
	if opts.OutDir != "" {
		var outs []output
		for _, f := range report.Formats {
			outs = append(outs, output{f, filepath.Join(opts.OutDir, f.FileName())})
		}
		if paths, err = writeOutputs(rep, outs, opts.Stdout); err != nil {
			return withCode(exitRunFailed, err, "check that --out is writable")
		}
	}
	if err := report.WriteTerminal(opts.Stdout, rep, report.TerminalOptions{Styled: report.IsTerminal(opts.Stdout), Paths: paths}); err != nil {
		return withCode(exitRunFailed, fmt.Errorf("print summary: %w", err), "")
	}
	if !rep.Passed {
		return &exitError{code: exitSLAFailed, err: errors.New("one or more SLAs failed"), hint: "see the SLA section above"}
	}
	return nil
}

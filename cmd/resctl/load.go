package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/runner"
	"github.com/resctl/resctl/scenario"
)

type loadOptions struct {
	File        string
	Shard       runner.Shard
	StartAt     time.Time
	Target      string
	SaveResults string
	OutDir      string
	Stdout      io.Writer
	Stderr      io.Writer
}

func newLoadCmd(runF func(context.Context, *loadOptions) error) *cobra.Command {
	opts := &loadOptions{}
	var shard, startAt string
	cmd := &cobra.Command{
		Use:   "load FILE",
		Short: "Send one shard of a scenario's load, for a distributed run",
		Long: `Send a scenario's load, or one shard of it, to a target and save every
result: the load generator alone, for runs that need more than one machine.
It starts no target, proxy or fault — a coordinating resctl run (or resctl
proxy with resctl inject) does that — and checks no SLA over scraped
metrics.

--shard i/N sends 1/N of every phase's rate; --start-at gives the instant
all shards start their schedule at, so their phases line up. Afterwards
resctl report merge combines the shards' --save-results files into one
report. docs/scaling.md runs N shards as a Kubernetes Indexed Job.

A shard judges no SLA (its verdict is RECORDED, exit 0): report merge
judges them over every shard's results. Without --shard, resctl load
judges the SLAs over its load, with resctl run's exit codes (3 when one
failed).

The results file holds service times: each result's timestamp is when the
request really went out, its latency runs from there. The reports give
response times, from when the schedule meant each request to go out. The
file keeps the schedule's start (header X-Resctl-Start on its first result)
and when each result was due (X-Resctl-Due, nanoseconds from that start),
so a reader can rebuild them; resctl report merge does.`,
		Example: `  resctl load scenario.yaml --shard 2/4 --start-at 2026-11-22T20:00:00Z \
    --target http://orders-proxy:8080 --save-results shard-2.bin`,
		Args: exactArgs(1, "a scenario file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Stdout, opts.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			opts.Shard = runner.Shard{Index: 1, Count: 1}
			if shard != "" {
				sh, err := runner.ParseShard(shard)
				if err != nil {
					return withCode(exitUsage, err, "")
				}
				opts.Shard = sh
			}
			if startAt != "" {
				t, err := time.Parse(time.RFC3339, startAt)
				if err != nil {
					return withCode(exitUsage, fmt.Errorf("--start-at %q: want RFC 3339, e.g. 2026-11-22T20:00:00Z", startAt), "")
				}
				opts.StartAt = t
			}
			if opts.SaveResults == "" {
				return withCode(exitUsage, errors.New("--save-results is required: the shards' results are what resctl report merge combines"), "")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runLoad(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&shard, "shard", "", "send shard `i/N` of the load: 1/N of every phase's rate")
	cmd.Flags().StringVar(&startAt, "start-at", "", "start the schedule at `TIME` (RFC 3339), shared by every shard")
	cmd.Flags().StringVar(&opts.Target, "target", "", "send the load to `URL` (default: the scenario's target.url)")
	cmd.Flags().StringVar(&opts.SaveResults, "save-results", "", "stream every result to `FILE` in vegeta's encoding (required); its latencies are service times, from the real send, while reports give response times, from when each request was due (X-Resctl-Start and X-Resctl-Due rebuild them; docs/report.md)")
	cmd.Flags().StringVarP(&opts.OutDir, "out", "o", "", "also write this shard's report.json into `DIR`")
	return cmd
}

func runLoad(ctx context.Context, opts *loadOptions) error {
	s, err := loadScenario(ctx, opts.File, scenario.Limits{})
	if err != nil {
		return err
	}
	rep, runErr := runner.RunLoad(ctx, s, runner.LoadOptions{
		Shard: opts.Shard, StartAt: opts.StartAt, Target: opts.Target, Results: opts.SaveResults, Progress: opts.Stderr,
	})
	if rep == nil {
		switch {
		case errors.Is(runErr, load.ErrInvalid):
			return withCode(exitUsage, runErr, "check load.grpc in the scenario: call, data, metadata, proto")
		case errors.Is(runErr, runner.ErrUnreachable), errors.Is(runErr, runner.ErrInterrupted):
			return withCode(exitRunFailed, runErr, hintFor(runErr))
		}
		return withCode(exitUsage, runErr, "")
	}
	var paths []string
	if opts.OutDir != "" {
		paths, err = writeOutputs(rep, []output{{report.FormatJSON, filepath.Join(opts.OutDir, report.FormatJSON.FileName())}}, opts.Stdout)
		if err != nil {
			return withCode(exitRunFailed, err, "")
		}
	}
	if err := report.WriteTerminal(opts.Stdout, rep, report.TerminalOptions{Styled: report.IsTerminal(opts.Stdout), Paths: paths}); err != nil {
		return withCode(exitRunFailed, fmt.Errorf("print summary: %w", err), "")
	}
	fmt.Fprintf(opts.Stderr, "wrote %s\n", opts.SaveResults)
	if runErr != nil {
		return withCode(exitRunFailed, runErr, hintFor(runErr))
	}
	if !rep.Passed {
		return &exitError{code: exitSLAFailed, err: errors.New("one or more SLAs failed"), hint: "see the SLA section above"}
	}
	return nil
}

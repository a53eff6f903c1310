package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/scenario"
)

type validateOptions struct {
	Files  []string
	Limits scenario.Limits
	Stdout io.Writer
	Stderr io.Writer
}

func newValidateCmd(runF func(context.Context, *validateOptions) error) *cobra.Command {
	opts := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files without running them",
		Long: `Check scenario files: YAML syntax, unknown keys, values out of range, unknown
fault kinds and malformed SLA expressions. Every problem is printed as
file:line:col: key.path: message, the first --max-problems of them for each
file. Exit code 2 when any file has a problem.

A file over --max-scenario-bytes, or of more than --max-nodes YAML nodes
once its aliases are expanded, is refused before it is decoded, so no file
can take the machine's memory; raise them for a file that is meant to be
that large. Ctrl-C stops reading at once (exit code 1).`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return withCode(exitUsage, fmt.Errorf("%s needs at least one scenario file", c.CommandPath()), "usage: "+c.UseLine())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Files = args
			opts.Stdout, opts.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return validateFiles(c.Context(), opts)
		},
	}
	addLimitFlags(cmd, &opts.Limits)
	return cmd
}

func validateFiles(ctx context.Context, opts *validateOptions) error {
	bad := 0
	hint := "fix the problems listed above; the scenario reference is docs/scenario.md"
	for _, f := range opts.Files {
		s, err := loadScenario(ctx, f, opts.Limits)
		if ctx.Err() != nil {
			return withCode(exitRunFailed, errors.New("validate interrupted"), "")
		}
		if err != nil {
			bad++
			fmt.Fprintln(opts.Stderr, err)
			if ve := (*scenario.ValidationError)(nil); errors.As(err, &ve) && ve.OverLimit() {
				hint = overLimitHint
			}
			continue
		}
		fmt.Fprintf(opts.Stdout, "%s: ok — %q, %s over %s, %s\n", f, s.Name, plural(len(s.Phases), "phase"), s.Duration(), plural(len(s.SLAs), "SLA"))
	}
	if bad > 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("%d of %d scenario files invalid", bad, len(opts.Files)), hint: hint}
	}
	return nil
}

// plural is "1 phase", "2 phases".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

type validateOptions struct {
	Files  []string
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
file:line:col: key.path: message. Exit code 2 when any file has a problem.`,
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
			return validateFiles(opts)
		},
	}
	return cmd
}

func validateFiles(opts *validateOptions) error {
	bad := 0
	for _, f := range opts.Files {
		s, err := loadScenario(f)
		if err != nil {
			bad++
			fmt.Fprintln(opts.Stderr, err)
			continue
		}
		fmt.Fprintf(opts.Stdout, "%s: ok — %q, %d phases over %s, %d SLAs\n", f, s.Name, len(s.Phases), s.Duration(), len(s.SLAs))
	}
	if bad > 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("%d of %d scenario files invalid", bad, len(opts.Files)),
			hint: "fix the problems listed above; " + strings.TrimSpace("the scenario reference is docs/scenario.md")}
	}
	return nil
}

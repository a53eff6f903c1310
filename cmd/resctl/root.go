package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes, part of resctl's contract with CI.
const (
	exitOK        = 0 // the run completed and every SLA passed
	exitRunFailed = 1 // the run itself failed: target unreachable, interrupted, internal error
	exitUsage     = 2 // bad usage or an invalid scenario
	exitSLAFailed = 3 // the run completed and at least one SLA failed, or a safeguard SLA stopped it
)

// exitError carries the exit code an error maps to and, where a fix is
// known, a hint printed under the message.
type exitError struct {
	code  int
	err   error
	hint  string
	quiet bool // the message was already printed
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error, hint string) error {
	return &exitError{code: code, err: err, hint: hint}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "resctl",
		Short: "Prove that a Go service survives faults",
		Long: `resctl runs resilience experiments against a service: it puts a harness
proxy in front of it, drives load through the proxy in phases, injects faults,
and checks recovery SLAs. The exit code gates CI; the verdict every report
leads with is in capitals:

  0  the run completed and every SLA passed (PASSED)
  1  the run itself failed: target unreachable or internal error (ERROR),
     interrupted by Ctrl-C or SIGTERM (INTERRUPTED)
  2  bad usage or an invalid scenario
  3  the run completed and at least one SLA failed (FAILED), or a
     safeguard SLA stopped it early (ABORTED)`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitUsage, flagError(err), "see '"+c.CommandPath()+" --help'")
	})
	root.AddCommand(
		newRunCmd(nil),
		newValidateCmd(nil),
		newReportCmd(nil),
		newLoadCmd(nil),
		newDemoTargetCmd(nil),
		newProxyCmd(nil),
		newChaosCmd(nil),
		newInjectCmd(nil),
		newVersionCmd(),
		newSchemaCmd(),
		newInitCmd(nil),
	)
	return root
}

// execute runs the root command and maps its error to an exit code,
// printing the error once.
func execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Errors cobra raises itself (unknown command, wrong number of
		// arguments) are usage errors.
		ee = &exitError{code: exitUsage, err: err, hint: "see 'resctl --help'"}
	}
	if !ee.quiet {
		fmt.Fprintf(stderr, "resctl: %v\n", ee.err)
	}
	if ee.hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", ee.hint)
	}
	return ee.code
}

// minArgs is cobra.MinimumNArgs with a message that names what is missing.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return withCode(exitUsage, fmt.Errorf("%s needs %s", c.CommandPath(), what), "usage: "+c.UseLine())
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return withCode(exitUsage, fmt.Errorf("%s needs %s (got %d arguments)", c.CommandPath(), what, len(args)),
				"usage: "+c.UseLine())
		}
		return nil
	}
}

// flagError says what is wrong with a flag's value in words where the
// parser's own are Go's: a number flag's value is not a whole number, or
// too large, rather than "strconv.ParseInt: parsing …".
func flagError(err error) error {
	var bad *pflag.InvalidValueError
	var num *strconv.NumError
	if !errors.As(err, &bad) || !errors.As(err, &num) {
		return err
	}
	what := "is not a number"
	switch {
	case errors.Is(num.Err, strconv.ErrRange):
		what = "is out of range"
	case num.Func == "ParseUint" && strings.HasPrefix(num.Num, "-"):
		what = "must not be negative"
	case num.Func == "ParseInt" || num.Func == "ParseUint":
		what = "is not a whole number"
	case num.Func == "ParseBool":
		what = "is not true or false"
	}
	return fmt.Errorf("--%s: %q %s", bad.GetFlag().Name, num.Num, what)
}

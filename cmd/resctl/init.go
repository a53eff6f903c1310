package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/quantity"
	"github.com/resctl/resctl/scenario"
)

// DefaultInitFile is the file resctl init writes without an argument.
const DefaultInitFile = "resctl.yaml"

type initOptions struct {
	File    string
	Demo    bool
	URL     string
	Command string
	Path    string
	Name    string
	Rate    quantity.Rate
	Phase   time.Duration
	Force   bool
	Stdin   io.Reader
	Stdout  io.Writer
}

func newInitCmd(runF func(context.Context, *initOptions) error) *cobra.Command {
	opts := &initOptions{Rate: scenario.DefaultStarterRate}
	cmd := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write a starter scenario",
		Long: `Write a commented starter scenario (default ` + DefaultInitFile + `) to edit: the target, the
harness proxy in front of it, a warm-up, a baseline, a latency fault on half
of the requests, a recovery, SLAs for each, and the HTML report. Its first
line points editors that read "# yaml-language-server: $schema=" comments at
the JSON Schema of scenarios, for completion and checks as you type.

The target is one of --demo (the built-in demo service), --url (a service
that is already running), or --command with --url (a command that starts
your service, and where it will listen). Without any of them, init asks.`,
		Example: `  resctl init --demo && resctl run resctl.yaml
  resctl init --url http://127.0.0.1:8080 --path /api/orders
  resctl init --command "./orders --config dev.yaml" --url http://127.0.0.1:18080 orders.yaml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return withCode(exitUsage, fmt.Errorf("%s takes at most one file (got %d arguments)", c.CommandPath(), len(args)), "usage: "+c.UseLine())
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.File = DefaultInitFile
			if len(args) == 1 {
				opts.File = args[0]
			}
			opts.Stdin, opts.Stdout = c.InOrStdin(), c.OutOrStdout()
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return initScenario(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Demo, "demo", false, "run against the built-in demo service")
	cmd.Flags().StringVar(&opts.URL, "url", "", "the service's base `URL`: one already running, or where --command's will listen")
	cmd.Flags().StringVar(&opts.Command, "command", "", "the `COMMAND` that starts the service, split at spaces (edit the file for arguments with spaces)")
	cmd.Flags().StringVar(&opts.Path, "path", "", "the `PATH` the load requests (default /api/orders on the demo, / elsewhere)")
	cmd.Flags().StringVar(&opts.Name, "name", "", "the scenario's `NAME` (default: the command's, or my-service)")
	cmd.Flags().Var(rateFlag{&opts.Rate}, "rate", "the load's `RATE`")
	cmd.Flags().DurationVar(&opts.Phase, "phase", scenario.DefaultStarterPhase, "the length of the baseline, fault and recovery phases")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite FILE if it exists")
	return cmd
}

// rateFlag is a rate flag ("50/s").
type rateFlag struct{ r *quantity.Rate }

func (f rateFlag) String() string {
	if f.r == nil {
		return ""
	}
	return f.r.String()
}

func (f rateFlag) Set(s string) error {
	var r quantity.Rate
	if err := r.UnmarshalText([]byte(s)); err != nil {
		return err
	}
	if r <= 0 {
		return errors.New("must be above zero")
	}
	*f.r = r
	return nil
}

func (rateFlag) Type() string { return "rate" }

func initScenario(opts *initOptions) error {
	if !opts.Demo && opts.URL == "" && opts.Command == "" {
		if err := askTarget(opts); err != nil {
			return err
		}
	}
	so := scenario.StarterOptions{Name: opts.Name, Demo: opts.Demo, URL: opts.URL, Command: strings.Fields(opts.Command),
		Path: opts.Path, Rate: opts.Rate, Phase: opts.Phase}
	if so.Name == "" {
		switch {
		case opts.Demo:
			so.Name = "demo"
		case len(so.Command) > 0:
			so.Name = filepath.Base(so.Command[0])
		}
	}
	b, err := scenario.Starter(so)
	if errors.Is(err, scenario.ErrStarterInvalid) {
		return withCode(exitUsage, err, "nothing was written; resctl init --help lists the flags")
	}
	if err != nil {
		return withCode(exitUsage, err, "give --demo, --url URL, or --command CMD --url URL")
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if opts.Force {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(opts.File, flag, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return withCode(exitUsage, fmt.Errorf("%s exists", opts.File), "give another file name, or --force to overwrite it")
	}
	if err != nil {
		return withCode(exitRunFailed, err, "")
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return withCode(exitRunFailed, fmt.Errorf("write %s: %w", opts.File, err), "")
	}
	fmt.Fprintf(opts.Stdout, "wrote %s\nnext: resctl run %s   (resctl validate %s checks it after an edit)\n", opts.File, opts.File, opts.File)
	return nil
}

// askTarget asks for the target on stdin, one answer a line; an empty
// answer takes the default in brackets.
func askTarget(opts *initOptions) error {
	in := bufio.NewScanner(opts.Stdin)
	ask := func(q, def string) (string, error) {
		if def != "" {
			q += " [" + def + "]"
		}
		fmt.Fprint(opts.Stdout, q+": ")
		if !in.Scan() {
			fmt.Fprintln(opts.Stdout)
			return "", withCode(exitUsage, errors.New("no answer on stdin"), "give the target as flags: --demo, --url URL, or --command CMD --url URL")
		}
		if a := strings.TrimSpace(in.Text()); a != "" {
			return a, nil
		}
		return def, nil
	}
	fmt.Fprintln(opts.Stdout, "What should the scenario run against?\n  1  the built-in demo service\n  2  a service that is already running, by its URL\n  3  a command that starts your service")
	for {
		choice, err := ask("choice", "1")
		if err != nil {
			return err
		}
		switch choice {
		case "1", "demo":
			opts.Demo = true
			return nil
		case "2", "url":
			opts.URL, err = ask("its base URL", scenario.DefaultStarterListen)
		case "3", "command":
			if opts.Command, err = ask("the command that starts it", ""); err == nil && opts.Command == "" {
				continue
			}
			if err == nil {
				opts.URL, err = ask("the URL it will listen on", scenario.DefaultStarterListen)
			}
		default:
			fmt.Fprintln(opts.Stdout, "answer 1, 2 or 3")
			continue
		}
		if err == nil && opts.Path == "" {
			opts.Path, err = ask("the path to request", "/")
		}
		return err
	}
}

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/quantity"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/runner"
	"github.com/resctl/resctl/scenario"
)

type runOptions struct {
	File   string
	OutDir string // empty: the scenario's output.dir
	Quiet  bool
	// HTML, JUnit and Markdown are extra files to write those formats to,
	// besides the scenario's output.formats in OutDir.
	HTML     string
	JUnit    string
	Markdown string
	// NoHTML leaves report.html out of OutDir, whatever the scenario's
	// output.formats say; --html FILE still writes one.
	NoHTML bool
	// SaveResults streams every result to this file in vegeta's encoding.
	SaveResults string
	// AdminAllowedHosts are further names the proxies' admin API answers to.
	AdminAllowedHosts []string
	Limits            scenario.Limits
	Stdout            io.Writer
	Stderr            io.Writer
	// networkSupported replaces the check of whether this machine can
	// inject network faults, for tests; nil checks the machine.
	networkSupported func() error
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
` + scenario.DefaultOutputDir + `) even when the run is interrupted (Ctrl-C, SIGTERM, SIGHUP) or
fails, at any moment, start-up included — it then says how far the run got,
phases and SLAs it never reached are "not run", and SLAs over what an
interrupt cut short (its phase, the whole run) are "not evaluated" — beside the
formats the scenario's output.formats lists (by default report.html, the
recovery report; also junit.xml, summary.md). --no-html leaves report.html
out; --html, --junit and --markdown write those formats to further files.
The last line printed names the HTML report to open. When $GITHUB_STEP_SUMMARY is set, the Markdown
summary is appended to it. A file that cannot be written does not stop the
others; the exit code is then 1.`,
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
	cmd.Flags().StringVar(&opts.HTML, "html", "", "also write the HTML recovery report to `FILE`")
	cmd.Flags().BoolVar(&opts.NoHTML, "no-html", false, "do not write report.html into the output directory (written by default)")
	cmd.Flags().StringVar(&opts.JUnit, "junit", "", "also write JUnit XML (one test case per SLA) to `FILE`")
	cmd.Flags().StringVar(&opts.Markdown, "markdown", "", "also write the Markdown summary to `FILE`")
	cmd.Flags().StringSliceVar(&opts.AdminAllowedHosts, "admin-allowed-host", nil, "a `NAME` the proxies' admin API answers to besides loopback and its own address (repeatable)")
	cmd.Flags().StringVar(&opts.SaveResults, "save-results", "", "stream every result to `FILE` in vegeta's encoding, as it happens (vegeta report and plot, resctl report merge read it); its latencies are service times, from the real send, while reports give response times, from when each request was due (X-Resctl-Start and X-Resctl-Due rebuild them; docs/report.md)")
	addLimitFlags(cmd, &opts.Limits)
	return cmd
}

// addLimitFlags adds the flags that raise the limits of reading a scenario.
func addLimitFlags(cmd *cobra.Command, lim *scenario.Limits) {
	lim.MaxBytes = scenario.DefaultMaxBytes
	cmd.Flags().Var(bytesFlag{&lim.MaxBytes}, "max-scenario-bytes", "refuse a scenario file larger than `SIZE` (e.g. 4MiB)")
	cmd.Flags().IntVar(&lim.MaxNodes, "max-nodes", scenario.DefaultMaxNodes, "refuse a scenario of more than `N` YAML nodes, every alias expanded")
	cmd.Flags().IntVar(&lim.MaxProblems, "max-problems", scenario.DefaultMaxProblems, "print the first `N` problems of a scenario, then how many more there are")
}

// bytesFlag is a byte size flag ("4MiB") into an int64.
type bytesFlag struct{ n *int64 }

func (f bytesFlag) String() string {
	if f.n == nil {
		return ""
	}
	return quantity.Bytes(*f.n).String()
}

func (f bytesFlag) Set(s string) error {
	var b quantity.Bytes
	if err := b.UnmarshalText([]byte(s)); err != nil {
		return err
	}
	if b == 0 {
		return errors.New("must be above zero")
	}
	*f.n = int64(b)
	return nil
}

func (bytesFlag) Type() string { return "size" }

const overLimitHint = "a file over a limit is refused unread; raise --max-scenario-bytes or --max-nodes if it is meant to be that large (docs/scenario.md#limits)"

// loadScenario reads a scenario file within lim, mapping its problems to
// exit code 2. It gives up with ctx's error when ctx is done, as a large
// file takes a while to read.
func loadScenario(ctx context.Context, path string, lim scenario.Limits) (*scenario.Scenario, error) {
	s, err := scenario.Read(ctx, path, lim)
	if err == nil {
		return s, nil
	}
	var ve *scenario.ValidationError
	switch {
	case errors.As(err, &ve):
		hint := fmt.Sprintf("%d problem(s) in %s; the scenario reference is docs/scenario.md", len(ve.Problems), path)
		if ve.OverLimit() {
			hint = overLimitHint
		}
		return nil, &exitError{code: exitUsage, err: detailed{ve}, hint: hint}
	case errors.Is(err, fs.ErrNotExist):
		return nil, withCode(exitUsage, fmt.Errorf("scenario %s: no such file", path), "")
	case ctx.Err() != nil:
		return nil, withCode(exitRunFailed, fmt.Errorf("read scenario %s: interrupted", path), "")
	default:
		return nil, withCode(exitUsage, fmt.Errorf("read scenario: %w", err), "")
	}
}

func runScenario(ctx context.Context, opts *runOptions) error {
	s, err := loadScenario(ctx, opts.File, opts.Limits)
	if err != nil {
		return err
	}
	dir := s.Output.Dir
	if opts.OutDir != "" {
		dir = opts.OutDir
	}
	ropts := runner.Options{Progress: opts.Stderr, DemoCommand: selfCommand("demo-target"), Supervisor: selfCommand(superviseArg), LogDir: dir, Results: opts.SaveResults,
		NetworkSupported: opts.networkSupported, AdminAllowedHosts: opts.AdminAllowedHosts}
	switch {
	case opts.Quiet:
		ropts.Progress = nil
	case report.IsTerminal(opts.Stderr):
		ropts.Live = opts.Stderr
		ropts.LiveWidth = terminalWidth(opts.Stderr)
	}
	rep, runErr := runner.Run(ctx, s, ropts)
	if rep == nil {
		if errors.Is(runErr, load.ErrInvalid) {
			return withCode(exitUsage, runErr, "check load.grpc in the scenario: call, data, metadata, proto")
		}
		if errors.Is(runErr, runner.ErrCannotInject) {
			return withCode(exitUsage, runErr, "network faults need Linux, root and iproute2 (ip, tc): run resctl as root, or mark the fault optional: true to run without it")
		}
		return withCode(exitRunFailed, runErr, hintFor(runErr))
	}

	jsonPath := filepath.Join(dir, report.FormatJSON.FileName())
	paths, writeErr := writeRunOutputs(rep, dir, s.Output.Formats, opts)
	if err := report.WriteTerminal(opts.Stdout, rep, report.TerminalOptions{Styled: report.IsTerminal(opts.Stdout), Paths: paths}); err != nil {
		return withCode(exitRunFailed, fmt.Errorf("print summary: %w", err), "")
	}
	switch {
	case writeErr != nil:
		return withCode(exitRunFailed, writeErr, "check that --out and the report flags name writable places")
	case runErr != nil:
		return withCode(exitRunFailed, runErr, hintFor(runErr))
	case !rep.Passed:
		see := jsonPath
		if p := htmlPath(paths); p != "" {
			see = p
		}
		return &exitError{code: exitSLAFailed, err: errors.New("one or more SLAs failed"), hint: "see the SLA section above or " + see}
	}
	return nil
}

// htmlPath is the HTML report among the files written, if any: the one
// the run's last line names.
func htmlPath(paths []string) string {
	for i := len(paths) - 1; i >= 0; i-- {
		if strings.HasSuffix(paths[i], ".html") {
			return paths[i]
		}
	}
	return ""
}

// writeRunOutputs writes the run's reports: report.json always (it is the
// contract, and what resctl report re-renders), the scenario's other
// formats beside it, the files the flags name, and the Markdown summary
// appended to $GITHUB_STEP_SUMMARY when set. It writes all it can before
// returning the failures.
func writeRunOutputs(rep *report.Report, dir string, formats []string, opts *runOptions) ([]string, error) {
	outs := []output{{report.FormatJSON, filepath.Join(dir, report.FormatJSON.FileName())}}
	var errs []error
	for _, name := range formats {
		f, err := report.ParseFormat(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("output.formats: %w", err))
			continue
		}
		if f == report.FormatHTML && opts.NoHTML {
			continue
		}
		outs = append(outs, output{f, filepath.Join(dir, f.FileName())})
	}
	outs = append(outs, flagOutputs(map[report.Format]string{
		report.FormatHTML: opts.HTML, report.FormatJUnit: opts.JUnit, report.FormatMarkdown: opts.Markdown,
	})...)
	// The HTML reports last, so the run's last line names one to open.
	slices.SortStableFunc(outs, func(a, b output) int {
		return cmp.Compare(boolRank(a.format == report.FormatHTML), boolRank(b.format == report.FormatHTML))
	})
	paths, err := writeOutputs(rep, outs, opts.Stdout)
	errs = append(errs, err)
	if p := os.Getenv("GITHUB_STEP_SUMMARY"); p != "" {
		errs = append(errs, appendStepSummary(p, rep))
	}
	return paths, errors.Join(errs...)
}

// terminalWidth reads the columns of w's terminal, 0 where it cannot.
func terminalWidth(w io.Writer) func() int {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return nil
	}
	return func() int {
		cols, _, err := term.GetSize(f.Fd())
		if err != nil {
			return 0
		}
		return cols
	}
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
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

// selfCommand is the command line that runs this resctl binary with args:
// the path it was started by (found on PATH when it has no directory), so
// the built-in demo target runs as a process of its own.
func selfCommand(args ...string) []string {
	self := os.Args[0]
	if !strings.ContainsRune(self, os.PathSeparator) {
		if p, err := exec.LookPath(self); err == nil {
			self = p
		}
	}
	return append([]string{self}, args...)
}

// detailed prints a validation error with each problem's line and a caret
// under its column.
type detailed struct{ ve *scenario.ValidationError }

func (d detailed) Error() string { return d.ve.Detailed() }
func (d detailed) Unwrap() error { return d.ve }

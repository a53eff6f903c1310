package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
)

type reportOptions struct {
	File string
	// OutDir, if set, receives every format under its usual file name.
	OutDir string
	// Per-format destinations; "-" is standard output.
	JSON, HTML, JUnit, Markdown string
	Stdout                      io.Writer
	Stderr                      io.Writer
}

func newReportCmd(runF func(context.Context, *reportOptions) error) *cobra.Command {
	opts := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report FILE",
		Short: "Re-render the reports of a saved run from its report.json",
		Long: `Re-render a saved run's reports from its report.json, so a report can be
regenerated, restyled by a newer resctl, or produced in a format the run did
not write.

With no flags, prints the terminal summary. --out DIR writes every format
into DIR (report.json, report.html, junit.xml, summary.md); --json, --html,
--junit and --markdown write one format to a file, or to standard output
with "-". Files are written atomically; a file that cannot be written does
not stop the others (exit 1).

A missing file, a file that is not a resctl report, or a report of a newer
schema than this resctl reads is an error with exit code 2.`,
		Example: `  resctl report resctl-out/report.json --html /tmp/report.html
  resctl report resctl-out/report.json --out ci-artifacts
  resctl report resctl-out/report.json --markdown - >> "$GITHUB_STEP_SUMMARY"`,
		Args: exactArgs(1, "a report.json file"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Stdout, opts.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return renderReport(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.OutDir, "out", "o", "", "write every format into `DIR`")
	cmd.Flags().StringVar(&opts.JSON, "json", "", "write report.json to `FILE` (- for stdout)")
	cmd.Flags().StringVar(&opts.HTML, "html", "", "write the HTML report to `FILE` (- for stdout)")
	cmd.Flags().StringVar(&opts.JUnit, "junit", "", "write JUnit XML to `FILE` (- for stdout)")
	cmd.Flags().StringVar(&opts.Markdown, "markdown", "", "write the Markdown summary to `FILE` (- for stdout)")
	cmd.AddCommand(newMergeCmd(nil))
	return cmd
}

// readReport reads a saved report; every way the file can be wrong is a
// usage error (exit 2), with the reason.
func readReport(path string) (*report.Report, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, withCode(exitUsage, fmt.Errorf("report %s: no such file", path), "resctl run writes report.json into its --out directory (default "+scenario.DefaultOutputDir+")")
	}
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("read report: %w", err), "")
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, withCode(exitUsage, fmt.Errorf("report %s: is a directory", path), "give the report.json file, e.g. "+filepath.Join(path, "report.json"))
	}
	r, err := report.ReadJSON(f)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("%s: %w", path, err), "")
	}
	return r, nil
}

func renderReport(opts *reportOptions) error {
	var outs []output
	if opts.OutDir != "" {
		for _, f := range report.Formats {
			outs = append(outs, output{f, filepath.Join(opts.OutDir, f.FileName())})
		}
	}
	outs = append(outs, flagOutputs(map[report.Format]string{
		report.FormatJSON: opts.JSON, report.FormatHTML: opts.HTML, report.FormatJUnit: opts.JUnit, report.FormatMarkdown: opts.Markdown,
	})...)
	toStdout := 0
	for _, o := range outs {
		if o.path == "-" {
			toStdout++
		}
	}
	if toStdout > 1 {
		return withCode(exitUsage, errors.New("only one format can go to standard output"), "give the others a file name")
	}

	r, err := readReport(opts.File)
	if err != nil {
		return err
	}
	if len(outs) == 0 {
		if err := report.WriteTerminal(opts.Stdout, r, report.TerminalOptions{Styled: report.IsTerminal(opts.Stdout)}); err != nil {
			return withCode(exitRunFailed, fmt.Errorf("print summary: %w", err), "")
		}
		return nil
	}
	paths, err := writeOutputs(r, outs, opts.Stdout)
	for _, p := range paths {
		fmt.Fprintf(opts.Stderr, "wrote %s\n", p)
	}
	if err != nil {
		return withCode(exitRunFailed, err, "check that the destination directories are writable")
	}
	return nil
}

// output is one report file to write.
type output struct {
	format report.Format
	path   string // "-" is standard output
}

// flagOutputs turns per-format flags into outputs, in the formats' order.
func flagOutputs(paths map[report.Format]string) []output {
	var outs []output
	for _, f := range report.Formats {
		if p := paths[f]; p != "" {
			outs = append(outs, output{f, p})
		}
	}
	return outs
}

// writeOutputs writes every output, going on past failures so that one
// unwritable file does not lose the others. A path named twice is written
// once. It returns the paths written and every failure, joined.
func writeOutputs(r *report.Report, outs []output, stdout io.Writer) ([]string, error) {
	var paths []string
	var errs []error
	seen := map[string]bool{}
	for _, o := range outs {
		key := filepath.Clean(o.path)
		if seen[key] {
			continue
		}
		seen[key] = true
		if o.path == "-" {
			if err := report.Write(stdout, o.format, r); err != nil {
				errs = append(errs, fmt.Errorf("write %s to stdout: %w", o.format, err))
			}
			continue
		}
		if err := report.WriteFile(o.path, o.format, r); err != nil {
			errs = append(errs, fmt.Errorf("write %s report: %w", o.format, err))
			continue
		}
		paths = append(paths, o.path)
	}
	return paths, errors.Join(errs...)
}

// appendStepSummary appends the Markdown summary to the file GitHub
// Actions names in $GITHUB_STEP_SUMMARY, which it shows on the run's page.
func appendStepSummary(path string, r *report.Report) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append to $GITHUB_STEP_SUMMARY: %w", err)
	}
	if err := report.WriteMarkdown(f, r); err != nil {
		f.Close()
		return fmt.Errorf("append to $GITHUB_STEP_SUMMARY: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append to $GITHUB_STEP_SUMMARY: %w", err)
	}
	return nil
}

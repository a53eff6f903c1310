package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Format is an output format of a report, as named in a scenario's
// output.formats and on the command line.
type Format string

// The file formats. The terminal summary is not among them: it is printed,
// never written to the output directory.
const (
	FormatJSON     Format = "json"
	FormatHTML     Format = "html"
	FormatJUnit    Format = "junit"
	FormatMarkdown Format = "markdown"
)

// Formats lists every file format, in the order a run writes them: the
// machine contract first, so it survives whatever goes wrong after.
var Formats = []Format{FormatJSON, FormatHTML, FormatJUnit, FormatMarkdown}

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	f := Format(s)
	if !slices.Contains(Formats, f) {
		names := make([]string, len(Formats))
		for i, f := range Formats {
			names[i] = string(f)
		}
		return "", fmt.Errorf("unknown report format %q; known formats: %s", s, strings.Join(names, ", "))
	}
	return f, nil
}

// FileName is the name the format's file gets in an output directory.
func (f Format) FileName() string {
	switch f {
	case FormatHTML:
		return "report.html"
	case FormatJUnit:
		return "junit.xml"
	case FormatMarkdown:
		return "summary.md"
	}
	return "report.json"
}

// Write renders the report in one format.
func Write(w io.Writer, f Format, r *Report) error {
	switch f {
	case FormatJSON:
		return WriteJSON(w, r)
	case FormatHTML:
		return WriteHTML(w, r)
	case FormatJUnit:
		return WriteJUnit(w, r)
	case FormatMarkdown:
		return WriteMarkdown(w, r)
	}
	return fmt.Errorf("unknown report format %q", f)
}

// WriteFile writes the report in one format to path atomically: a reader
// (a CI step, a browser reloading the page) never sees a half-written
// file, even if resctl is killed while writing.
func WriteFile(path string, f Format, r *Report) error {
	return writeAtomic(path, func(w io.Writer) error { return Write(w, f, r) })
}

// WriteJSONFile writes report.json to path atomically.
func WriteJSONFile(path string, r *Report) error {
	return WriteFile(path, FormatJSON, r)
}

func writeAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file private; a report is meant to be read.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

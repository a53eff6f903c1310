package report_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resctl/resctl/report"
)

// FuzzReadJSON feeds arbitrary bytes to ReadJSON, as `resctl report` reads
// whatever file it is given: a file is a report or ErrNotReport, never a
// panic; and a report it accepts renders in every format and reads back
// as the same JSON.
func FuzzReadJSON(f *testing.F) {
	golden, err := filepath.Glob("testdata/*.json")
	if err != nil || len(golden) == 0 {
		f.Fatalf("no reports to seed from: %v", err)
	}
	for _, path := range golden {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `"x"`, `{"schema": 1}`, `{"schema": "resctl.report/v9"}`,
		`{"schema": "` + report.Schema + `"}`,
		`{"schema": "` + report.Schema + `", "phases": [{}], "slas": [{}], "series": null}`,
		`{"schema": "` + report.Schema + `", "duration": -1, "phases": [{"start": 5, "end": -5}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang guard: the fuzzer does not report an input that never
		// finishes, but it keeps the input of a worker that crashes.
		guard := time.AfterFunc(time.Minute, func() { panic(fmt.Sprintf("reading and rendering took over a minute: %q", data)) })
		defer guard.Stop()
		r, err := report.ReadJSON(bytes.NewReader(data))
		if err != nil {
			if r != nil || !errors.Is(err, report.ErrNotReport) {
				t.Fatalf("ReadJSON = %v, %v; want nil and ErrNotReport", r, err)
			}
			return
		}
		for _, format := range report.Formats {
			if err := report.Write(io.Discard, format, r); err != nil {
				t.Fatalf("%s of an accepted report: %v", format, err)
			}
		}
		if err := report.WriteTerminal(io.Discard, r, report.TerminalOptions{}); err != nil {
			t.Fatalf("terminal summary of an accepted report: %v", err)
		}
		var once bytes.Buffer
		if err := report.WriteJSON(&once, r); err != nil {
			t.Fatal(err)
		}
		back, err := report.ReadJSON(bytes.NewReader(once.Bytes()))
		if err != nil {
			t.Fatalf("a report written by WriteJSON does not read back: %v\n%s", err, once.String())
		}
		var twice bytes.Buffer
		if err := report.WriteJSON(&twice, back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatalf("a report changes when written and read again:\n%s\nthen\n%s", once.String(), twice.String())
		}
	})
}

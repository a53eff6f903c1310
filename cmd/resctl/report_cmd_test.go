package main

import (
	"context"
	"testing"
)

func TestReportCmd_FlagsToOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want reportOptions
	}{
		{"file only", []string{"report", "r.json"}, reportOptions{File: "r.json"}},
		{"out dir", []string{"report", "r.json", "-o", "dir"}, reportOptions{File: "r.json", OutDir: "dir"}},
		{"every format", []string{"report", "--json", "a.json", "--html", "a.html", "--junit", "a.xml", "--markdown", "-", "r.json"},
			reportOptions{File: "r.json", JSON: "a.json", HTML: "a.html", JUnit: "a.xml", Markdown: "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *reportOptions
			cmd := newReportCmd(func(_ context.Context, o *reportOptions) error { got = o; return nil })
			if code, stderr := execWith(t, cmd, tt.args...); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			g := *got
			g.Stdout, g.Stderr = nil, nil
			if g != tt.want {
				t.Errorf("options = %+v, want %+v", g, tt.want)
			}
		})
	}
}

func TestReportCmd_Usage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no file", []string{"report"}},
		{"two files", []string{"report", "a.json", "b.json"}},
		{"unknown flag", []string{"report", "--pdf", "x", "a.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newReportCmd(func(context.Context, *reportOptions) error { t.Fatal("ran"); return nil })
			if code, _ := execWith(t, cmd, tt.args...); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
		})
	}
}

func TestRunCmd_ReportFlags(t *testing.T) {
	var got *runOptions
	cmd := newRunCmd(func(_ context.Context, o *runOptions) error { got = o; return nil })
	code, stderr := execWith(t, cmd, "run", "s.yaml", "--html", "r.html", "--junit", "j.xml", "--markdown", "s.md")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got.HTML != "r.html" || got.JUnit != "j.xml" || got.Markdown != "s.md" {
		t.Errorf("options = %+v", *got)
	}
}

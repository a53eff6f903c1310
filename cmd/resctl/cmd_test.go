package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/internal/version"
	"github.com/resctl/resctl/report"
)

// execWith runs a root command whose commands are built by build, so a test
// can install runF seams, and returns the exit code and stderr.
func execWith(t *testing.T, cmd *cobra.Command, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	for _, c := range root.Commands() {
		if c.Name() == cmd.Name() {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(cmd)
	var out, errb bytes.Buffer
	code := execute(context.Background(), root, args, &out, &errb)
	return code, errb.String()
}

func TestRunCmd_FlagsToOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want runOptions
	}{
		{"defaults", []string{"run", "s.yaml"}, runOptions{File: "s.yaml"}},
		{"out", []string{"run", "s.yaml", "--out", "dir"}, runOptions{File: "s.yaml", OutDir: "dir"}},
		{"short flags", []string{"run", "-q", "-o", "d", "s.yaml"}, runOptions{File: "s.yaml", OutDir: "d", Quiet: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *runOptions
			cmd := newRunCmd(func(_ context.Context, o *runOptions) error { got = o; return nil })
			if code, stderr := execWith(t, cmd, tt.args...); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got.File != tt.want.File || got.OutDir != tt.want.OutDir || got.Quiet != tt.want.Quiet {
				t.Errorf("options = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestDemoTargetCmd_FlagsToOptions(t *testing.T) {
	var got *demoTargetOptions
	cmd := newDemoTargetCmd(func(_ context.Context, o *demoTargetOptions) error { got = o; return nil })
	if code, stderr := execWith(t, cmd, "demo-target", "--listen", "127.0.0.1:9999", "--seed", "5"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got.Listen != "127.0.0.1:9999" || got.Seed != 5 {
		t.Errorf("options = %+v", *got)
	}
}

func TestExecute_ExitCodes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
	}{
		{"usage", withCode(exitUsage, errors.New("bad"), ""), exitUsage},
		{"run failed", withCode(exitRunFailed, errors.New("down"), "hint"), exitRunFailed},
		{"sla failed", withCode(exitSLAFailed, errors.New("sla"), ""), exitSLAFailed},
		{"unclassified is usage", errors.New("cobra says no"), exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newRunCmd(func(context.Context, *runOptions) error { return tt.err })
			code, stderr := execWith(t, cmd, "run", "x.yaml")
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !bytes.Contains([]byte(stderr), []byte("resctl: ")) {
				t.Errorf("stderr %q lacks the error", stderr)
			}
		})
	}
}

// TestRunCmd_FaultThisMachineCannotInject: a network fault this machine
// cannot inject refuses the run at once, exit 2, with the reason and the
// fix, and nothing written.
func TestRunCmd_FaultThisMachineCannotInject(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte(`name: needs root
target: {builtin: demo}
load: {rate: 10/s, requests: [{path: /}]}
phases:
  - name: slow link
    duration: 1s
    faults: [{network: {delay: 50ms}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newRunCmd(func(ctx context.Context, o *runOptions) error {
		o.networkSupported = func() error { return fmt.Errorf("%w: needs root", netem.ErrUnsupported) }
		return runScenario(ctx, o)
	})
	code, stderr := execWith(t, cmd, "run", file, "--out", filepath.Join(dir, "out"))
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"cannot inject", "slow_link/network", "needs root", "hint: ", "optional: true"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("the refused run wrote its output directory: %v", err)
	}
}

func TestRootCmd_HelpListsEveryExitCode(t *testing.T) {
	var out bytes.Buffer
	if code := execute(context.Background(), newRootCmd(), []string{"--help"}, &out, &out); code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	// An entry starts with its code and goes on over indented lines.
	start := regexp.MustCompile(`^  ([0-9])  `)
	entries := map[int]string{}
	code := -1
	for line := range strings.Lines(out.String()) {
		if m := start.FindStringSubmatch(line); m != nil {
			code, _ = strconv.Atoi(m[1])
		} else if !strings.HasPrefix(line, "     ") {
			code = -1
		}
		if code >= 0 {
			entries[code] += line
		}
	}
	tests := []struct {
		code int
		want string
	}{
		{exitOK, string(report.VerdictPassed)},
		{exitRunFailed, string(report.VerdictError)},
		{exitRunFailed, string(report.VerdictInterrupted)},
		{exitUsage, "invalid scenario"},
		{exitSLAFailed, string(report.VerdictFailed)},
		{exitSLAFailed, string(report.VerdictAborted)},
	}
	for _, tt := range tests {
		if !strings.Contains(entries[tt.code], tt.want) {
			t.Errorf("exit code %d's entry %q does not mention %s", tt.code, entries[tt.code], tt.want)
		}
	}
}

func TestVersionCmd_NamesTheCommitOnce(t *testing.T) {
	tests := []struct {
		name, version, commit string
		want                  string
	}{
		{"tagged release", "v1.2.0", "49ab14a", "resctl v1.2.0 (49ab14a) "},
		{"untagged build is the commit", "49ab14a", "49ab14a", "resctl 49ab14a "},
		{"untagged and dirty", "49ab14a-dirty", "49ab14a", "resctl 49ab14a-dirty "},
		{"commits past a tag", "v1.2.0-3-g49ab14a", "49ab14a", "resctl v1.2.0-3-g49ab14a "},
		{"no commit stamped", "v1.2.0", "", "resctl v1.2.0 "},
	}
	defer func(v, c string) { version.Version, version.Commit = v, c }(version.Version, version.Commit)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			version.Version, version.Commit = tt.version, tt.commit
			var out bytes.Buffer
			if code := execute(context.Background(), newRootCmd(), []string{"version"}, &out, &out); code != exitOK {
				t.Fatalf("exit %d: %s", code, out.String())
			}
			if !strings.HasPrefix(out.String(), tt.want+runtime.Version()) {
				t.Errorf("version printed %q, want %q followed by the Go version", out.String(), tt.want)
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resctl/resctl/scenario"
)

func TestValidateCmd_LimitFlags(t *testing.T) {
	defaults := scenario.Limits{MaxBytes: scenario.DefaultMaxBytes, MaxNodes: scenario.DefaultMaxNodes, MaxProblems: scenario.DefaultMaxProblems}
	tests := []struct {
		name string
		args []string
		want scenario.Limits
	}{
		{"defaults", nil, defaults},
		{"raised", []string{"--max-scenario-bytes", "64MiB", "--max-nodes", "1000000", "--max-problems", "100"}, scenario.Limits{MaxBytes: 64 << 20, MaxNodes: 1000000, MaxProblems: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotValidate, gotRun scenario.Limits
			v := newValidateCmd(func(_ context.Context, o *validateOptions) error { gotValidate = o.Limits; return nil })
			if code, stderr := execWith(t, v, append([]string{"validate", "s.yaml"}, tt.args...)...); code != exitOK {
				t.Fatalf("validate: exit %d: %s", code, stderr)
			}
			r := newRunCmd(func(_ context.Context, o *runOptions) error { gotRun = o.Limits; return nil })
			if code, stderr := execWith(t, r, append([]string{"run", "s.yaml"}, tt.args...)...); code != exitOK {
				t.Fatalf("run: exit %d: %s", code, stderr)
			}
			if gotValidate != tt.want || gotRun != tt.want {
				t.Errorf("limits: validate %+v, run %+v; want %+v", gotValidate, gotRun, tt.want)
			}
		})
	}
	if code, stderr := execWith(t, newValidateCmd(nil), "validate", "--max-scenario-bytes", "0", "s.yaml"); code != exitUsage || !strings.Contains(stderr, "must be above zero") {
		t.Errorf("--max-scenario-bytes 0: exit %d, %q", code, stderr)
	}
}

// Ctrl-C while validate reads stops it with exit code 1, not a verdict.
func TestValidate_Interrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	src := "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := execute(ctx, newRootCmd(), []string{"validate", path}, &out, &errb)
	if code != exitRunFailed || !strings.Contains(errb.String(), "interrupted") || strings.Contains(out.String(), "ok") {
		t.Errorf("validate with Ctrl-C: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Every example scenario validates as it is, in an empty environment: the
// defaults of its ${VAR:-default} values are enough, as a new user meets
// them. It runs resctl as a process of its own (TestMain puts it on PATH)
// so no variable of the test's environment leaks in.
func TestValidate_ExamplesWithEmptyEnvironment(t *testing.T) {
	files, err := filepath.Glob("../../testdata/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example scenarios: %v", err)
	}
	cmd := exec.Command("resctl", append([]string{"validate"}, files...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("resctl validate testdata/scenarios/*.yaml with an empty environment: %v\n%s", err, out)
	}
}

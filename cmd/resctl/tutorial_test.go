package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/resctl/resctl/internal/loopback"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestTutorial follows docs/tutorial.md as a new user does: every sh block
// is run in order, every yaml block that names a file is written where
// the user would save it, and the verdict lines of its text blocks must
// be what the command before them printed. Only the install block (sh
// norun), which needs the network, is left out; resctl is the one this
// test binary is.
//
// The example service is built as the tutorial builds it, from a copy of
// testdata/services/orders in a module of its own that takes resctl from
// this checkout, offline; ORDERS_ADDR and PAYMENTS_ADDR move it and its
// dependency to free ports.
func TestTutorial(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a service and runs a 12 s scenario")
	}
	t.Parallel()
	doc, err := os.ReadFile("../../docs/tutorial.md")
	if err != nil {
		t.Fatal(err)
	}
	ar, err := tutorialScript(string(doc))
	if err != nil {
		t.Fatalf("docs/tutorial.md: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tutorial.txtar"), txtar.Format(ar), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	goEnv := goEnvOf(t, "GOCACHE", "GOMODCACHE", "GOPATH")
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Cmds:                scriptCmds,
		Setup: func(env *testscript.Env) error {
			src := filepath.Join(repo, "testdata", "services", "orders")
			dst := filepath.Join(env.WorkDir, "testdata", "services", "orders")
			if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
				return err
			}
			mod := "module example.com/tutorial\n\ngo 1.26.8\n\nrequire github.com/resctl/resctl v0.0.0\n\nreplace github.com/resctl/resctl => " + repo + "\n"
			if err := os.WriteFile(filepath.Join(env.WorkDir, "go.mod"), []byte(mod), 0o644); err != nil {
				return err
			}
			sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(env.WorkDir, "go.sum"), sum, 0o644); err != nil {
				return err
			}
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			// Offline: every module the service needs is in the module
			// cache already, as this test was built from them.
			env.Setenv("GOFLAGS", "-mod=mod")
			env.Setenv("GOPROXY", "off")
			env.Setenv("GOTOOLCHAIN", "local")
			for _, name := range []string{"ORDERS_ADDR", "PAYMENTS_ADDR"} {
				addr, err := loopback.QuietAddr()
				if err != nil {
					return err
				}
				env.Setenv(name, addr)
			}
			return nil
		},
	})
}

// goEnvOf is the go command's view of the variables names: testscript
// gives its scripts a HOME of nowhere, where go finds no caches.
func goEnvOf(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"env", "-json"}, names...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// verdictLine is a line of a text block that a test can hold a run to:
// the verdict and each SLA's.
var verdictLine = regexp.MustCompile(`^(resctl run \S+: [A-Z]+|  (PASS|FAIL)  .*)$`)

// tutorialScript turns a tutorial's code blocks into a testscript script
// and the files it writes.
func tutorialScript(doc string) (*txtar.Archive, error) {
	var (
		script  bytes.Buffer
		ar      txtar.Archive
		norun   int
		lastCmd string
		lines   = strings.Split(doc, "\n")
	)
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		start := i + 1
		for i++; i < len(lines) && lines[i] != "```"; i++ {
		}
		if i == len(lines) {
			return nil, fmt.Errorf("line %d: a code block that never ends", start)
		}
		body := lines[start:i]
		fields := strings.Fields(info)
		switch {
		case len(fields) == 2 && fields[0] == "sh" && fields[1] == "norun":
			norun++
		case len(fields) == 1 && fields[0] == "sh":
			for _, cmd := range body {
				if cmd = strings.TrimSpace(cmd); cmd == "" || strings.HasPrefix(cmd, "#") {
					continue
				}
				if strings.ContainsAny(cmd, "|&;<>$'\"`\\*") {
					return nil, fmt.Errorf("line %d: %q: a tutorial command must be a plain command line the test can run", start, cmd)
				}
				lastCmd = cmd
				if dir, ok := strings.CutPrefix(cmd, "cd "); ok {
					fmt.Fprintf(&script, "cd %s\n", dir)
					continue
				}
				fmt.Fprintf(&script, "exec %s\n", cmd)
			}
		case len(fields) == 2 && fields[0] == "yaml" && strings.HasPrefix(fields[1], "file="):
			name := strings.TrimPrefix(fields[1], "file=")
			ar.Files = append(ar.Files, txtar.File{Name: "tutorial/" + name, Data: []byte(strings.Join(body, "\n") + "\n")})
			fmt.Fprintf(&script, "cp $WORK/tutorial/%s %s\n", name, name)
		case len(fields) == 1 && fields[0] == "text":
			for _, l := range body {
				if verdictLine.MatchString(l) {
					if !strings.HasPrefix(lastCmd, "resctl run ") {
						return nil, fmt.Errorf("line %d: a verdict shown after %q, not after a resctl run", start, lastCmd)
					}
					fmt.Fprintf(&script, "stdout '%s'\n", strings.ReplaceAll("^"+regexp.QuoteMeta(l)+"$", "'", "''"))
				}
			}
		}
	}
	if norun != 1 {
		return nil, fmt.Errorf("%d blocks marked norun; only the install block may be", norun)
	}
	if !strings.Contains(script.String(), "exec resctl run ") {
		return nil, fmt.Errorf("no resctl run in the tutorial")
	}
	ar.Comment = script.Bytes()
	return &ar, nil
}

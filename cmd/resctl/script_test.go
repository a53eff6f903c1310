package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/resctl/resctl/internal/demo"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"resctl": func() { os.Exit(run()) },
	})
}

// TestScripts runs the CLI scripts under testdata/script: real resctl
// processes running real scenarios against a demo target on loopback.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"demo-target": cmdDemoTarget,
			"dead-url":    cmdDeadURL,
			"exitcode":    cmdExitCode,
			"sleep":       cmdSleep,
		},
	})
}

// cmdDemoTarget starts the built-in demo target on a free loopback port for
// the rest of the script and exports its base URL as DEMO_URL.
func cmdDemoTarget(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: demo-target")
	}
	srv, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 1})
	ts.Check(err)
	ts.Defer(func() { _ = srv.Close() })
	ts.Setenv("DEMO_URL", srv.URL())
}

// cmdDeadURL exports DEAD_URL, a loopback URL on which nothing listens.
func cmdDeadURL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: dead-url")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := ln.Addr().String()
	ts.Check(ln.Close())
	ts.Setenv("DEAD_URL", "http://"+addr)
}

// cmdExitCode runs a program like exec does and asserts its exact exit code:
// exitcode N prog args...
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("run %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdSleep pauses the script: sleep DURATION, for scripts that act on a
// background process mid-run.
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

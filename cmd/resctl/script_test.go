package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/internal/loopback"
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
		Cmds:                scriptCmds,
	})
}

// scriptCmds are the commands scripts have beyond testscript's own.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"demo-target": cmdDemoTarget,
	"dead-url":    cmdDeadURL,
	"exitcode":    cmdExitCode,
	"port-closed": cmdPortClosed,
	"free-port":   cmdFreePort,
	"wait-http":   cmdWaitHTTP,
	"wait-served": cmdWaitServed,
	"http-status": cmdHTTPStatus,
	"results":     cmdResults,
	"wait-file":   cmdWaitFile,
	"wait-event":  cmdWaitEvent,
	"mark":        cmdMark,
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

// cmdWaitFile waits until FILE exists — a process the script started got
// that far: wait-file FILE.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: wait-file FILE")
	}
	for deadline := time.Now().Add(scriptHangGuard); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear within %v", args[0], scriptHangGuard)
}

// cmdWaitEvent waits until the admin API at URL has an event of that
// kind, for that fault id or guard policy: wait-event URL KIND ID.
func cmdWaitEvent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: wait-event URL KIND ID")
	}
	c := &harness.AdminClient{BaseURL: args[0], HTTP: &http.Client{Timeout: time.Second}}
	var after uint64
	for deadline := time.Now().Add(scriptHangGuard); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		evs, next, err := c.Events(context.Background(), after)
		if err != nil {
			continue
		}
		after = next
		for _, e := range evs {
			if e.Kind == args[1] && e.ID == args[2] {
				return
			}
		}
	}
	ts.Fatalf("no %s event of %s within %v", args[1], args[2], scriptHangGuard)
}

// cmdMark puts a mark on the timeline of the admin API at URL: mark URL TEXT.
func cmdMark(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mark URL TEXT")
	}
	c := &harness.AdminClient{BaseURL: args[0], HTTP: &http.Client{Timeout: 10 * time.Second}}
	ts.Check(c.Mark(context.Background(), args[1]))
}

// cmdFreePort exports a loopback port nothing listens on: free-port NAME.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: free-port NAME")
	}
	port, err := loopback.QuietPort()
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(port))
}

// scriptHangGuard bounds the waits of the script commands: only a hang
// takes this long, whatever else the machine is doing.
const scriptHangGuard = time.Minute

// cmdWaitHTTP waits until URL answers 200: wait-http URL.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: wait-http URL")
	}
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(scriptHangGuard); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	ts.Fatalf("%s did not answer 200 within %v", args[0], scriptHangGuard)
}

// cmdWaitServed waits until the demo target whose base URL is given has
// served at least N requests to its API (/api/…), by its own /metrics:
// wait-served URL N.
// Scripts that act on a run mid-way wait for its load this way, not for a
// time that a busy machine may not keep.
func cmdWaitServed(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: wait-served URL N")
	}
	want, err := strconv.ParseFloat(args[1], 64)
	ts.Check(err)
	c := &http.Client{Timeout: time.Second}
	served := 0.0
	for deadline := time.Now().Add(scriptHangGuard); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get(args[0] + "/metrics")
		if err != nil {
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		served = 0
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "demo_http_requests_total{") && strings.Contains(line, ` /api/`) {
				v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				ts.Check(err)
				served += v
			}
		}
		if served >= want {
			return
		}
	}
	ts.Fatalf("%s served %v requests within %v, want %v", args[0], served, scriptHangGuard, want)
}

// cmdHTTPStatus asserts the status of a GET: http-status URL CODE.
func cmdHTTPStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: http-status URL CODE")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(args[0])
	ts.Check(err)
	resp.Body.Close()
	if got := fmt.Sprint(resp.StatusCode); got != args[1] {
		ts.Fatalf("GET %s: %s, want %s", args[0], got, args[1])
	}
}

// cmdPortClosed asserts that nothing listens on a loopback port any more:
// port-closed PORT — a process resctl started is gone.
func cmdPortClosed(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: port-closed PORT")
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+args[0], time.Second)
	if err == nil {
		c.Close()
		ts.Fatalf("something still listens on 127.0.0.1:%s", args[0])
	}
}

// cmdResults decodes a results file with vegeta's own decoder and checks
// it holds at least MIN results: results FILE MIN.
func cmdResults(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: results FILE MIN")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	n := 0
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if !errors.Is(err, io.EOF) {
				ts.Fatalf("decode result %d: %v", n+1, err)
			}
			break
		}
		n++
	}
	ts.Logf("%d results", n)
	if (n >= want) == neg {
		ts.Fatalf("%d results in %s, want at least %d", n, args[0], want)
	}
}

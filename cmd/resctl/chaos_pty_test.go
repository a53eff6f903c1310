//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"

	"github.com/resctl/resctl/harness"
)

// terminal is a real resctl chaos on a pseudo-terminal, drawn on a
// terminal emulator of 80×24 that answers its queries as a terminal would;
// and the keys typed into it.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	emu  *vt.Emulator
	raw  strings.Builder
	done chan struct{}
}

func startTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command("resctl", args...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "NO_COLOR=1")
	// A machine without pseudo-terminals (no /dev/ptmx or devpts) cannot
	// run the console at all; anything else that goes wrong is a failure.
	if f, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0); err != nil {
		t.Skipf("this machine has no pseudo-terminals: %v", err)
	} else {
		f.Close()
	}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, cmd: cmd, tty: tty, emu: vt.NewEmulator(80, 24), done: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = tty.Close()
	})
	go func() {
		defer close(term.done)
		b := make([]byte, 32<<10)
		for {
			n, err := tty.Read(b)
			term.mu.Lock()
			term.raw.Write(b[:n])
			_, _ = term.emu.Write(b[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// The emulator's answers to the program's queries go back to it. This
	// reader ends with the test binary: closing the emulator under it
	// would race with its read.
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := term.emu.Read(b)
			if err != nil {
				return
			}
			_, _ = tty.Write(b[:n])
		}
	}()
	return term
}

// text is everything written to the terminal so far, escape sequences
// stripped: lines printed before and after the full-screen console.
func (term *terminal) text() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return ansi.Strip(term.raw.String())
}

// rawText is everything written to the terminal so far, escape
// sequences and all.
func (term *terminal) rawText() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.raw.String()
}

// screen is what the terminal shows now.
func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.emu.String()
}

// waitFor waits until the screen shows what re matches, and returns the
// match; only a hang takes scriptHangGuard.
func (term *terminal) waitFor(re string) []string {
	term.t.Helper()
	return term.waitIn(re, term.screen)
}

// waitForText is waitFor over everything written, not only the screen.
func (term *terminal) waitForText(re string) []string {
	term.t.Helper()
	return term.waitIn(re, term.text)
}

func (term *terminal) waitIn(re string, of func() string) []string {
	term.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(scriptHangGuard)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(of()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	term.t.Fatalf("the console never showed %q; the screen:\n%s", re, term.screen())
	return nil
}

func (term *terminal) typeLine(line string) {
	term.t.Helper()
	if _, err := term.tty.WriteString(line + "\r"); err != nil {
		term.t.Fatal(err)
	}
}

func (term *terminal) wait() int {
	term.t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- term.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(scriptHangGuard):
		term.t.Fatalf("resctl chaos did not end; it drew:\n%s", tail(term.text(), 3000))
	}
	<-term.done
	return term.cmd.ProcessState.ExitCode()
}

func tail(s string, n int) string { return s[max(len(s)-n, 0):] }

func faultsOf(t *testing.T, admin string) []string {
	t.Helper()
	ps, err := (&harness.AdminClient{BaseURL: admin}).Proxies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		for _, f := range p.Faults {
			out = append(out, p.Name+"/"+f.ID)
		}
	}
	return out
}

// TestChaos_Terminal starts resctl chaos --demo on a pseudo-terminal, types
// a fault, finds it on screen and in the admin API, and quits: the demo
// target it started is gone.
func TestChaos_Terminal(t *testing.T) {
	t.Parallel()
	term := startTerminal(t, "chaos", "--demo")
	pid, _ := strconv.Atoi(term.waitForText(`started the builtin demo \(http://[0-9.:]+, pid ([0-9]+)\)`)[1])
	admin := term.waitFor(`resctl chaos · (http://127\.0\.0\.1:[0-9]+)`)[1]
	term.waitFor(`faults \(0\)`)
	term.typeLine("latency default 200ms 30%")
	term.waitFor(`faults \(1\)`)
	term.waitFor(`latency on default +latency delay=200ms percent=30`)
	if got := faultsOf(t, admin); fmt.Sprint(got) != "[default/latency]" {
		t.Fatalf("admin API faults %v, want the latency on default", got)
	}
	term.typeLine("latncy default 1s")
	term.waitFor(`did you mean latency\?`)
	term.typeLine("quit")
	if code := term.wait(); code != 0 {
		t.Errorf("exit %d, want 0; drew:\n%s", code, tail(term.text(), 2000))
	}
	if !strings.Contains(term.text(), "session ended; 1 fault(s) cleared") {
		t.Errorf("no word on the faults cleared:\n%s", tail(term.text(), 1000))
	}
	// The demo target went with the session: no process is left.
	deadline := time.Now().Add(scriptHangGuard)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the demo target (pid %d) outlived the session", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestChaos_TerminalClosed attaches to a running resctl proxy, adds a
// fault, and closes the terminal (SIGHUP): the fault the session added is
// cleared, the one someone else added stays.
func TestChaos_TerminalClosed(t *testing.T) {
	t.Parallel()
	adminPort := freePort(t)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	proxy := exec.Command("resctl", "proxy", "--upstream", "http://127.0.0.1:9", "--admin", fmt.Sprintf("127.0.0.1:%d", adminPort), "--name", "web")
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Process.Kill(); _ = proxy.Wait() })
	waitHTTP(t, admin+"/healthz")
	ac := &harness.AdminClient{BaseURL: admin}
	if _, err := ac.AddFault(context.Background(), "web", harness.FaultRequest{ID: "theirs", Kind: "abort", TTL: "1m"}); err != nil {
		t.Fatal(err)
	}
	term := startTerminal(t, "chaos", "--attach", admin)
	term.waitFor(`faults \(1\)`)
	term.typeLine("latency web 5ms id=mine")
	term.waitFor(`faults \(2\)`)
	if got := faultsOf(t, admin); len(got) != 2 {
		t.Fatalf("faults %v, want theirs and mine", got)
	}
	_ = term.tty.Close() // the terminal goes away: SIGHUP
	term.wait()
	if got := faultsOf(t, admin); fmt.Sprint(got) != "[web/theirs]" {
		t.Errorf("after the terminal closed the proxy has %v, want only web/theirs", got)
	}
}

// waitHTTP waits until url answers 200; only a hang takes scriptHangGuard.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(scriptHangGuard)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

//go:build linux

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// TestRun_LiveLine runs a scenario on a pseudo-terminal of 80 columns and
// reads its live status line as a terminal draws it: the phase, the fault
// that is on, the last second's rate, p99 and errors, and the breaker's
// state, every drawing within 79 columns so that none wraps and leaves a
// piece behind. Interrupted in the long fault phase, the run erases the
// line, and the SLA of the recovery it never reached is not run.
func TestRun_LiveLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "live.yaml")
	err := os.WriteFile(file, []byte(`name: live
target: {builtin: demo}
proxy:
  guard:
    - breaker: {window: 10s, failure_rate: 50%, min_calls: 20, open_for: 5s}
load: {rate: 20/s, requests: [{path: /api/orders}]}
phases:
  - {name: warmup, duration: 1s}
  - name: slow_payments
    duration: 5m
    faults: [{latency: {delay: 20ms}}]
  - {name: recovery, duration: 5s}
slas:
  - name: back to normal
    during: recovery
    expect: success_rate >= 99%
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	term := startTerminal(t, "run", file, "--out", filepath.Join(dir, "out"))
	status := term.waitFor(`(?m)^slow_payments \d+s(/5m6s)? · fault: latency · \d+/s p99 \S+ err [0-9.]+% · breaker (\S+ )?closed *$`)[0]
	t.Logf("status line: %q", status)
	if err := term.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := term.wait(); code != exitRunFailed {
		t.Errorf("exit %d, want %d", code, exitRunFailed)
	}
	raw := term.rawText()
	drawn := 0
	for _, seg := range strings.Split(raw, "\r\x1b[K")[1:] {
		line, _, _ := strings.Cut(seg, "\n")
		if w := ansi.StringWidth(line); w >= 80 {
			t.Errorf("a drawing of %d columns on a terminal of 80: %q", w, line)
		}
		if strings.Contains(line, " · ") {
			drawn++
		}
	}
	if drawn == 0 {
		t.Errorf("no status line drawn:\n%s", tail(raw, 2000))
	}
	screen := term.screen()
	if regexp.MustCompile(` · (no fault|fault: )`).MatchString(screen) {
		t.Errorf("the status line was left on the screen:\n%s", screen)
	}
	if !regexp.MustCompile(`NOT RUN +back to normal`).MatchString(term.text()) {
		t.Errorf("the recovery's SLA is not shown as not run:\n%s", tail(term.text(), 3000))
	}
}

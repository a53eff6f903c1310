package runner

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/resctl/resctl/record"
)

// liveFixture is a live status over a baseline of 4 s and a fault of 6 s
// with a latency fault, 50 requests a second for five seconds, one in
// ten failing, and a breaker.
func liveFixture(t *testing.T, w *bytes.Buffer, tty bool) (*live, time.Time) {
	t.Helper()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spans := []record.PhaseSpan{{Name: "baseline", Start: 0, End: 4 * time.Second}, {Name: "fault", Start: 4 * time.Second, End: 10 * time.Second}}
	rec := record.NewRecorder(start, spans, time.Second)
	for i := range 250 {
		sent := start.Add(time.Duration(i) * 20 * time.Millisecond)
		rec.Add(record.Result{Sent: sent, Latency: 30 * time.Millisecond, Code: 200, Failed: i%10 == 0})
	}
	p := plan{spans: spans, faults: [][]plannedFault{nil, {{id: "fault/latency"}, {id: "fault/abort"}}}}
	l := newLive(w, tty, p, rec, start)
	l.guards = func() []string { return []string{"breaker orders: open"} }
	return l, start
}

func TestLive_line(t *testing.T) {
	l, _ := liveFixture(t, nil, true)
	tests := []struct {
		at    time.Duration
		width int
		want  []string
	}{
		{500 * time.Millisecond, 80, []string{"baseline 0s/10s [", "] · no fault · breaker orders: open"}},
		{5500 * time.Millisecond, 0, []string{"fault 5s/10s · fault on: latency, abort · 50 req/s p99 30ms err 10.0% · breaker orders: open"}},
		{5500 * time.Millisecond, 120, []string{"fault 5s/10s [===========         ] · fault on"}},
		{time.Hour, 0, []string{"fault 10s/10s · fault on"}},
	}
	for _, tt := range tests {
		got := l.line(tt.at, tt.width)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("line(%v, %d) = %q, want it to contain %q", tt.at, tt.width, got, w)
			}
		}
	}
	// In the fault's first second the last whole second is the baseline's:
	// the line names the fault and shows no figures until its own second.
	if got := l.line(4500*time.Millisecond, 0); strings.Contains(got, "req/s") || !strings.Contains(got, "fault 4s/10s · fault on") {
		t.Errorf("line(4.5s) = %q, want the fault phase without the baseline's figures", got)
	}
}

// However narrow the terminal and long the names, the line stays off its
// last column, so it never wraps and a redraw erases all of it; it drops
// the bar before it cuts anything else.
func TestLive_line_FitsTheWidth(t *testing.T) {
	l, _ := liveFixture(t, nil, true)
	l.guards = func() []string {
		return []string{"breaker a-rather-long-policy-name: half-open", "throttle another-long-one: closed", "bulkhead 席位: open"}
	}
	for _, width := range []int{20, 40, 79, 80, 100, 200} {
		for at := time.Duration(0); at <= 11*time.Second; at += 500 * time.Millisecond {
			got := l.line(at, width)
			if w := ansi.StringWidth(got); w >= width {
				t.Fatalf("line(%v, %d) is %d columns wide: %q", at, width, w, got)
			}
		}
	}
	if got := l.line(5500*time.Millisecond, 80); strings.Contains(got, "[") || !strings.HasSuffix(got, "…") {
		t.Errorf("line at 80 columns = %q, want no bar and a cut end", got)
	}
}

// Progress lines go above the status line: the line is erased, the text
// written, and the status drawn again below it.
func TestLive_Write(t *testing.T) {
	var b bytes.Buffer
	l := &live{w: &b, tty: true, status: "STATUS"}
	if _, err := l.Write([]byte("resctl: phase fault\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "\r\x1b[Kresctl: phase fault\nSTATUS"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// Without a terminal the status is a plain line at each tick, between the
// progress lines, with no escape codes and no bar.
func TestLive_tick_WithoutTerminal(t *testing.T) {
	var b bytes.Buffer
	l, start := liveFixture(t, &b, false)
	write := func(s string) {
		if _, err := l.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("resctl: phase baseline (4s)\n")
	l.tick(start.Add(3 * time.Second))
	write("resctl: phase fault (6s) faults: fault/latency, fault/abort\n")
	l.tick(start.Add(5*time.Second + 200*time.Millisecond))
	want := "resctl: phase baseline (4s)\n" +
		"resctl: baseline 3s/10s · no fault · 50 req/s p99 30ms err 10.0% · breaker orders: open\n" +
		"resctl: phase fault (6s) faults: fault/latency, fault/abort\n" +
		"resctl: fault 5s/10s · fault on: latency, abort · 50 req/s p99 30ms err 10.0% · breaker orders: open\n"
	if got := b.String(); got != want {
		t.Errorf("wrote\n%s\nwant\n%s", got, want)
	}
}

// On a terminal, run draws the status at each tick and erases it when the
// run ends, leaving nothing behind.
func TestLive_run_ErasesTheLine(t *testing.T) {
	var b bytes.Buffer
	l, start := liveFixture(t, &b, true)
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, ticks) }()
	ticks <- start.Add(time.Second)
	cancel()
	<-done
	got := b.String()
	if !strings.HasPrefix(got, "\r\x1b[Kbaseline 1s/10s") || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("wrote %q, want the status drawn, then erased", got)
	}
}

func TestFmtRunTime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3500 * time.Millisecond:  "3.5s",
		4 * time.Second:          "4s",
		12400 * time.Millisecond: "12s",
		90 * time.Second:         "1m30s",
	} {
		if got := fmtRunTime(d); got != want {
			t.Errorf("fmtRunTime(%v) = %q, want %q", d, got, want)
		}
	}
}

// At 80 columns a line with two faults and a breaker keeps every part,
// in fewer words.
func TestLive_line_At80Columns(t *testing.T) {
	l, _ := liveFixture(t, nil, true)
	want := "fault 5s · fault: latency,abort · 50/s p99 30ms err 10% · breaker orders open"
	if got := l.line(5500*time.Millisecond, 80); got != want {
		t.Errorf("line at 80 columns = %q, want %q", got, want)
	}
}

package runner

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/resctl/resctl/record"
)

// LiveInterval is how often the live status line is redrawn on a terminal.
const LiveInterval = 500 * time.Millisecond

// ProgressInterval is how often a run without a terminal (a CI log)
// prints its status, as a line of its own, between the lines that mark
// each phase's start.
const ProgressInterval = 10 * time.Second

// DefaultLiveWidth is the terminal width assumed when it cannot be read.
const DefaultLiveWidth = 80

// live reports a run's status as it goes: the phase, elapsed time, the
// faults that are on, the rate achieved, p99 and errors over the last
// whole second, and each guard policy's state. On a terminal it keeps one
// status line at the bottom, redrawn in place and cut to the terminal's
// width, with the run's progress lines scrolling above it; elsewhere it
// prints the status as a progress line every ProgressInterval. It is an
// io.Writer for the progress lines.
type live struct {
	w     io.Writer
	tty   bool
	width func() int // the terminal's columns; nil or 0 is DefaultLiveWidth
	spans []record.PhaseSpan
	// faults are each phase's fault ids.
	faults [][]string
	// guards are the stateful guard policies' states now, "breaker
	// orders: open"; nil has none.
	guards func() []string
	rec    *record.Recorder
	start  time.Time

	mu     sync.Mutex
	status string
}

func newLive(w io.Writer, tty bool, p plan, rec *record.Recorder, start time.Time) *live {
	l := &live{w: w, tty: tty, spans: p.spans, rec: rec, start: start}
	for _, fs := range p.faults {
		var ids []string
		for _, f := range fs {
			ids = append(ids, f.id)
		}
		l.faults = append(l.faults, ids)
	}
	return l
}

// clearLine returns the cursor to the line's start and erases it.
const clearLine = "\r\x1b[K"

// Write prints progress lines; on a terminal, above the status line.
func (l *live) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.tty {
		return l.w.Write(p)
	}
	if _, err := io.WriteString(l.w, clearLine); err != nil {
		return 0, err
	}
	n, err := l.w.Write(p)
	if err == nil && l.status != "" {
		_, err = io.WriteString(l.w, l.status)
	}
	return n, err
}

// run reports the status at every tick, as of the tick's time, until ctx
// ends; on a terminal it then erases the status line. Ticks come every
// LiveInterval on a terminal, every ProgressInterval elsewhere.
func (l *live) run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			if l.tty {
				l.mu.Lock()
				l.status = ""
				_, _ = io.WriteString(l.w, clearLine)
				l.mu.Unlock()
			}
			return
		case at := <-ticks:
			l.tick(at)
		}
	}
}

// tick reports the status at an instant.
func (l *live) tick(at time.Time) {
	elapsed := at.Sub(l.start)
	if !l.tty {
		l.mu.Lock()
		_, _ = fmt.Fprintf(l.w, "resctl: %s\n", l.line(elapsed, 0))
		l.mu.Unlock()
		return
	}
	width := DefaultLiveWidth
	if l.width != nil {
		if w := l.width(); w > 0 {
			width = w
		}
	}
	s := l.line(elapsed, width)
	l.mu.Lock()
	l.status = s
	_, _ = io.WriteString(l.w, clearLine+s)
	l.mu.Unlock()
}

// line is the status at elapsed into the run, fitted to width columns
// (0: no limit, and no bar). It keeps off the last column, where a
// terminal would wrap, so a redraw always erases the whole of it. Where
// the full line does not fit it drops the bar, then words, then the run's
// total time and the policies' names, and only then cuts its end.
func (l *live) line(elapsed time.Duration, width int) string {
	if len(l.spans) == 0 {
		return ""
	}
	total := l.spans[len(l.spans)-1].End
	elapsed = min(max(elapsed, 0), total)
	current := len(l.spans) - 1
	for i, sp := range l.spans {
		if elapsed < sp.End {
			current = i
			break
		}
	}
	phase := l.spans[current].Name
	at := elapsed.Truncate(time.Second).String()
	full := []string{phase + " " + at + "/" + fmtRunTime(total)}
	short := []string{phase + " " + at + "/" + fmtRunTime(total)}
	if current < len(l.faults) && len(l.faults[current]) > 0 {
		var kinds []string
		for _, id := range l.faults[current] {
			kinds = append(kinds, strings.TrimPrefix(id, phase+"/"))
		}
		full = append(full, "fault on: "+strings.Join(kinds, ", "))
		short = append(short, "fault: "+strings.Join(kinds, ","))
	} else {
		full = append(full, "no fault")
		short = append(short, "no fault")
	}
	// The last whole second: the one running now is still filling. In a
	// phase's first second that is the phase before's, which the line,
	// naming this phase and its faults, would pass off as this one's: it
	// waits for the phase's own.
	from := max(elapsed-time.Second, 0).Truncate(time.Second)
	to := elapsed.Truncate(time.Second)
	if last := l.rec.Window(from, to); to > from && from >= l.spans[current].Start && last.Requests > 0 {
		rate := float64(last.Requests) / (to - from).Seconds()
		p99 := last.Latency.P99.Round(100 * time.Microsecond)
		errPct := 100 * last.ErrorRate()
		full = append(full, fmt.Sprintf("%.0f req/s p99 %s err %.1f%%", rate, p99, errPct))
		short = append(short, fmt.Sprintf("%.0f/s p99 %s err %s%%", rate, p99, strings.TrimSuffix(fmt.Sprintf("%.1f", errPct), ".0")))
	}
	var states []string
	if l.guards != nil {
		states = l.guards()
	}
	if len(states) > 0 {
		full = append(full, strings.Join(states, ", "))
		short = append(short, strings.ReplaceAll(strings.Join(states, ", "), ": ", " "))
	}
	line := strings.Join(full, " · ")
	if width <= 0 {
		return line
	}
	room := width - 1
	// A bar where there is room for one of at least ten columns.
	if bar := min(20, room-ansi.StringWidth(line)-3); bar >= 10 {
		done := int(float64(bar) * elapsed.Seconds() / total.Seconds())
		full[0] += " [" + strings.Repeat("=", done) + strings.Repeat(" ", bar-done) + "]"
		return strings.Join(full, " · ")
	}
	if ansi.StringWidth(line) <= room {
		return line
	}
	line = strings.Join(short, " · ")
	if ansi.StringWidth(line) > room {
		short[0] = phase + " " + at
		line = strings.Join(short, " · ")
	}
	if ansi.StringWidth(line) > room && len(states) > 0 {
		// The policies' kinds and states, without their names.
		kinds := make([]string, len(states))
		for i, st := range states {
			kind, rest, _ := strings.Cut(st, " ")
			_, state, _ := strings.Cut(rest, ": ")
			kinds[i] = kind + " " + state
		}
		short[len(short)-1] = strings.Join(kinds, ", ")
		line = strings.Join(short, " · ")
	}
	return ansi.Truncate(line, room, "…")
}

// fmtRunTime is a time into the run as the status gives it: whole seconds,
// or tenths under ten seconds where it is not whole.
func fmtRunTime(d time.Duration) string {
	if d < 10*time.Second && d%time.Second != 0 {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

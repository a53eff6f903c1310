package runner

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/resctl/resctl/record"
)

// LiveInterval is how often the live status line is redrawn.
const LiveInterval = 500 * time.Millisecond

// live keeps one status line at the bottom of a terminal — the phase,
// elapsed and remaining time with a bar, the rate achieved, p99 and errors
// over the last second — with the run's progress lines scrolling above
// it. It is an io.Writer for those lines.
type live struct {
	w     io.Writer
	spans []record.PhaseSpan
	rec   *record.Recorder
	start time.Time
	now   func() time.Time

	mu     sync.Mutex
	status string
}

func newLive(w io.Writer, spans []record.PhaseSpan, rec *record.Recorder, start time.Time) *live {
	return &live{w: w, spans: spans, rec: rec, start: start, now: time.Now}
}

// clearLine returns the cursor to the line's start and erases it.
const clearLine = "\r\x1b[K"

// Write prints progress lines above the status line.
func (l *live) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.WriteString(l.w, clearLine); err != nil {
		return 0, err
	}
	n, err := l.w.Write(p)
	if err == nil && l.status != "" {
		_, err = io.WriteString(l.w, l.status)
	}
	return n, err
}

// run redraws the status line until ctx ends, then erases it.
func (l *live) run(ctx context.Context) {
	t := time.NewTicker(LiveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.mu.Lock()
			l.status = ""
			_, _ = io.WriteString(l.w, clearLine)
			l.mu.Unlock()
			return
		case <-t.C:
			s := l.line(l.now().Sub(l.start))
			l.mu.Lock()
			l.status = s
			_, _ = io.WriteString(l.w, clearLine+s)
			l.mu.Unlock()
		}
	}
}

// line is the status at elapsed into the run.
func (l *live) line(elapsed time.Duration) string {
	if len(l.spans) == 0 {
		return ""
	}
	total := l.spans[len(l.spans)-1].End
	elapsed = min(max(elapsed, 0), total)
	phase := l.spans[len(l.spans)-1].Name
	for _, sp := range l.spans {
		if elapsed < sp.End {
			phase = sp.Name
			break
		}
	}
	// The last whole second: the one running now is still filling.
	last := l.rec.Window(max(elapsed-2*time.Second, 0).Truncate(time.Second), elapsed.Truncate(time.Second))
	const width = 20
	done := int(float64(width) * elapsed.Seconds() / total.Seconds())
	bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
	s := fmt.Sprintf("%s [%s] %s/%s · %s left", phase, bar, elapsed.Truncate(time.Second), total, (total - elapsed).Truncate(time.Second))
	if last.Requests > 0 {
		secs := max((elapsed.Truncate(time.Second) - max(elapsed-2*time.Second, 0).Truncate(time.Second)).Seconds(), 1)
		s += fmt.Sprintf(" · %.0f req/s · p99 %s · errors %.1f%%", float64(last.Requests)/secs, last.Latency.P99.Round(100*time.Microsecond), 100*last.ErrorRate())
	}
	return s
}

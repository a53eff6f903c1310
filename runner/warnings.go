package runner

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// warningPrefix starts every warning the runner prints.
const warningPrefix = "resctl: warning: "

// warningLog keeps the warnings a run prints to its progress writer, so
// the report carries them too (report.json, the top of the HTML): a run
// with --quiet, or one read later from CI artifacts, still says that the
// target served no /metrics or that a fault did not start.
type warningLog struct {
	mu    sync.Mutex
	lines []string
}

// to returns a writer that writes to w and keeps the warnings among the
// lines written; each Write is whole lines, as fmt.Fprintf writes them.
func (l *warningLog) to(w io.Writer) io.Writer { return warningTee{l, w} }

func (l *warningLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

type warningTee struct {
	l *warningLog
	w io.Writer
}

func (t warningTee) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(p, []byte("\n")) {
		if w, ok := strings.CutPrefix(string(line), warningPrefix); ok && w != "" {
			t.l.mu.Lock()
			t.l.lines = append(t.l.lines, w)
			t.l.mu.Unlock()
		}
	}
	return t.w.Write(p)
}

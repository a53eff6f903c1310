package runner

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/record"
)

func TestLive_line(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spans := []record.PhaseSpan{{Name: "baseline", Start: 0, End: 4 * time.Second}, {Name: "fault", Start: 4 * time.Second, End: 10 * time.Second}}
	rec := record.NewRecorder(start, spans, time.Second)
	// 50 requests a second for five seconds, one in ten failing.
	for i := range 250 {
		sent := start.Add(time.Duration(i) * 20 * time.Millisecond)
		rec.Add(record.Result{Sent: sent, Latency: 30 * time.Millisecond, Code: 200, Failed: i%10 == 0})
	}
	l := newLive(nil, spans, rec, start)
	tests := []struct {
		at   time.Duration
		want []string
	}{
		{500 * time.Millisecond, []string{"baseline [=                   ] 0s/10s · 9s left"}},
		{5500 * time.Millisecond, []string{"fault [===========         ] 5s/10s · 4s left", "50 req/s", "p99 30ms", "errors 10.0%"}},
		{time.Hour, []string{"fault [====================] 10s/10s · 0s left"}},
	}
	for _, tt := range tests {
		got := l.line(tt.at)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("line(%v) = %q, want it to contain %q", tt.at, got, w)
			}
		}
	}
}

// Progress lines go above the status line: the line is erased, the text
// written, and the status drawn again below it.
func TestLive_Write(t *testing.T) {
	var b bytes.Buffer
	l := &live{w: &b, status: "STATUS"}
	if _, err := l.Write([]byte("resctl: phase fault\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "\r\x1b[Kresctl: phase fault\nSTATUS"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

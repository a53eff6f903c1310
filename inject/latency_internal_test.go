package inject

import (
	"slices"
	"testing"
	"time"
)

// waits draws n delays from a latency fault activated on a fresh board.
func waits(t *testing.T, seed uint64, id string, n int) []time.Duration {
	t.Helper()
	b := NewBoard(seed, nil)
	a, err := b.Activate(id, &LatencySpec{Match: Match{Percent: 100}, Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := a.http.(*latency)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = l.wait()
	}
	return out
}

func TestLatency_Jitter(t *testing.T) {
	const n = 1000
	base := waits(t, 42, "fault/latency", n)
	lo, hi := slices.Min(base), slices.Max(base)
	if lo < 80*time.Millisecond || hi > 120*time.Millisecond {
		t.Errorf("delays span [%v, %v], want within 100ms ± 20ms", lo, hi)
	}
	if hi-lo < 30*time.Millisecond {
		t.Errorf("delays span only [%v, %v]: jitter is not drawn across its range", lo, hi)
	}

	tests := []struct {
		name string
		seed uint64
		id   string
		same bool
	}{
		{"same seed and id", 42, "fault/latency", true},
		{"another seed", 1, "fault/latency", false},
		{"another id", 42, "recovery/latency", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := waits(t, tt.seed, tt.id, n); slices.Equal(got, base) != tt.same {
				t.Errorf("delay sequence equal to seed 42's = %v, want %v", !tt.same, tt.same)
			}
		})
	}
}

func TestLatency_NoJitter(t *testing.T) {
	l := (&LatencySpec{Delay: 250 * time.Millisecond}).Build().(*latency)
	for range 10 {
		if got := l.wait(); got != 250*time.Millisecond {
			t.Fatalf("wait() = %v without jitter, want the delay", got)
		}
	}
}

package inject

import "time"

// DrawDelays draws n delays from a latency spec seeded like a board would.
func DrawDelays(s *LatencySpec, seed uint64, n int) []time.Duration {
	b := NewBoard(seed, nil)
	a, err := b.Activate("draw", s)
	if err != nil {
		panic(err)
	}
	l := a.http.(*latency)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = l.wait()
	}
	return out
}

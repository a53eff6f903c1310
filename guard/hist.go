package guard

import (
	"math/bits"
	"sync/atomic"
)

// latencyHist is a lock-free log-linear histogram of durations: eight
// buckets per power of two from 1µs to about 18 minutes, so a quantile is
// within 12.5% of the truth. Recording is one atomic add.
type latencyHist struct {
	counts [histBuckets]atomic.Uint64
}

const (
	histMinExp  = 10 // 2^10 ns ≈ 1µs: below it everything is one bucket
	histMaxExp  = 40 // 2^40 ns ≈ 18 min: above it everything is the last
	histSub     = 3  // 2^3 sub-buckets per power of two
	histBuckets = (histMaxExp-histMinExp+1)<<histSub + 1
)

func histIndex(ns int64) int {
	if ns < 1<<histMinExp {
		return 0
	}
	e := bits.Len64(uint64(ns)) - 1
	if e > histMaxExp {
		return histBuckets - 1
	}
	m := int(ns>>(e-histSub)) & (1<<histSub - 1)
	return (e-histMinExp)<<histSub + m + 1
}

// histUpper is the upper edge of a bucket, in nanoseconds.
func histUpper(i int) int64 {
	if i == 0 {
		return 1 << histMinExp
	}
	e := (i-1)>>histSub + histMinExp
	m := int64((i - 1) & (1<<histSub - 1))
	return (1<<histSub + m + 1) << (e - histSub)
}

func (h *latencyHist) record(ns int64) { h.counts[histIndex(ns)].Add(1) }

// take empties the histogram into a snapshot.
func (h *latencyHist) take() (s histSnapshot) {
	for i := range h.counts {
		if h.counts[i].Load() != 0 {
			s.counts[i] = h.counts[i].Swap(0)
			s.total += s.counts[i]
		}
	}
	return s
}

type histSnapshot struct {
	counts [histBuckets]uint64
	total  uint64
}

// add folds another snapshot in, for a sample that spans several takes.
func (s *histSnapshot) add(o *histSnapshot) {
	for i, c := range o.counts {
		s.counts[i] += c
	}
	s.total += o.total
}

// quantile returns the upper edge of the bucket holding the q-quantile.
func (s *histSnapshot) quantile(q float64) int64 {
	if s.total == 0 {
		return 0
	}
	rank := uint64(q*float64(s.total) + 0.5)
	rank = max(1, min(rank, s.total))
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			return histUpper(i)
		}
	}
	return histUpper(histBuckets - 1)
}

package record

import (
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 10 minutes, with
// three significant digits: a percentile is off by at most 0.1%.
const (
	lowestMicros  = 1
	highestMicros = int64(10 * time.Minute / time.Microsecond)
	sigFigs       = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(lowestMicros, highestMicros, sigFigs)
}

func micros(d time.Duration) int64 {
	us := d.Microseconds()
	return min(max(us, lowestMicros), highestMicros)
}

// sparse is a closed histogram: only the non-zero counts of its geometry,
// 8 bytes each, sized exactly. A second of traffic has a few hundred to a
// few thousand of them, so an hour at thousands of requests a second keeps
// tens of megabytes, not the hundreds dense histograms would.
type sparse struct {
	index []int32
	// count is a second's count in one bucket: far below 2³².
	count []uint32
}

func compact(h *hdrhistogram.Histogram) sparse {
	counts := h.Export().Counts
	n := 0
	for _, c := range counts {
		if c != 0 {
			n++
		}
	}
	s := sparse{index: make([]int32, 0, n), count: make([]uint32, 0, n)}
	for i, c := range counts {
		if c != 0 {
			s.index = append(s.index, int32(i))
			s.count = append(s.count, uint32(min(c, math.MaxUint32)))
		}
	}
	return s
}

// merger adds sparse histograms into one dense counts array and turns it
// into a histogram once, which is far cheaper than merging histograms.
type merger struct {
	snap *hdrhistogram.Snapshot
}

func newMerger() *merger {
	return &merger{snap: newHistogram().Export()}
}

func (m *merger) add(s sparse) {
	for i, idx := range s.index {
		m.snap.Counts[idx] += int64(s.count[i])
	}
}

func (m *merger) addHistogram(h *hdrhistogram.Histogram) {
	for i, c := range h.Export().Counts {
		m.snap.Counts[i] += c
	}
}

func (m *merger) histogram() *hdrhistogram.Histogram { return hdrhistogram.Import(m.snap) }

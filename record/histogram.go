package record

import (
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

// merger adds histograms into one dense counts array and turns it
// into a histogram once, which is far cheaper than merging histograms.
type merger struct {
	snap *hdrhistogram.Snapshot
}

func newMerger() *merger {
	return &merger{snap: newHistogram().Export()}
}

func (m *merger) addHistogram(h *hdrhistogram.Histogram) {
	for i, c := range h.Export().Counts {
		m.snap.Counts[i] += c
	}
}

func (m *merger) histogram() *hdrhistogram.Histogram { return hdrhistogram.Import(m.snap) }

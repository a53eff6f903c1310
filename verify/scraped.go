package verify

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// A scraped window covers the samples with From <= T <= To. Increase and
// rate also start from the last sample at or before From, so that
// consecutive windows share their edges and no increase falls between
// them. Nothing is extrapolated: increase is what the samples show, and
// rate divides it by the time between the first and last sample used.

// scraped is what an evaluation fetched for one selector.
type scraped struct {
	series []Series
	sum    []Point // the series' sum at every instant one of them has a sample
	summed bool
	// histogram_quantile: the distinct bucket bounds, sorted, the bucket
	// of each series (-1 for a series without a valid le), and scratch
	// counts, all built on first use.
	les     []float64
	bucket  []int
	counts  []float64
	laidOut bool
}

// total returns the sum of all the selector's series: at each instant one
// of them has a sample, the sum of each series' latest sample so far.
func (s *scraped) total() []Point {
	if s.summed {
		return s.sum
	}
	s.summed = true
	switch len(s.series) {
	case 0:
		return nil
	case 1:
		s.sum = s.series[0].Points
		return s.sum
	}
	n := 0
	for _, ser := range s.series {
		n += len(ser.Points)
	}
	s.sum = make([]Point, 0, n)
	idx := make([]int, len(s.series))
	cur := make([]float64, len(s.series))
	for {
		t, any := time.Duration(0), false
		for k, ser := range s.series {
			if idx[k] < len(ser.Points) && (!any || ser.Points[idx[k]].T < t) {
				t, any = ser.Points[idx[k]].T, true
			}
		}
		if !any {
			return s.sum
		}
		total := 0.0
		for k, ser := range s.series {
			for idx[k] < len(ser.Points) && ser.Points[idx[k]].T == t {
				cur[k] = ser.Points[idx[k]].V
				idx[k]++
			}
			total += cur[k]
		}
		s.sum = append(s.sum, Point{T: t, V: total})
	}
}

// firstAfter returns the index of the first point later than t.
func firstAfter(pts []Point, t time.Duration) int {
	lo, hi := 0, len(pts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if pts[m].T > t {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// firstFrom returns the index of the first point at or after t.
func firstFrom(pts []Point, t time.Duration) int {
	lo, hi := 0, len(pts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if pts[m].T >= t {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// latest returns the value of the last point at or before t.
func latest(pts []Point, t time.Duration) (float64, bool) {
	i := firstAfter(pts, t) - 1
	if i < 0 {
		return 0, false
	}
	return pts[i].V, true
}

// aggregate computes avg, min, max, last or first of the points in w.
func aggregate(agg aggregation, pts []Point, w Window) (float64, bool) {
	lo, hi := firstFrom(pts, w.From), firstAfter(pts, w.To)
	if lo >= hi {
		return 0, false
	}
	in := pts[lo:hi]
	switch agg {
	case aggFirst:
		return in[0].V, true
	case aggLast:
		return in[len(in)-1].V, true
	}
	acc := in[0].V
	for _, p := range in[1:] {
		switch agg {
		case aggMin:
			acc = min(acc, p.V)
		case aggMax:
			acc = max(acc, p.V)
		default:
			acc += p.V
		}
	}
	if agg == aggAvg {
		acc /= float64(len(in))
	}
	return acc, true
}

// increase returns how much the counter pts grew over w and the time
// between the two samples it was measured between. A drop means the
// counter restarted from zero, so the sample after it counts in full. It
// needs two samples: the last at or before w.From (or else the first in
// w) and a later one in w.
func increase(pts []Point, w Window) (inc float64, span time.Duration, ok bool) {
	end := firstAfter(pts, w.To)
	b := max(firstAfter(pts[:end], w.From)-1, 0)
	if end-b < 2 {
		return 0, 0, false
	}
	for i := b + 1; i < end; i++ {
		d := pts[i].V - pts[i-1].V
		if d < 0 {
			d = pts[i].V
		}
		inc += d
	}
	return inc, pts[end-1].T - pts[b].T, true
}

// quantile computes histogram_quantile(q) over w: each bucket's increase,
// summed across series with the same bound, then interpolated.
func (s *scraped) quantile(q float64, w Window) (float64, bool) {
	s.layout()
	clear(s.counts)
	for k, ser := range s.series {
		b := s.bucket[k]
		if b < 0 {
			continue
		}
		if inc, _, ok := increase(ser.Points, w); ok {
			s.counts[b] += inc
		}
	}
	v := bucketQuantile(q, s.les, s.counts)
	return v, !math.IsNaN(v)
}

// layout reads each series' le label once.
func (s *scraped) layout() {
	if s.laidOut {
		return
	}
	s.laidOut = true
	bounds := make([]float64, len(s.series))
	for k, ser := range s.series {
		le, err := strconv.ParseFloat(ser.Labels["le"], 64)
		if err != nil || math.IsNaN(le) {
			le = math.NaN()
		} else if !slices.Contains(s.les, le) {
			s.les = append(s.les, le)
		}
		bounds[k] = le
	}
	slices.Sort(s.les)
	s.bucket = make([]int, len(s.series))
	for k, le := range bounds {
		s.bucket[k] = slices.Index(s.les, le) // -1 for NaN
	}
	s.counts = make([]float64, len(s.les))
}

// bucketQuantile is Prometheus' histogram_quantile on cumulative bucket
// counts with sorted upper bounds les: find the bucket holding the q-th
// observation and interpolate linearly within it, taking the lowest
// bucket to start at 0. It returns NaN when there is nothing to go on: no
// +Inf bucket, fewer than two buckets, or no observations. counts is
// modified: it is made monotonic, as scrapes taken at slightly different
// moments may not be.
func bucketQuantile(q float64, les, counts []float64) float64 {
	n := len(les)
	if n < 2 || !math.IsInf(les[n-1], 1) {
		return math.NaN()
	}
	for i := 1; i < n; i++ {
		counts[i] = max(counts[i], counts[i-1])
	}
	total := counts[n-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	b := 0
	for b < n-1 && counts[b] < rank {
		b++
	}
	if b == n-1 {
		return les[n-2]
	}
	if b == 0 && les[0] <= 0 {
		return les[0]
	}
	lower, upper, count := 0.0, les[b], counts[b]
	if b > 0 {
		lower = les[b-1]
		count -= counts[b-1]
		rank -= counts[b-1]
	}
	if count == 0 {
		return lower
	}
	return lower + (upper-lower)*(rank/count)
}

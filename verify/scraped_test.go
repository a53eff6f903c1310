package verify

import (
	"math"
	"slices"
	"testing"
	"time"
)

func points(vs ...float64) []Point {
	var out []Point
	for i, v := range vs {
		out = append(out, Point{T: time.Duration(i) * time.Second, V: v})
	}
	return out
}

func TestIncrease(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		pts  []Point
		w    Window
		inc  float64
		span time.Duration
		ok   bool
	}{
		{"steady", points(0, 10, 20, 30), Window{0, 3 * s}, 30, 3 * s, true},
		{"reset counts the restart from zero", points(0, 10, 20, 30, 5, 15), Window{0, 5 * s}, 45, 5 * s, true},
		{"reset to zero", points(7, 0, 3), Window{0, 2 * s}, 3, 2 * s, true},
		{"starts from the sample at the window's start", points(0, 10, 20, 30), Window{1 * s, 3 * s}, 20, 2 * s, true},
		{"starts from the sample before the window", points(0, 10, 20, 30), Window{1500 * time.Millisecond, 3 * s}, 20, 2 * s, true},
		{"no sample before: the first in the window", points(0, 10, 20, 30), Window{-5 * s, 2 * s}, 20, 2 * s, true},
		{"ends at the last sample in the window", points(0, 10, 20, 30), Window{0, 2500 * time.Millisecond}, 20, 2 * s, true},
		{"one sample", points(0, 10), Window{1 * s, 1 * s}, 0, 0, false},
		{"samples all after", points(0, 10), Window{-3 * s, -1 * s}, 0, 0, false},
		{"no samples", nil, Window{0, s}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc, span, ok := increase(tt.pts, tt.w)
			if inc != tt.inc || span != tt.span || ok != tt.ok {
				t.Errorf("increase = %v, %v, %v; want %v, %v, %v", inc, span, ok, tt.inc, tt.span, tt.ok)
			}
		})
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name   string
		q      float64
		les    []float64
		counts []float64
		want   float64 // to 1e-12; NaN: no answer
	}{
		{"interpolates within a bucket", 0.5, []float64{0.1, 0.5, inf}, []float64{20, 60, 100}, 0.4}, // the 30th of 40 between 0.1 and 0.5
		{"lowest bucket starts at zero", 0.1, []float64{0.1, 0.5, inf}, []float64{20, 60, 100}, 0.05},
		{"in +Inf: highest finite bound", 0.99, []float64{0.1, 0.5, inf}, []float64{20, 60, 90}, 0.5},
		{"exactly at a bound", 0.6, []float64{0.1, 0.5, inf}, []float64{20, 60, 100}, 0.5},
		{"quantile zero", 0, []float64{0.1, 0.5, inf}, []float64{0, 60, 100}, 0},
		{"quantile one", 1, []float64{0.1, 0.5, inf}, []float64{20, 60, 60}, 0.5},
		{"negative lowest bound", 0.1, []float64{-1, 0.5, inf}, []float64{20, 60, 100}, -1},
		{"non-monotonic counts are evened", 0.5, []float64{0.1, 0.5, inf}, []float64{20, 10, 40}, 0.1},
		{"no +Inf bucket", 0.5, []float64{0.1, 0.5}, []float64{20, 60}, math.NaN()},
		{"one bucket", 0.5, []float64{inf}, []float64{20}, math.NaN()},
		{"no observations", 0.5, []float64{0.1, inf}, []float64{0, 0}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bucketQuantile(tt.q, tt.les, slices.Clone(tt.counts))
			if math.Abs(got-tt.want) > 1e-12 && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Errorf("bucketQuantile(%v, %v, %v) = %v, want %v", tt.q, tt.les, tt.counts, got, tt.want)
			}
		})
	}
}

func TestScraped_Total(t *testing.T) {
	s := time.Second
	sc := &scraped{series: []Series{
		{Points: []Point{{0, 1}, {2 * s, 2}, {4 * s, 3}}},
		{Points: []Point{{1 * s, 10}, {2 * s, 20}}},
		{},
	}}
	want := []Point{{0, 1}, {1 * s, 11}, {2 * s, 22}, {4 * s, 23}}
	if got := sc.total(); !slices.Equal(got, want) {
		t.Errorf("total() = %v, want %v", got, want)
	}
	one := &scraped{series: []Series{{Points: want}}}
	if got := one.total(); &got[0] != &want[0] {
		t.Error("total() of one series copied it")
	}
	if got := (&scraped{}).total(); got != nil {
		t.Errorf("total() of nothing = %v, want nil", got)
	}
}

func TestScraped_LayoutSkipsSeriesWithoutBounds(t *testing.T) {
	sc := &scraped{series: []Series{
		{Labels: map[string]string{"le": "+Inf"}, Points: points(0, 10)},
		{Labels: map[string]string{"le": "0.5"}, Points: points(0, 4)},
		{Labels: map[string]string{"le": "NaN"}, Points: points(0, 1000)},
		{Labels: map[string]string{"le": "half"}, Points: points(0, 1000)},
		{Labels: map[string]string{}, Points: points(0, 1000)},
		{Labels: map[string]string{"le": "0.5"}, Points: points(0, 1)}, // a second instance
	}}
	got, ok := sc.quantile(0.5, Window{0, time.Second})
	if want := 0.5; !ok || got != want {
		t.Errorf("quantile = %v, %v; want %v", got, ok, want)
	}
	if !slices.Equal(sc.les, []float64{0.5, math.Inf(1)}) {
		t.Errorf("bounds = %v", sc.les)
	}
}

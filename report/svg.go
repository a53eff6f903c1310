package report

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// The HTML report draws its charts as SVG on the server: no JavaScript
// library to inline, nothing to fetch, and a chart that renders the same in
// every browser and in a screenshot. Every timeline chart shares one x axis,
// so a fault's start lines up with the latency it caused and the breaker
// transition it triggered.
//
// Long runs are downsampled to at most maxBuckets columns: the per-second
// series are grouped into buckets of whole seconds, lines keep each bucket's
// minimum and maximum (so a one-second spike survives an hour-long chart)
// and stacked areas keep each bucket's mean. That bounds the file's size by
// the chart's width, not the run's length.

// Chart geometry in SVG user units; the SVGs scale to the page's width.
// html.tmpl repeats chartW, plotX0 and plotX1 in its axis lines.
const (
	chartW     = 960.0
	plotX0     = 64.0
	plotX1     = 948.0
	plotW      = plotX1 - plotX0
	maxBuckets = 444 // two units per bucket: an hour is drawn in 9-second buckets
	chartPadT  = 10.0
	chartPadB  = 22.0 // room for the time labels
	laneH      = 34.0
)

// Colours of the series, chosen to stay apart for colour-blind readers and
// to mean the same in every chart: green served, amber fallback, red error.
const (
	colServed    = "#2f9e5b"
	colFallback  = "#e0a12b"
	colError     = "#d64545"
	colP50       = "#4c78a8"
	colP95       = "#9c6ad4"
	colP99       = "#d6604d"
	colP90       = "#2a9d8f"
	colMax       = "#7a4a2a"
	colFailedP99 = "#8c1c13"
	colFault     = "#f58518"
)

var palette = []string{"#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#eeca3b", "#bab0ac", "#ff9da6"}

// stateColours gives the usual circuit-breaker states fixed colours; other
// states (limiter limits, custom policies) take otherStateColours in order,
// which avoid the green, red and amber that mean closed, open, half-open.
var (
	stateColours = map[string]string{
		"closed":    colServed,
		"open":      colError,
		"half-open": colFallback,
		"half_open": colFallback,
		// processes
		"ready":    colServed,
		"down":     colError,
		"paused":   colFallback,
		"starting": "#9ecae9",
	}
	otherStateColours = []string{"#bab0ac", "#4c78a8", "#72b7b2", "#b279a2", "#9d755d", "#ff9da6", "#eeca3b"}
)

// axis maps offsets in seconds from the run's start to x positions.
type axis struct {
	end  float64 // seconds shown: [0, end]
	step int     // seconds per bucket
	n    int     // buckets
}

// maxAxisEnd is the longest run a timeline shows, in seconds: about 31
// years.
const maxAxisEnd = 1e9

func newAxis(end float64) axis {
	if end <= 0 || math.IsNaN(end) || math.IsInf(end, 0) {
		end = 1
	}
	// A report read from a file may say anything; past a run of decades
	// the buckets' arithmetic in whole seconds would overflow.
	end = math.Min(end, maxAxisEnd)
	step := max(1, int(math.Ceil(end/maxBuckets)))
	return axis{end: end, step: step, n: int(math.Ceil(end / float64(step)))}
}

func (a axis) x(t float64) float64 {
	return round1(plotX0 + math.Min(math.Max(t, 0), a.end)/a.end*plotW)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// svgChart is one timeline chart as the template draws it.
type svgChart struct {
	ID     string // key of its tooltip data; empty for no tooltip
	Title  string
	Note   string // a line under the title
	H      float64
	Top    float64 // plot area, y
	Bottom float64
	YTicks []svgTick
	XTicks []svgTick
	Bands  []svgBand
	Areas  []svgShape
	Lines  []svgShape
	VLines []svgVLine
	Marks  []svgMark
	Legend []svgLegend
	// Limits are SLA limits on what the chart draws, and Shades the
	// seconds that broke them.
	Limits []svgLimit
	Shades []svgShade
	Empty  string // shown instead of data
}

// svgLimit is an SLA's limit, drawn across the stretch it applies to,
// numbered like the SLA table's rows.
type svgLimit struct {
	X1, X2, Y           float64
	Class, Label, Title string
}

// svgShade is a stretch of time shaded behind a chart's data.
type svgShade struct {
	X, W         float64
	Class, Title string
}

// PlotH is the plot area's height.
func (c svgChart) PlotH() float64 { return c.Bottom - c.Top }

type svgTick struct {
	Pos   float64
	Label string
}

// svgBand shades a phase behind the data.
type svgBand struct {
	X, W float64
	Alt  bool
}

type svgShape struct {
	D, Color, Name string
	Dashed         bool
}

// svgVLine marks an instant: a fault switching on or off, a timing SLA's
// deadline or a session's mark (labelled at the foot of the chart).
type svgVLine struct {
	X                   float64
	Class, Title, Label string
}

// svgMark is a numbered flag at the instant a timing SLA detected or
// recovered, numbered like the SLA table's rows.
type svgMark struct {
	X, Y         float64 // Y is the flag's centre, staggered when flags crowd
	Class, Label string
	Title        string
}

type svgLegend struct {
	Color, Name string
	Dashed      bool
}

// svgLanes is a stack of state lanes sharing the time axis: the phases and
// faults strip, or the guard policies' states.
type svgLanes struct {
	H      float64
	Lanes  []svgLane
	XTicks []svgTick
	Bands  []svgBand
	Bottom float64
	Legend []svgLegend
}

type svgLane struct {
	Label string
	Y     float64 // top of the lane's bar
	Segs  []svgSeg
	Ticks []svgTickMark
}

type svgSeg struct {
	X, W, CX     float64
	Color, Label string // Label is drawn inside when it fits
	Title        string
	Dark         bool // the colour is dark: label in white
}

type svgTickMark struct {
	X, Y0, Y1 float64
	Title     string
}

// tipData is what the inline script needs to show values under the mouse:
// the plot geometry and, per chart, each bucket's values already formatted.
type tipData struct {
	W      float64              `json:"w"`
	X0     float64              `json:"x0"`
	PW     float64              `json:"pw"`
	End    float64              `json:"end"`
	Charts map[string]*tipChart `json:"charts"`
}

type tipChart struct {
	Step   int        `json:"s"`
	Note   string     `json:"note,omitempty"`
	Names  []string   `json:"n"`
	Colors []string   `json:"c"`
	Rows   [][]string `json:"r"`
	// Extra is a line under a bucket's values, or empty: the top error
	// reasons on the throughput chart.
	Extra []string `json:"x,omitempty"`
}

// path builds SVG path data compactly; a NaN value breaks the line.
type path struct {
	b   []byte
	pen bool
}

func (p *path) to(x, y float64) {
	if math.IsNaN(y) {
		p.pen = false
		return
	}
	if p.pen {
		p.b = append(p.b, 'L')
	} else {
		p.b = append(p.b, 'M')
	}
	p.b = strconv.AppendFloat(p.b, x, 'f', -1, 64)
	p.b = append(p.b, ' ')
	p.b = strconv.AppendFloat(p.b, round1(y), 'f', -1, 64)
	p.pen = true
}

func (p *path) close() { p.b = append(p.b, 'Z') }

func (p *path) String() string { return string(p.b) }

// yScale maps values to y positions from 0 (or a negative minimum) to a
// nice maximum, with the ticks to label.
type yScale struct {
	lo, hi      float64
	top, bottom float64
	ticks       []float64
}

func newYScale(lo, hi, top, bottom float64, unit string) yScale {
	if unit != "ratio" {
		lo = math.Min(lo, 0)
	}
	if hi <= lo || math.IsNaN(hi) || math.IsInf(hi, 0) {
		hi = lo + 1
	}
	// Headroom, so the highest value does not run along the top edge,
	// under the SLA flags. A share starts from just below its lowest
	// value instead of 0, so a dip from 100% to 99% shows, and stops
	// at 100%.
	if unit == "ratio" {
		lo = math.Max(0, lo-(hi-lo)*0.1)
		hi = math.Min(1, hi+(hi-lo)*0.04)
		if hi <= lo {
			lo = math.Max(0, hi-0.01)
		}
	} else {
		hi += (hi - lo) * 0.04
	}
	step := niceStep((hi-lo)/5, unit)
	s := yScale{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step, top: top, bottom: bottom}
	for v := s.lo; v <= s.hi+step/2; v += step {
		s.ticks = append(s.ticks, v)
	}
	return s
}

func (s yScale) y(v float64) float64 {
	if math.IsNaN(v) {
		return v
	}
	return s.bottom - (v-s.lo)/(s.hi-s.lo)*(s.bottom-s.top)
}

// niceStep rounds a raw tick step up to 1, 2, 2.5 or 5 times a power of
// ten, or of 1024 for bytes, so axis labels read as round numbers.
func niceStep(raw float64, unit string) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	base := 1.0
	if unit == "bytes" {
		for raw/base >= 1024 {
			base *= 1024
		}
		raw /= base
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag * base
		}
	}
	return 10 * mag * base
}

// timeTicks labels the time axis every nice number of seconds.
func timeTicks(a axis) []svgTick {
	var step float64
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400} {
		step = s
		if a.end/s <= 10 {
			break
		}
	}
	if a.end/step > 10 { // days apart, ten ticks at most, however long
		step = math.Ceil(a.end/10/86400) * 86400
	}
	var ticks []svgTick
	for t := 0.0; t <= a.end+1e-9; t += step {
		ticks = append(ticks, svgTick{Pos: a.x(t), Label: fmtOffset(t)})
	}
	return ticks
}

// fmtOffset writes an offset into the run the way a person says it:
// 45s, 2m, 1h15m.
func fmtOffset(s float64) string {
	d := time.Duration(math.Round(s)) * time.Second
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}

// fmtValue formats a value for an axis label, a table cell or a tooltip,
// by unit: "ms" latency, "/s" rate, "bytes", "seconds", or plain.
func fmtValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "–"
	}
	switch unit {
	case "ms":
		return fmtMs(v)
	case "seconds":
		return fmtMs(v * 1000)
	case "bytes":
		return fmtBytes(v)
	case "ratio":
		return trimZeros(strconv.FormatFloat(v*100, 'f', 2, 64)) + "%"
	case "/s":
		return fmtNum(v) + "/s"
	case "", "plain":
		return fmtNum(v)
	}
	return fmtNum(v) + " " + unit
}

func fmtMs(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return trimZeros(strconv.FormatFloat(v/1000, 'f', 2, 64)) + "s"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	case a >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64)) + "ms"
	case a >= 1:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64)) + "ms"
	}
	return trimZeros(strconv.FormatFloat(v*1000, 'f', 0, 64)) + "µs"
}

func fmtBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmtNum(v) + units[i]
}

// fmtNum writes a plain number with three significant digits at most past
// the thousands, e.g. 12, 12.5, 1.25k, 3.4M.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimZeros(strconv.FormatFloat(v/1e9, 'f', 2, 64)) + "G"
	case a >= 1e6:
		return trimZeros(strconv.FormatFloat(v/1e6, 'f', 2, 64)) + "M"
	case a >= 1e4:
		return trimZeros(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	case a >= 100 || a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
	}
	return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// bucketStats folds one series into the axis's buckets.
type bucketStats struct {
	min, max, sum, last []float64
	n                   []int
	// minFirst says, per bucket, whether the minimum came before the
	// maximum, so the drawn line keeps the order the values happened in.
	minFirst []bool
}

func newBucketStats(n int) *bucketStats {
	b := &bucketStats{min: make([]float64, n), max: make([]float64, n), sum: make([]float64, n),
		last: make([]float64, n), n: make([]int, n), minFirst: make([]bool, n)}
	for i := range n {
		b.min[i], b.max[i], b.last[i] = math.NaN(), math.NaN(), math.NaN()
	}
	return b
}

func (b *bucketStats) add(i int, v float64) {
	if i < 0 || i >= len(b.n) || math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if b.n[i] == 0 {
		b.min[i], b.max[i] = v, v
		b.minFirst[i] = true
	} else {
		if v < b.min[i] {
			b.min[i], b.minFirst[i] = v, false
		}
		if v > b.max[i] {
			b.max[i], b.minFirst[i] = v, true
		}
	}
	b.sum[i] += v
	b.last[i] = v
	b.n[i]++
}

func (b *bucketStats) mean(i int) float64 {
	if b.n[i] == 0 {
		return math.NaN()
	}
	return b.sum[i] / float64(b.n[i])
}

// extent is the smallest and largest value in any bucket.
func (b *bucketStats) extent() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i := range b.n {
		if b.n[i] > 0 {
			lo, hi = math.Min(lo, b.min[i]), math.Max(hi, b.max[i])
		}
	}
	return lo, hi
}

// linePath draws a bucketed series: each bucket's minimum and maximum at its
// centre, in the order they happened; empty buckets break the line.
func linePath(a axis, b *bucketStats, ys yScale, centreOf func(i int) float64) string {
	var p path
	for i := range b.n {
		if b.n[i] == 0 {
			p.to(0, math.NaN())
			continue
		}
		x := a.x(centreOf(i))
		first, second := b.min[i], b.max[i]
		if !b.minFirst[i] {
			first, second = second, first
		}
		// A value with no neighbour would be a point, which draws
		// nothing: it spans its bucket instead.
		isolated := (i == 0 || b.n[i-1] == 0) && (i == len(b.n)-1 || b.n[i+1] == 0)
		if isolated {
			p.to(a.x(float64(i*a.step)), ys.y(first))
		}
		p.to(x, ys.y(first))
		if second != first {
			p.to(x, ys.y(second))
		}
		if isolated {
			p.to(a.x(float64((i+1)*a.step)), ys.y(second))
		}
	}
	return p.String()
}

// pointsPath draws samples where they were taken; a sample outside the
// time axis or not a number breaks the line.
func pointsPath(a axis, pts [][2]float64, ys yScale) string {
	var p path
	for _, pt := range pts {
		if pt[0] < 0 || pt[0] > a.end || math.IsInf(pt[1], 0) {
			p.to(0, math.NaN())
			continue
		}
		p.to(a.x(pt[0]), ys.y(pt[1]))
	}
	if len(pts) == 1 {
		// One sample is a point, which draws nothing: a short tick instead.
		p.to(a.x(pts[0][0])+2, ys.y(pts[0][1]))
	}
	return p.String()
}

// stackPaths draws stacked step areas: layer k sits on layers 0..k-1.
// vals[k][i] is layer k's value in bucket i.
func stackPaths(a axis, vals [][]float64, ys yScale) []string {
	n := 0
	if len(vals) > 0 {
		n = len(vals[0])
	}
	base := make([]float64, n)
	out := make([]string, len(vals))
	for k, layer := range vals {
		top := make([]float64, n)
		for i := range n {
			top[i] = base[i] + layer[i]
		}
		var p path
		for i := range n {
			x0, x1 := a.x(float64(i*a.step)), a.x(float64((i+1)*a.step))
			p.to(x0, ys.y(top[i]))
			p.to(x1, ys.y(top[i]))
		}
		for i := n - 1; i >= 0; i-- {
			x0, x1 := a.x(float64(i*a.step)), a.x(float64((i+1)*a.step))
			p.to(x1, ys.y(base[i]))
			p.to(x0, ys.y(base[i]))
		}
		if n > 0 {
			p.close()
		}
		out[k] = p.String()
		base = top
	}
	return out
}

// isDark tells whether a #rrggbb colour needs white text on it, by its
// perceived luminance.
func isDark(hex string) bool {
	if len(hex) != 7 || hex[0] != '#' {
		return false
	}
	v, err := strconv.ParseUint(hex[1:], 16, 32)
	if err != nil {
		return false
	}
	r, g, b := float64(v>>16&0xff), float64(v>>8&0xff), float64(v&0xff)
	return 0.299*r+0.587*g+0.114*b < 150
}

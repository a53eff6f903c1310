package report

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The charts of the HTML report's timeline, built on the SVG primitives of
// svg.go: what each chart draws from the report, and how.

// timeline holds what every chart of one report shares: the axis, the
// phase bands, the fault and mark lines and the SLA flags.
type timeline struct {
	ax     axis
	bands  []svgBand
	vlines []svgVLine
	marks  []svgMark
}

func newTimeline(r *Report) timeline {
	tl := timeline{ax: newAxis(timelineEnd(r))}
	for i, p := range r.Phases {
		x0, x1 := tl.ax.x(p.StartS), tl.ax.x(p.EndS)
		tl.bands = append(tl.bands, svgBand{X: x0, W: round1(math.Max(x1-x0, 0)), Alt: i%2 == 1})
	}
	for _, f := range r.Faults {
		if f.NotRun {
			continue
		}
		start, end := faultWindow(r, f)
		tl.vlines = append(tl.vlines,
			svgVLine{X: tl.ax.x(start), Class: "fault on", Title: f.ID + " on at " + fmtSeconds(start)},
			svgVLine{X: tl.ax.x(end), Class: "fault off", Title: f.ID + " off at " + fmtSeconds(end)})
	}
	// A chaos session's marks: the notes a person put on its timeline.
	for _, e := range r.Events {
		if e.Source == "mark" {
			tl.vlines = append(tl.vlines, svgVLine{X: tl.ax.x(e.AtS), Class: "mark", Title: "mark at " + fmtSeconds(e.AtS) + ": " + e.Detail, Label: e.Detail})
		}
	}
	tl.vlines = append(tl.vlines, deadlines(r, tl.ax)...)
	for i, s := range r.SLAs {
		if s.AtS == nil {
			continue
		}
		class := "sla pass"
		if !s.Passed {
			class = "sla fail"
		}
		tl.marks = append(tl.marks, svgMark{X: tl.ax.x(*s.AtS), Class: class, Label: strconv.Itoa(i + 1),
			Title: "SLA " + strconv.Itoa(i+1) + " “" + s.Name + "”: " + timingWord(s) + " at " + fmtSeconds(*s.AtS)})
	}
	// Flags closer than their width step down, up to four deep, so each
	// number stays readable.
	sort.SliceStable(tl.marks, func(i, j int) bool { return tl.marks[i].X < tl.marks[j].X })
	level := 0
	for i := range tl.marks {
		if i > 0 && tl.marks[i].X-tl.marks[i-1].X < 17 {
			level = (level + 1) % 4
		} else {
			level = 0
		}
		tl.marks[i].Y = chartPadT + float64(level)*17
	}
	return tl
}

// timingWord says what happened at a timing SLA's instant.
func timingWord(s SLA) string {
	if s.Kind == "recovery_time" {
		return "recovered"
	}
	return "detected"
}

func fmtSeconds(s float64) string {
	return trimZeros(strconv.FormatFloat(s, 'f', 2, 64)) + "s"
}

// timelineEnd is how many seconds the timeline shows: the run's duration,
// stretched to cover every recorded second and scraped point.
func timelineEnd(r *Report) float64 {
	end := r.DurationS
	// A last second the run ended inside is drawn up to the run's end.
	if n := len(r.Series); n > 0 && float64(r.Series[n-1].T) >= end {
		end = float64(r.Series[n-1].T + 1)
	}
	for _, p := range r.Phases {
		end = math.Max(end, p.EndS)
	}
	for _, m := range r.Metrics {
		if n := len(m.Points); n > 0 {
			end = math.Max(end, m.Points[n-1][0])
		}
	}
	return end
}

// loadEnd is when the load ended: the last phase's end (a run that
// stopped early has its phases cut there), or the run's duration.
func loadEnd(r *Report) float64 {
	end := 0.0
	for _, p := range r.Phases {
		if !p.NotRun {
			end = p.EndS
		}
	}
	if end <= 0 {
		return r.DurationS
	}
	return end
}

// faultWindow is when a fault was on; a fault still on when the run ended
// (EndS unset) lasts until the end.
func faultWindow(r *Report, f Fault) (start, end float64) {
	end = f.EndS
	if end <= f.StartS {
		end = timelineEnd(r)
	}
	return f.StartS, end
}

// chartFrame is a chart with the timeline's shared parts and a y scale.
func (tl timeline) chartFrame(id, title string, h float64, lo, hi float64, unit string) (svgChart, yScale) {
	c := svgChart{ID: id, Title: title, H: h, Top: chartPadT, Bottom: h - chartPadB,
		Bands: tl.bands, VLines: tl.vlines, Marks: tl.marks, XTicks: timeTicks(tl.ax)}
	ys := newYScale(lo, hi, c.Top, c.Bottom, unit)
	for _, v := range ys.ticks {
		c.YTicks = append(c.YTicks, svgTick{Pos: round1(ys.y(v)), Label: fmtValue(v, unit)})
	}
	return c, ys
}

// bucketOf is the bucket second t falls in.
func (tl timeline) bucketOf(t int) int { return t / tl.ax.step }

func (tl timeline) centre(i int) float64 {
	return math.Min((float64(i)+0.5)*float64(tl.ax.step), tl.ax.end)
}

// throughputChart stacks, per second, the requests the target served, the
// ones a fallback served and the errors.
func (tl timeline) throughputChart(r *Report, tips *tipData) svgChart {
	n := tl.ax.n
	served, fallbacks, errs := make([]float64, n), make([]float64, n), make([]float64, n)
	// secs is how many seconds of load each bucket holds: a last second
	// the load ended inside is only part of one, and its requests are a
	// rate over that part, not a drop.
	secs := make([]float64, n)
	partial := make([]float64, n)
	end := loadEnd(r)
	hasFallbacks := false
	for _, s := range r.Series {
		i := tl.bucketOf(s.T)
		if i < 0 || i >= n {
			continue
		}
		fb := min(s.Fallbacks, s.Successes)
		served[i] += float64(s.Successes - fb)
		fallbacks[i] += float64(fb)
		errs[i] += float64(s.Errors)
		covered := 1.0
		if t := float64(s.T); t < end && end < t+1 {
			covered = math.Max(end-t, 0.01)
			partial[i] = covered
		}
		secs[i] += covered
		hasFallbacks = hasFallbacks || fb > 0
	}
	hi := 0.0
	for i := range n {
		if secs[i] > 0 {
			d := secs[i]
			served[i], fallbacks[i], errs[i] = served[i]/d, fallbacks[i]/d, errs[i]/d
		}
		hi = math.Max(hi, served[i]+fallbacks[i]+errs[i])
	}
	ovs := overlaysFor(r, func(c SLACheck) bool { return c.Load == "rps" })
	_, hi = extentWith(0, hi, ovs)
	c, ys := tl.chartFrame("throughput", "Throughput", 200, 0, hi, "/s")
	tl.draw(&c, ys, ovs)
	c.Note = "requests per second by outcome, stacked"
	type layer struct {
		name, color string
		vals        []float64
	}
	layers := []layer{{"successes", colServed, served}}
	if hasFallbacks {
		layers = []layer{{"served by target", colServed, served}, {"fallbacks", colFallback, fallbacks}}
	}
	layers = append(layers, layer{"errors", colError, errs})
	vals := make([][]float64, len(layers))
	for k, l := range layers {
		vals[k] = l.vals
	}
	tip := &tipChart{Step: tl.ax.step}
	if tl.ax.step > 1 {
		tip.Note = "mean per second"
	}
	for k, d := range stackPaths(tl.ax, vals, ys) {
		c.Areas = append(c.Areas, svgShape{D: d, Color: layers[k].color, Name: layers[k].name})
		c.Legend = append(c.Legend, svgLegend{Color: layers[k].color, Name: layers[k].name})
		tip.Names = append(tip.Names, layers[k].name)
		tip.Colors = append(tip.Colors, layers[k].color)
	}
	tip.Rows = make([][]string, n)
	for i := range n {
		row := make([]string, len(layers))
		for k, l := range layers {
			row[k] = "–"
			if secs[i] > 0 {
				row[k] = fmtValue(l.vals[i], "/s")
			}
			if partial[i] > 0 {
				row[k] += " (over the last " + fmtSeconds(partial[i]) + " of load)"
			}
		}
		tip.Rows[i] = row
	}
	if len(r.Series) == 0 {
		c.Empty = "no requests were recorded"
	}
	tips.Charts[c.ID] = tip
	return c
}

// latencyChart draws response-time percentiles per second and, where the
// load side measured them, service-time percentiles dashed beside them.
func (tl timeline) latencyChart(r *Report, tips *tipData) svgChart {
	type line struct {
		name, color string
		dashed      bool
		get         func(Second) float64
	}
	ovs := overlaysFor(r, func(c SLACheck) bool { return latencyLoads[c.Load] })
	used := map[string]bool{}
	for i := range ovs {
		ovs[i].scale = 1000
		used[ovs[i].check.Load] = true
	}
	// Where a second's latency is split, the solid lines are its
	// successes' alone: failures that come back fast must not look like
	// a speed-up. They are drawn apart, in red.
	split := false
	for _, s := range r.Series {
		split = split || s.split()
	}
	ok := func(all, success func(Second) float64) func(Second) float64 {
		return func(s Second) float64 {
			switch {
			case !s.split():
				return all(s)
			case s.Successes == 0:
				return math.NaN()
			}
			return success(s)
		}
	}
	lines := []line{{"p50", colP50, false, ok(func(s Second) float64 { return s.P50Ms }, func(s Second) float64 { return s.SuccessP50Ms })}}
	if used["p90"] {
		lines = append(lines, line{"p90", colP90, false, ok(func(s Second) float64 { return s.P90Ms }, func(s Second) float64 { return s.SuccessP90Ms })})
	}
	lines = append(lines,
		line{"p95", colP95, false, ok(func(s Second) float64 { return s.P95Ms }, func(s Second) float64 { return s.SuccessP95Ms })},
		line{"p99", colP99, false, ok(func(s Second) float64 { return s.P99Ms }, func(s Second) float64 { return s.SuccessP99Ms })})
	if used["max"] {
		lines = append(lines, line{"max", colMax, false, ok(func(s Second) float64 { return s.MaxMs }, func(s Second) float64 { return s.SuccessMaxMs })})
	}
	if split {
		failed := func(get func(Second) float64) func(Second) float64 {
			return func(s Second) float64 {
				if !s.split() {
					return math.NaN()
				}
				return get(s)
			}
		}
		lines = append(lines,
			line{"failed p50", colError, true, failed(func(s Second) float64 { return s.ErrorP50Ms })},
			line{"failed p99", colFailedP99, true, failed(func(s Second) float64 { return s.ErrorP99Ms })})
	}
	hasService := false
	for _, s := range r.Series {
		if s.ServiceP50Ms > 0 || s.ServiceP95Ms > 0 || s.ServiceP99Ms > 0 {
			hasService = true
			break
		}
	}
	if hasService {
		lines = append(lines,
			line{"service p50", colP50, true, func(s Second) float64 { return s.ServiceP50Ms }},
			line{"service p95", colP95, true, func(s Second) float64 { return s.ServiceP95Ms }},
			line{"service p99", colP99, true, func(s Second) float64 { return s.ServiceP99Ms }})
	}
	stats := make([]*bucketStats, len(lines))
	hi := 0.0
	for k, l := range lines {
		b := newBucketStats(tl.ax.n)
		for _, s := range r.Series {
			if s.Requests == 0 {
				continue // no latency to speak of: a gap, not a zero
			}
			b.add(tl.bucketOf(s.T), l.get(s))
		}
		_, h := b.extent()
		if !math.IsInf(h, 0) {
			hi = math.Max(hi, h)
		}
		stats[k] = b
	}
	_, hi = extentWith(0, hi, ovs)
	c, ys := tl.chartFrame("latency", "Latency", 200, 0, hi, "ms")
	tl.draw(&c, ys, ovs)
	c.Note = "response-time percentiles per second"
	if hasService {
		c.Note = "percentiles per second; solid: response time, dashed: service time"
	}
	if split {
		c.Note += "; where requests failed, solid lines are the successes', red the failures' (SLAs read all requests)"
	}
	tip := &tipChart{Step: tl.ax.step}
	if tl.ax.step > 1 {
		tip.Note = "worst second"
	}
	for k, l := range lines {
		c.Lines = append(c.Lines, svgShape{D: linePath(tl.ax, stats[k], ys, tl.centre), Color: l.color, Name: l.name, Dashed: l.dashed})
		c.Legend = append(c.Legend, svgLegend{Color: l.color, Name: l.name, Dashed: l.dashed})
		tip.Names = append(tip.Names, l.name)
		tip.Colors = append(tip.Colors, l.color)
	}
	tip.Rows = make([][]string, tl.ax.n)
	for i := range tl.ax.n {
		row := make([]string, len(lines))
		for k := range lines {
			row[k] = fmtValue(stats[k].max[i], "ms")
		}
		tip.Rows[i] = row
	}
	tip.Extra = topReasonsText(r, tl)
	if len(r.Series) == 0 {
		c.Empty = "no requests were recorded"
	}
	tips.Charts[c.ID] = tip
	return c
}

// topReasonsText says, per bucket, why most of its failed requests failed.
func topReasonsText(r *Report, tl timeline) []string {
	out := make([]string, tl.ax.n)
	sums := make([]map[string]uint64, tl.ax.n)
	any := false
	for _, s := range r.Series {
		i := tl.bucketOf(s.T)
		if i < 0 || i >= tl.ax.n || len(s.ErrorReasons) == 0 {
			continue
		}
		if sums[i] == nil {
			sums[i] = map[string]uint64{}
		}
		for k, n := range s.ErrorReasons {
			sums[i][k] += n
		}
		any = true
	}
	if !any {
		return nil
	}
	for i, m := range sums {
		if len(m) == 0 {
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(a, b int) bool {
			if m[keys[a]] != m[keys[b]] {
				return m[keys[a]] > m[keys[b]]
			}
			return keys[a] < keys[b]
		})
		var parts []string
		for _, k := range keys[:min(SecondReasons, len(keys))] {
			parts = append(parts, k+" ×"+strconv.FormatUint(m[k], 10))
		}
		out[i] = "top errors: " + strings.Join(parts, ", ")
	}
	return out
}

// latencyLoads are the load series the latency chart draws per second.
var latencyLoads = map[string]bool{"p50": true, "p90": true, "p95": true, "p99": true, "max": true}

// ratioLoads are the load series that are shares of the requests, read
// per second from the series' counts.
var ratioLoads = map[string]func(Second) float64{
	"success_rate": func(s Second) float64 { return float64(s.Successes) / float64(s.Requests) },
	"error_rate":   func(s Second) float64 { return float64(s.Errors) / float64(s.Requests) },
	"fallback_rate": func(s Second) float64 {
		return float64(min(s.Fallbacks, s.Successes)) / float64(s.Requests)
	},
	"upstream_success_rate": func(s Second) float64 {
		return float64(s.Successes-min(s.Fallbacks, s.Successes)) / float64(s.Requests)
	},
}

// ratioChart draws, per second, the shares of requests the SLAs hold to a
// limit (success_rate, error_rate, …) with their limits; nil when no SLA
// reads one.
func (tl timeline) ratioChart(r *Report, tips *tipData) *svgChart {
	ovs := overlaysFor(r, func(c SLACheck) bool { return ratioLoads[c.Load] != nil })
	if len(ovs) == 0 {
		return nil
	}
	var names []string
	for _, o := range ovs {
		if !slices.Contains(names, o.check.Load) {
			names = append(names, o.check.Load)
		}
	}
	stats := make([]*bucketStats, len(names))
	lo, hi := math.Inf(1), math.Inf(-1)
	for k, name := range names {
		b := newBucketStats(tl.ax.n)
		for _, s := range r.Series {
			if s.Requests > 0 {
				b.add(tl.bucketOf(s.T), ratioLoads[name](s))
			}
		}
		l, h := b.extent()
		lo, hi = math.Min(lo, l), math.Max(hi, h)
		stats[k] = b
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	lo, hi = extentWith(lo, hi, ovs)
	c, ys := tl.chartFrame("shares", "Success and error rates", 170, lo, hi, "ratio")
	tl.draw(&c, ys, ovs)
	c.Note = "share of each second's requests, as the SLAs read them"
	tip := &tipChart{Step: tl.ax.step}
	if tl.ax.step > 1 {
		tip.Note = "worst and best second"
	}
	for k, name := range names {
		color := palette[k%len(palette)]
		c.Lines = append(c.Lines, svgShape{D: linePath(tl.ax, stats[k], ys, tl.centre), Color: color, Name: name})
		c.Legend = append(c.Legend, svgLegend{Color: color, Name: name})
		tip.Names = append(tip.Names, name)
		tip.Colors = append(tip.Colors, color)
	}
	tip.Rows = make([][]string, tl.ax.n)
	for i := range tl.ax.n {
		row := make([]string, len(names))
		for k := range names {
			row[k] = fmtValue(stats[k].min[i], "ratio")
			if stats[k].max[i] != stats[k].min[i] {
				row[k] += " – " + fmtValue(stats[k].max[i], "ratio")
			}
		}
		tip.Rows[i] = row
	}
	if len(r.Series) == 0 {
		c.Empty = "no requests were recorded"
	}
	tips.Charts[c.ID] = tip
	return &c
}

// panelChart draws a panel of scraped series. Counters are drawn as their
// per-second rate: a counter's raw value only ever climbs, its rate is what
// changes when a fault hits.
func (tl timeline) panelChart(r *Report, p Panel, id string, tips *tipData) svgChart {
	unit := p.Unit
	stats := make([]*bucketStats, len(p.Series))
	points := make([][][2]float64, len(p.Series))
	lo, hi := math.Inf(1), math.Inf(-1)
	rated := false
	for k, s := range p.Series {
		pts := s.Points
		if s.Type == "counter" {
			pts = counterRate(pts)
			rated = true
		}
		points[k] = pts
		b := newBucketStats(tl.ax.n)
		for _, pt := range pts {
			b.add(min(int(pt[0])/tl.ax.step, tl.ax.n-1), pt[1])
		}
		l, h := b.extent()
		lo, hi = math.Min(lo, l), math.Max(hi, h)
		stats[k] = b
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	counters := rated && len(p.Series) > 0 && allCounters(p.Series)
	if counters {
		unit = rateUnit(unit)
	}
	var ovs []overlay
	if p.Selector != "" {
		ovs = overlaysFor(r, func(c SLACheck) bool { return c.Selector == p.Selector && drawnAs(c.Func, counters) })
		lo, hi = extentWith(lo, hi, ovs)
	}
	c, ys := tl.chartFrame(id, p.Title, 150, lo, hi, unit)
	tl.draw(&c, ys, ovs)
	if p.Selector != "" {
		c.Note = "read by an SLA"
	}
	tip := &tipChart{Step: tl.ax.step}
	if tl.ax.step > 1 {
		tip.Note = "mean"
	}
	for k, s := range p.Series {
		color := palette[k%len(palette)]
		name := seriesName(s)
		if s.Type == "counter" {
			name += " (rate)"
		}
		d := linePath(tl.ax, stats[k], ys, tl.centre)
		if pts := points[k]; len(pts) <= 2*tl.ax.n {
			// Few enough samples to draw each where it was taken.
			d = pointsPath(tl.ax, pts, ys)
		}
		c.Lines = append(c.Lines, svgShape{D: d, Color: color, Name: name})
		c.Legend = append(c.Legend, svgLegend{Color: color, Name: name})
		tip.Names = append(tip.Names, name)
		tip.Colors = append(tip.Colors, color)
	}
	tip.Rows = make([][]string, tl.ax.n)
	for i := range tl.ax.n {
		row := make([]string, len(p.Series))
		for k, s := range p.Series {
			u := p.Unit
			if s.Type == "counter" {
				u = rateUnit(u)
			}
			row[k] = fmtValue(stats[k].mean(i), u)
		}
		tip.Rows[i] = row
	}
	if len(p.Series) == 0 || allEmpty(p.Series) {
		c.Empty = "no samples were scraped"
	}
	tips.Charts[id] = tip
	return c
}

// drawnAs says whether a limit on fn of a selector can be drawn on its
// panel: the panel draws a gauge's values and a counter's rate, so a
// limit on a gauge's value (bare, last, first, avg, min, max) or on a
// counter's rate can; one on an increase or a quantile cannot.
func drawnAs(fn string, counters bool) bool {
	if counters {
		return fn == "rate"
	}
	switch fn {
	case "", "last", "first", "avg", "min", "max":
		return true
	}
	return false
}

func allCounters(ss []MetricSeries) bool {
	for _, s := range ss {
		if s.Type != "counter" {
			return false
		}
	}
	return true
}

func allEmpty(ss []MetricSeries) bool {
	for _, s := range ss {
		if len(s.Points) > 0 {
			return false
		}
	}
	return true
}

func rateUnit(u string) string {
	switch u {
	case "", "plain":
		return "/s"
	case "seconds":
		// seconds per second: a share of time, drawn plain
		return ""
	}
	return u + "/s"
}

// counterRate turns counter samples into per-second rates between
// consecutive samples; a drop is a counter reset, counted from zero.
func counterRate(pts [][2]float64) [][2]float64 {
	if len(pts) < 2 {
		return nil
	}
	out := make([][2]float64, 0, len(pts)-1)
	for i := 1; i < len(pts); i++ {
		dt := pts[i][0] - pts[i-1][0]
		if dt <= 0 {
			continue
		}
		dv := pts[i][1] - pts[i-1][1]
		if dv < 0 {
			dv = pts[i][1]
		}
		out = append(out, [2]float64{pts[i][0], dv / dt})
	}
	return out
}

// seriesName names a scraped series the way Prometheus users read it:
// source: name{label="value"}.
func seriesName(s MetricSeries) string {
	var b strings.Builder
	if s.Source != "" {
		b.WriteString(s.Source + ": ")
	}
	b.WriteString(s.Name)
	if len(s.Labels) > 0 {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k + "=" + strconv.Quote(s.Labels[k]))
		}
		b.WriteByte('}')
	}
	return b.String()
}

// stripLanes draws the phases and, below them, each fault's time on.
func (tl timeline) stripLanes(r *Report) svgLanes {
	var lanes []svgLane
	phases := svgLane{Label: "phases"}
	for i, p := range r.Phases {
		x0, x1 := tl.ax.x(p.StartS), tl.ax.x(p.EndS)
		color := "#c9d6e8"
		if i%2 == 1 {
			color = "#e3e9f2"
		}
		phases.Segs = append(phases.Segs, tl.seg(x0, x1, color, p.Name,
			p.Name+": "+fmtSeconds(p.StartS)+" – "+fmtSeconds(p.EndS)))
	}
	lanes = append(lanes, phases)
	for _, f := range r.Faults {
		if f.NotRun {
			continue
		}
		start, end := faultWindow(r, f)
		label := f.Kind + " " + trimZeros(strconv.FormatFloat(f.ConfiguredRate*100, 'f', 1, 64)) + "%"
		name := f.ID
		switch f.Proxy {
		case "":
		case "proxy":
			name += " · main proxy"
		default:
			name += " · proxy " + f.Proxy
		}
		lane := svgLane{Label: name}
		lane.Segs = append(lane.Segs, tl.seg(tl.ax.x(start), tl.ax.x(end), colFault, label,
			name+" on "+fmtSeconds(start)+" – "+fmtSeconds(end)+": injected "+strconv.FormatUint(f.Injected, 10)+
				" of "+strconv.FormatUint(f.Matched, 10)+" matched"))
		lane.Ticks = []svgTickMark{{X: tl.ax.x(start), Title: f.ID + " on"}, {X: tl.ax.x(end), Title: f.ID + " off"}}
		lanes = append(lanes, lane)
	}
	return tl.layoutLanes(lanes)
}

// stateLanes draws the state over time of each thing whose transitions
// the events of source ("guard" policies, "process"es) record; before its
// first transition a thing is in that transition's From state.
func (tl timeline) stateLanes(r *Report, source string) *svgLanes {
	type policy struct {
		name   string // the lane's label: "breaker orders", or the name alone
		events []Event
	}
	// A guard policy's lane is its kind and name, where its events say
	// its kind: the policies of a route share the route's name.
	label := func(kind, name string) string {
		if kind == "" {
			return name
		}
		return kind + " " + name
	}
	var order []*policy
	byName := map[string]*policy{}
	for _, e := range r.Events {
		if e.Source != source || e.Kind != "transition" {
			continue
		}
		kind := ""
		if source == "guard" {
			kind = guardKind(e)
		}
		name := label(kind, e.Name)
		p := byName[name]
		if p == nil {
			p = &policy{name: name}
			byName[name] = p
			order = append(order, p)
		}
		p.events = append(p.events, e)
	}
	// A guard state an SLA reads gets its lane even if it never changed:
	// "the breaker never opened" is often the failure to explain.
	var quiet []GuardState
	if source == "guard" {
		for _, g := range readGuards(r) {
			if name := label(g.Kind, g.Name); byName[name] == nil {
				byName[name] = &policy{name: name}
				quiet = append(quiet, g)
			}
		}
	}
	if len(order) == 0 && len(quiet) == 0 {
		return nil
	}
	colours := map[string]string{}
	others := 0
	var legend []svgLegend
	colour := func(state string) string {
		if c, ok := colours[state]; ok {
			return c
		}
		c, ok := stateColours[strings.ToLower(state)]
		if !ok {
			c = otherStateColours[others%len(otherStateColours)]
			others++
		}
		colours[state] = c
		legend = append(legend, svgLegend{Color: c, Name: state})
		return c
	}
	var lanes []svgLane
	for _, p := range order {
		sort.SliceStable(p.events, func(i, j int) bool { return p.events[i].AtS < p.events[j].AtS })
		lane := svgLane{Label: p.name}
		state, since := p.events[0].From, 0.0
		for _, e := range p.events {
			if state != "" {
				lane.Segs = append(lane.Segs, tl.seg(tl.ax.x(since), tl.ax.x(e.AtS), colour(state), state,
					p.name+": "+state+" "+fmtSeconds(since)+" – "+fmtSeconds(e.AtS)))
			}
			lane.Ticks = append(lane.Ticks, svgTickMark{X: tl.ax.x(e.AtS),
				Title: fmtSeconds(e.AtS) + " " + p.name + ": " + e.From + " → " + e.To + detailSuffix(e.Detail)})
			state, since = e.To, e.AtS
		}
		if state != "" {
			lane.Segs = append(lane.Segs, tl.seg(tl.ax.x(since), tl.ax.x(tl.ax.end), colour(state), state,
				p.name+": "+state+" from "+fmtSeconds(since)))
		}
		lanes = append(lanes, lane)
	}
	for _, g := range quiet {
		name := label(g.Kind, g.Name)
		lanes = append(lanes, svgLane{Label: name, Segs: []svgSeg{tl.seg(tl.ax.x(0), tl.ax.x(tl.ax.end), colour(g.Initial), g.Initial,
			name+": "+g.Initial+" the whole run (it never changed)")}})
	}
	l := tl.layoutLanes(lanes)
	l.Legend = legend
	return &l
}

// readGuards are the run's stateful guard policies that an SLA reads, in
// the order the SLAs read them.
func readGuards(r *Report) []GuardState {
	var out []GuardState
	for _, sla := range r.SLAs {
		for _, c := range sla.Checks {
			for _, g := range r.Guards {
				if g.Kind == c.StateKind && g.Name == c.StateName && !slices.Contains(out, g) {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

func detailSuffix(d string) string {
	if d == "" {
		return ""
	}
	return " (" + d + ")"
}

// seg is a lane segment, labelled inside when the label fits.
func (tl timeline) seg(x0, x1 float64, color, label, title string) svgSeg {
	w := round1(math.Max(x1-x0, 0.5))
	if float64(len([]rune(label)))*6.5+8 > w {
		label = ""
	}
	return svgSeg{X: x0, W: w, CX: round1(x0 + w/2), Color: color, Label: label, Title: title, Dark: isDark(color)}
}

func (tl timeline) layoutLanes(lanes []svgLane) svgLanes {
	for i := range lanes {
		lanes[i].Y = float64(i)*laneH + 16
		for j := range lanes[i].Ticks {
			lanes[i].Ticks[j].Y0, lanes[i].Ticks[j].Y1 = lanes[i].Y-3, lanes[i].Y+19
		}
	}
	bottom := float64(len(lanes))*laneH + 4
	return svgLanes{H: bottom + chartPadB, Lanes: lanes, XTicks: timeTicks(tl.ax), Bands: tl.bands, Bottom: bottom}
}

// DefaultPanels chooses the scraped series to chart when the scenario chose
// none: the target's goroutines and heap, the two that show a leak or a
// pile-up of work during a fault.
func DefaultPanels(metrics []MetricSeries) []Panel {
	pick := func(names ...string) []MetricSeries {
		for _, n := range names {
			var out []MetricSeries
			for _, m := range metrics {
				if m.Source == "target" && m.Name == n {
					out = append(out, m)
				}
			}
			if len(out) > 0 {
				return out
			}
		}
		return nil
	}
	var panels []Panel
	if s := pick("go_goroutines"); s != nil {
		panels = append(panels, Panel{Title: "Target goroutines", Series: s})
	}
	if s := pick("go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes"); s != nil {
		panels = append(panels, Panel{Title: "Target heap", Unit: "bytes", Series: s})
	}
	return panels
}

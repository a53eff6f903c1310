// Command soakcheck reads the report.json of a soak run (bench/soak.sh) and
// decides two things: that every phase's verdict was the right one (every
// SLA passed, each phase has one, every fault fired, the rate held), and
// that resctl's own resident memory and goroutines — scraped from the
// proxy's /metrics as proxy:process_resident_memory_bytes and
// proxy:go_goroutines — stayed flat after warm-up.
//
// The first quarter of the run is warm-up. Flat means both: the median of
// the last quarter is at most the median of the second quarter plus a
// margin, and the trend after warm-up rises by no more than that margin
// over the span it covers. The trend is the Theil–Sen slope (the median of
// the slopes between every two per-minute medians), so a burst of
// connections that a stall of the machine leaves open for the proxy's idle
// timeout is not read as growth; the least-squares slope of every sample
// is printed beside it. It prints the figures BENCHMARKS.md quotes and
// exits 1 when either check fails.
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/resctl/resctl/report"
)

func main() {
	rate := flag.Float64("rate", 1000, "requested rate, requests per second")
	rssMargin := flag.Float64("rss-margin", 0.10, "allowed rise of RSS after warm-up, a fraction of its second-quarter median")
	gorMargin := flag.Float64("goroutine-margin", 0.10, "allowed rise of goroutines after warm-up, a fraction of their second-quarter median")
	gorSlack := flag.Float64("goroutine-slack", 10, "allowed rise of goroutines after warm-up, in goroutines, on top of the margin")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: soakcheck [-rate N] [-rss-margin F] [-goroutine-margin F] [-goroutine-slack N] report.json")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakcheck:", err)
		os.Exit(2)
	}
	r, err := report.ReadJSON(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakcheck:", err)
		os.Exit(2)
	}

	ok := verdicts(r, *rate)
	dur := r.Total.EndS - r.Total.StartS
	rss, found := series(r, "process_resident_memory_bytes")
	if !found {
		fmt.Println("rss         not scraped (proxy:process_resident_memory_bytes)")
		ok = false
	} else {
		ok = flat("rss", rss, dur, 1e6, "MB", *rssMargin, 0, true) && ok
	}
	gor, found := series(r, "go_goroutines")
	if !found {
		fmt.Println("goroutines  not scraped (proxy:go_goroutines)")
		ok = false
	} else {
		ok = flat("goroutines", gor, dur, 1, "", *gorMargin, *gorSlack, true) && ok
	}
	// The Go heap in use is printed, not judged: it tells growth of what
	// resctl keeps (the per-second recording, scraped series) from the
	// collector's headroom and memory not yet returned to the system.
	if heap, found := series(r, "go_memstats_heap_inuse_bytes"); found {
		flat("heap in use", heap, dur, 1e6, "MB", *rssMargin, 0, false)
	}
	if !ok {
		fmt.Println("result      MISSED")
		os.Exit(1)
	}
	fmt.Println("result      met: verdicts right, RSS and goroutines flat")
}

// verdicts prints the run's load figures and phase verdicts and says
// whether the run did what the soak asks: completed, at the rate, every
// fault fired, and every phase judged by an SLA that passed.
func verdicts(r *report.Report, rate float64) bool {
	ok := true
	t := r.Total
	fmt.Printf("run         %.0fs, %d phases, %d sent of %d scheduled\n", t.EndS-t.StartS, len(r.Phases), r.Run.Sent, r.Run.Scheduled)
	ratio := t.RPS / rate
	fmt.Printf("achieved    %.2f/s (%.2f%% of %.0f/s)", t.RPS, ratio*100, rate)
	if r.Run.GeneratorBehind {
		fmt.Printf(", generator behind: %s", r.Run.BehindReason)
	}
	fmt.Println()
	fmt.Printf("peak RSS    %.1f MB\n", float64(r.Run.PeakRSSBytes)/1e6)
	if ratio < 0.99 || ratio > 1.01 {
		fmt.Println("            the rate missed 1% of the requested one")
		ok = false
	}
	if r.Interrupted || r.Error != "" || r.Aborted != "" {
		fmt.Printf("            the run did not complete: %s%s (reached %s)\n", r.Error, r.Aborted, r.Reached)
		ok = false
	}
	for _, f := range r.Faults {
		if !f.Fired {
			fmt.Printf("            fault %s of %s never fired\n", f.ID, f.Phase)
			ok = false
		}
	}

	judged := map[string]int{}
	passed, failed := 0, 0
	for _, s := range r.SLAs {
		if s.Passed {
			passed++
			judged[s.During]++
			continue
		}
		failed++
		fmt.Printf("            FAIL %s: %s (observed %s)%s\n", s.Name, s.Expect, s.Observed, s.Error)
	}
	kinds := map[string][2]int{} // phase kind → phases right, phases
	var worstBase, worstFault report.Phase
	for _, p := range r.Phases {
		_, kind, _ := strings.Cut(p.Name, "-")
		k := kinds[kind]
		k[1]++
		if judged[p.Name] > 0 {
			k[0]++
		} else if !slices.ContainsFunc(r.SLAs, func(s report.SLA) bool { return s.During == p.Name }) {
			fmt.Printf("            phase %s has no SLA\n", p.Name)
			ok = false
		}
		kinds[kind] = k
		if kind == "baseline" && p.LatencyMs.P99 > worstBase.LatencyMs.P99 {
			worstBase = p
		}
		if kind == "latency" && (worstFault.Name == "" || p.LatencyMs.Min < worstFault.LatencyMs.Min) {
			worstFault = p
		}
	}
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%s %d/%d", kind, kinds[kind][0], kinds[kind][1]))
	}
	fmt.Printf("verdicts    %d of %d SLAs passed; phases judged right: %s\n", passed, len(r.SLAs), strings.Join(parts, ", "))
	if worstBase.Name != "" {
		fmt.Printf("            worst baseline p99 %.1fms (%s); lowest latency-phase min %.1fms (%s)\n",
			worstBase.LatencyMs.P99, worstBase.Name, worstFault.LatencyMs.Min, worstFault.Name)
	}
	if failed > 0 || len(r.SLAs) == 0 {
		ok = false
	}
	return ok
}

// series returns the points of the proxy's scraped metric name, summed
// over its label sets at each instant.
func series(r *report.Report, name string) ([][2]float64, bool) {
	sum := map[float64]float64{}
	found := false
	for _, m := range r.Metrics {
		if m.Source != "proxy" || m.Name != name {
			continue
		}
		found = true
		for _, p := range m.Points {
			sum[p[0]] += p[1]
		}
	}
	pts := make([][2]float64, 0, len(sum))
	for t, v := range sum {
		pts = append(pts, [2]float64{t, v})
	}
	slices.SortFunc(pts, func(a, b [2]float64) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	return pts, found && len(pts) > 0
}

// flat prints a series' figures at warm-up, middle and end, the medians
// of the second and last quarters and the least-squares slope after
// warm-up, and says whether it stayed within margin (a fraction of the
// second quarter's median) plus slack (in the series' unit); a series
// not judged is only printed.
func flat(label string, pts [][2]float64, dur, scale float64, unit string, margin, slack float64, judge bool) bool {
	w := dur / 12 // the span each "at" figure is the median of
	at := func(from, to float64) float64 { return median(window(pts, from, to)) / scale }
	q := dur / 4
	q2, q4 := at(q, 2*q), at(3*q, dur)
	after := window(pts, q, dur)
	ls := slopePerHour(after) / scale
	trend := theilSenPerHour(binned(after, max(dur/60, 1))) / scale
	span := (dur - q) / 3600 // hours the fit covers
	allowed := margin*q2 + slack/scale
	fmt.Printf("%-11s warm-up %.1f%s  middle %.1f%s  end %.1f%s  (medians of %.0fs around each)\n",
		label, at(q-w, q), unit, at(dur/2-w/2, dur/2+w/2), unit, at(dur-w, dur), unit, w)
	lo, hi := minMax(after)
	fmt.Printf("            after warm-up: min %.1f%s  max %.1f%s  %d samples\n", lo/scale, unit, hi/scale, unit, len(after))
	fmt.Printf("            median 2nd quarter %.1f%s, last quarter %.1f%s: %+.1f%s (%+.1f%%); allowed +%.1f%s\n",
		q2, unit, q4, unit, q4-q2, unit, 100*(q4-q2)/q2, allowed, unit)
	fmt.Printf("            trend (Theil-Sen) %+.2f%s per hour: %+.1f%s over the %.0fs after warm-up; allowed +%.1f%s\n",
		trend, unit, trend*span, unit, dur-q, allowed, unit)
	fmt.Printf("            least-squares slope %+.2f%s per hour: %+.1f%s over the same span\n", ls, unit, ls*span, unit)
	if !judge {
		return true
	}
	if len(after) < 10 || q4-q2 > allowed || trend*span > allowed {
		fmt.Printf("            %s NOT flat\n", label)
		return false
	}
	return true
}

func window(pts [][2]float64, from, to float64) [][2]float64 {
	var out [][2]float64
	for _, p := range pts {
		if p[0] >= from && p[0] <= to {
			out = append(out, p)
		}
	}
	return out
}

func median(pts [][2]float64) float64 {
	if len(pts) == 0 {
		return 0
	}
	v := make([]float64, len(pts))
	for i, p := range pts {
		v[i] = p[1]
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func minMax(pts [][2]float64) (lo, hi float64) {
	for i, p := range pts {
		if i == 0 || p[1] < lo {
			lo = p[1]
		}
		if i == 0 || p[1] > hi {
			hi = p[1]
		}
	}
	return lo, hi
}

// slopePerHour is the least-squares slope of the points, per hour.
func slopePerHour(pts [][2]float64) float64 {
	n := float64(len(pts))
	if n < 2 {
		return 0
	}
	var st, sv float64
	for _, p := range pts {
		st += p[0]
		sv += p[1]
	}
	mt, mv := st/n, sv/n
	var num, den float64
	for _, p := range pts {
		num += (p[0] - mt) * (p[1] - mv)
		den += (p[0] - mt) * (p[0] - mt)
	}
	if den == 0 {
		return 0
	}
	return num / den * 3600
}

// binned returns the median of each stretch of width seconds, at the
// stretch's middle.
func binned(pts [][2]float64, width float64) [][2]float64 {
	var out [][2]float64
	for i := 0; i < len(pts); {
		from := pts[i][0]
		j := i
		for j < len(pts) && pts[j][0] < from+width {
			j++
		}
		out = append(out, [2]float64{from + width/2, median(pts[i:j])})
		i = j
	}
	return out
}

// theilSenPerHour is the median of the slopes between every two points,
// per hour: a trend that a few outlying points do not move.
func theilSenPerHour(pts [][2]float64) float64 {
	var slopes []float64
	for i := range pts {
		for j := i + 1; j < len(pts); j++ {
			if dt := pts[j][0] - pts[i][0]; dt > 0 {
				slopes = append(slopes, (pts[j][1]-pts[i][1])/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	slices.Sort(slopes)
	m := slopes[len(slopes)/2]
	if len(slopes)%2 == 0 {
		m = (slopes[len(slopes)/2-1] + m) / 2
	}
	return m * 3600
}

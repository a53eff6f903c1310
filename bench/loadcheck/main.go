// Command loadcheck reads the report.json of a load benchmark run and prints
// the figures BENCHMARKS.md quotes: requested and achieved rate, their ratio,
// latency percentiles and the peak RSS of the resctl process. It exits 1 when
// a target is missed.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/resctl/resctl/report"
)

func main() {
	rate := flag.Float64("rate", 1000, "requested rate, requests per second")
	maxRSS := flag.Float64("max-rss-mb", 150, "peak RSS target in MB")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: loadcheck [-rate N] [-max-rss-mb N] report.json")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadcheck:", err)
		os.Exit(2)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadcheck:", err)
		os.Exit(2)
	}
	t := r.Total
	achieved := t.RPS
	ratio := achieved / *rate
	rssMB := float64(r.Run.PeakRSSBytes) / 1e6
	fmt.Printf("requested   %.0f/s for %.0fs\n", *rate, t.EndS-t.StartS)
	fmt.Printf("sent        %d (recorded %d, success %.3f%%)\n", r.Run.Sent, t.Requests, t.SuccessRate*100)
	fmt.Printf("achieved    %.2f/s (%.2f%% of requested)\n", achieved, ratio*100)
	fmt.Printf("latency     p50 %.2fms  p99 %.2fms  max %.2fms\n", t.LatencyMs.P50, t.LatencyMs.P99, t.LatencyMs.Max)
	fmt.Printf("peak RSS    %.1f MB (target < %.0f MB)\n", rssMB, *maxRSS)
	ok := ratio >= 0.99 && ratio <= 1.01 && rssMB > 0 && rssMB < *maxRSS
	if !ok {
		fmt.Println("result      MISSED")
		os.Exit(1)
	}
	fmt.Println("result      met")
}

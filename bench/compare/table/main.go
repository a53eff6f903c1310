// Command table turns the measurements bench/compare.sh writes, one a
// line as "round path metric value" (tab-separated), into the markdown
// tables of BENCHMARKS.md: medians over the rounds and their ratios to
// nginx and to the target alone.
//
//	table < results.tsv
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Rows are the paths of the main table, in its order.
var Rows = []struct{ Path, Label string }{
	{"direct", "direct (the target alone)"},
	{"nginx", "nginx (1 worker, keep-alive upstream)"},
	{"toxiproxy", "Toxiproxy (TCP)"},
	{"revproxy", "plain httputil.ReverseProxy"},
	{"resctl-http", "resctl proxy http"},
	{"resctl-guard", "resctl proxy http + breaker/retry/timeout"},
	{"resctl-tcp", "resctl proxy tcp mode"},
}

// Extras are the protocol-specific rows: a metric measured directly,
// through resctl (Via) and, for TCP, through Toxiproxy.
var Extras = []struct{ Metric, Label, Via string }{
	{"h2c", "h2c saturation, req/s (h2load -c64 -m10 -t1)", "resctl-h2c"},
	{"grpc", "gRPC unary saturation, calls/s (ghz -c50, one connection)", "resctl-grpc"},
	{"bulk", "TCP bulk, bytes/s (iperf3, one stream)", "resctl-tcp"},
}

// CPURate is the rate of the CPU measurement, in requests per second;
// a round whose generator fell more than 1% short of it, or saw any
// failure, is flagged under the table.
const CPURate = 2000

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "table: no arguments; the measurements come on stdin")
		os.Exit(2)
	}
	res, err := read(os.Stdin)
	if err == nil {
		err = write(os.Stdout, res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
}

// Results are the measurements by path and metric, in round order.
type Results map[key][]sample

type key struct{ path, metric string }

type sample struct {
	round int
	value float64
}

func read(r io.Reader) (Results, error) {
	res := Results{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want round, path, metric and value separated by tabs, got %q", n, line)
		}
		round, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: round %q: %w", n, f[0], err)
		}
		v, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value %q: %w", n, f[3], err)
		}
		k := key{f[1], f[2]}
		res[k] = append(res[k], sample{round, v})
	}
	return res, sc.Err()
}

// median of the values, and whether there were any.
func median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

func (res Results) median(path, metric string) (float64, bool) {
	var vs []float64
	for _, s := range res[key{path, metric}] {
		vs = append(vs, s.value)
	}
	return median(vs)
}

// added is the median over rounds of path's p50 minus direct's in the
// same round.
func (res Results) added(path string) (float64, bool) {
	direct := map[int]float64{}
	for _, s := range res[key{"direct", "p50"}] {
		direct[s.round] = s.value
	}
	var vs []float64
	for _, s := range res[key{path, "p50"}] {
		if d, ok := direct[s.round]; ok {
			vs = append(vs, s.value-d)
		}
	}
	return median(vs)
}

func write(w io.Writer, res Results) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "| path, no fault | saturation, req/s (wrk -t1 -c64) | ÷ nginx | ÷ direct | CPU per 1,000 requests at 2,000 req/s | ÷ nginx | ÷ direct | added p50 at 1,000 req/s (vegeta) | ÷ nginx |")
	fmt.Fprintln(bw, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	satN, satNOK := res.median("nginx", "sat")
	satD, satDOK := res.median("direct", "sat")
	cpuN, cpuNOK := res.median("nginx", "cpu")
	cpuD, cpuDOK := res.median("direct", "cpu")
	addN, addNOK := res.added("nginx")
	for _, row := range Rows {
		sat, satOK := res.median(row.Path, "sat")
		cpu, cpuOK := res.median(row.Path, "cpu")
		add, addOK := res.added(row.Path)
		addCell := cell(add, addOK, func(v float64) string { return fmt.Sprintf("%+.3f ms", v) })
		if row.Path == "direct" {
			p50, ok := res.median("direct", "p50")
			addCell = cell(p50, ok, func(v float64) string { return fmt.Sprintf("0 (its p50: %.3f ms)", v) })
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Label,
			cell(sat, satOK, count), ratio(sat, satOK, satN, satNOK), ratio(sat, satOK, satD, satDOK),
			cell(cpu, cpuOK, millis), ratio(cpu, cpuOK, cpuN, cpuNOK), ratio(cpu, cpuOK, cpuD, cpuDOK),
			addCell, ratio(add, addOK && row.Path != "direct", addN, addNOK))
	}
	if notes := res.flags(); len(notes) > 0 {
		fmt.Fprintln(bw)
		for _, n := range notes {
			fmt.Fprintf(bw, "- %s\n", n)
		}
	}

	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| protocol, no fault | direct | through resctl | through Toxiproxy | resctl ÷ direct | Toxiproxy ÷ direct |")
	fmt.Fprintln(bw, "|---|--:|--:|--:|--:|--:|")
	for _, x := range Extras {
		format := count
		if x.Metric == "bulk" {
			format = gbps
		}
		d, dOK := res.median("direct", x.Metric)
		r, rOK := res.median(x.Via, x.Metric)
		t, tOK := res.median("toxiproxy", x.Metric)
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s |\n", x.Label,
			cell(d, dOK, format), cell(r, rOK, format), cell(t, tOK, format),
			ratio(r, rOK, d, dOK), ratio(t, tOK, d, dOK))
	}

	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| during saturation, cores of 2 | the path's process | the target | wrk | kernel softirq | stolen by the hypervisor | the whole machine busy |")
	fmt.Fprintln(bw, "|---|--:|--:|--:|--:|--:|--:|")
	for _, row := range Rows {
		cells := []string{row.Label}
		for _, metric := range []string{"sat_path_cores", "sat_target_cores", "sat_gen_cores", "sat_softirq_cores", "sat_steal_cores", "sat_busy_cores"} {
			v, ok := res.median(row.Path, metric)
			c := cell(v, ok, cores)
			if row.Path == "direct" && metric == "sat_path_cores" {
				c = "—"
			}
			cells = append(cells, c)
		}
		fmt.Fprintf(bw, "| %s |\n", strings.Join(cells, " | "))
	}
	return bw.Flush()
}

// flags are notes on rounds whose load generator did not do what was
// asked of it: fewer requests than the rate, or any that failed.
func (res Results) flags() []string {
	var notes []string
	for _, row := range Rows {
		for _, m := range []struct{ metric, what string }{{"cpu", "2,000 req/s"}, {"p50", "1,000 req/s"}} {
			for _, s := range res[key{row.Path, m.metric + "_success"}] {
				if s.value < 1 {
					notes = append(notes, fmt.Sprintf("Round %d, %s, vegeta at %s: %.2f%% succeeded.", s.round, row.Label, m.what, 100*s.value))
				}
			}
		}
		for _, s := range res[key{row.Path, "cpu_rate"}] {
			if s.value < 0.99*CPURate {
				notes = append(notes, fmt.Sprintf("Round %d, %s: vegeta sent %.0f req/s of the 2,000 asked.", s.round, row.Label, s.value))
			}
		}
		for _, s := range res[key{row.Path, "sat_errors"}] {
			if s.value > 0 {
				notes = append(notes, fmt.Sprintf("Round %d, %s, wrk: %.0f errors or non-2xx responses.", s.round, row.Label, s.value))
			}
		}
	}
	return notes
}

func cell(v float64, ok bool, format func(float64) string) string {
	if !ok {
		return "—"
	}
	return format(v)
}

// ratio is v ÷ base, or a dash where one is missing or either is not
// positive (an added p50 below direct's is noise, not a ratio).
func ratio(v float64, ok bool, base float64, baseOK bool) string {
	if !ok || !baseOK || v <= 0 || base <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v/base)
}

// count formats a rate with thousands separators: 12,345.
func count(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// millis formats CPU milliseconds to three significant figures.
func millis(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func gbps(v float64) string { return fmt.Sprintf("%.2f GB/s", v/1e9) }

func cores(v float64) string { return fmt.Sprintf("%.2f", v) }

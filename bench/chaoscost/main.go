// Command chaoscost measures what resctl chaos costs: an idle console's
// redraws and CPU, and what a console attached to a resctl proxy costs the
// proxy under load — the proxy's CPU per request and its latency, in
// rounds with and without the console, interleaved, medians and ratios.
//
//	go build -o /tmp/resctl ./cmd/resctl
//	go run ./bench/chaoscost -resctl /tmp/resctl
//
// Linux only (it reads /proc). Traffic goes to 127.0.0.1 only; every load
// is bounded by -rate and -round.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creack/pty"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	bin := flag.String("resctl", "resctl", "the resctl binary")
	idle := flag.Duration("idle", 30*time.Second, "how long the idle console is measured")
	rate := flag.Int("rate", 2000, "requests per second through the proxy")
	round := flag.Duration("round", 10*time.Second, "length of each load round")
	rounds := flag.Int("rounds", 3, "rounds with and rounds without the console")
	flag.Parse()

	demo, stopDemo := start(*bin, "demo-target", "--listen", "127.0.0.1:0")
	defer stopDemo()
	demoURL := waitLine(demo, regexp.MustCompile(`listening on (http://\S+)`))

	// 1. An idle console: redraws and CPU.
	frames, cpu := idleConsole(*bin, demoURL, *idle)
	fmt.Printf("idle console over %v: %.1f redraws/s, %.2f%% of a core (resctl chaos --upstream, proxy and admin API included)\n",
		*idle, frames, cpu*100)

	if *rounds <= 0 {
		return
	}
	// 2. A proxy under load, with and without a console attached.
	adminPort, proxyPort := freePort(), freePort()
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	proxy, stopProxy := start(*bin, "proxy", "--upstream", demoURL, "--listen", fmt.Sprintf("127.0.0.1:%d", proxyPort), "--admin", admin, "--name", "web")
	defer stopProxy()
	waitHTTP("http://" + admin + "/healthz")
	target := fmt.Sprintf("http://127.0.0.1:%d/api/orders", proxyPort)
	var with, without []result
	for i := range *rounds * 2 {
		attached := i%2 == 1
		var stop func()
		if attached {
			stop = attach(*bin, "http://"+admin)
		}
		r := loadRound(proxy.Process.Pid, target, *rate, *round)
		if stop != nil {
			stop()
		}
		if attached {
			with = append(with, r)
		} else {
			without = append(without, r)
		}
		fmt.Printf("round %d (console %v): %s\n", i+1, attached, r)
	}
	w, wo := medianOf(with), medianOf(without)
	fmt.Printf("median without the console: %s\nmedian with the console:    %s\n", wo, w)
	fmt.Printf("ratios with/without: proxy CPU per request %.3f, achieved rate %.4f, p50 %.3f, p99 %.3f\n",
		w.cpuPerReq/wo.cpuPerReq, w.rps/wo.rps, w.p50/wo.p50, w.p99/wo.p99)
}

type result struct {
	rps, success float64
	cpuPerReq    float64 // proxy CPU seconds per request, in µs
	p50, p99     float64 // ms
}

func (r result) String() string {
	return fmt.Sprintf("%.0f req/s, %.2f%% ok, proxy CPU %.1f µs/request, p50 %.2fms, p99 %.2fms", r.rps, r.success*100, r.cpuPerReq, r.p50, r.p99)
}

func medianOf(rs []result) result {
	med := func(f func(result) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	return result{
		rps: med(func(r result) float64 { return r.rps }), success: med(func(r result) float64 { return r.success }),
		cpuPerReq: med(func(r result) float64 { return r.cpuPerReq }),
		p50:       med(func(r result) float64 { return r.p50 }), p99: med(func(r result) float64 { return r.p99 }),
	}
}

func loadRound(pid int, target string, rate int, d time.Duration) result {
	// A client of its own per round, its connections closed after it, so
	// no round inherits the last one's connections (or fills the proxy's
	// connection cap with them).
	tp := &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}
	defer tp.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: tp, Timeout: 5 * time.Second}))
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: target})
	var m vegeta.Metrics
	before := cpuSeconds(pid)
	for res := range atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, "round") {
		m.Add(res)
	}
	m.Close()
	used := cpuSeconds(pid) - before
	return result{
		rps: m.Throughput, success: m.Success,
		cpuPerReq: used / float64(m.Requests) * 1e6,
		p50:       float64(m.Latencies.P50) / 1e6, p99: float64(m.Latencies.P99) / 1e6,
	}
}

// idleConsole runs resctl chaos on a pseudo-terminal with nothing to do
// and counts its frames (bursts of output) and CPU.
func idleConsole(bin, upstream string, d time.Duration) (framesPerSec, cores float64) {
	cmd := exec.Command(bin, "chaos", "--upstream", upstream)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = tty.Close() }()
	var frames atomic.Int64
	var counting atomic.Bool
	go func() {
		// A frame is a burst of output: the renderer writes each one at
		// once, and at most one every 1/FPS. Bursts are told apart by a
		// quiet gap of more than 20 ms.
		b := make([]byte, 64<<10)
		last := time.Time{}
		for {
			n, err := tty.Read(b)
			if err != nil {
				return
			}
			if now := time.Now(); n > 0 && now.Sub(last) > 20*time.Millisecond {
				if counting.Load() {
					frames.Add(1)
				}
				last = now
			} else if n > 0 {
				last = now
			}
		}
	}()
	time.Sleep(5 * time.Second) // start-up and the first draws
	counting.Store(true)
	before := cpuSeconds(cmd.Process.Pid)
	time.Sleep(d)
	used := cpuSeconds(cmd.Process.Pid) - before
	return float64(frames.Load()) / d.Seconds(), used / d.Seconds()
}

// attach starts a console attached to the admin API, on a
// pseudo-terminal, and returns what stops it.
func attach(bin, admin string) func() {
	cmd := exec.Command(bin, "chaos", "--attach", admin)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, tty) }()
	time.Sleep(2 * time.Second) // it has drawn and polls
	return func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = tty.Close() }
}

// cpuSeconds is a process's user and system CPU time so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

type proc struct {
	*exec.Cmd
	mu    sync.Mutex
	lines []string
	seen  chan struct{}
}

func start(bin string, args ...string) (*proc, func()) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	p := &proc{Cmd: cmd, seen: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.seen <- struct{}{}:
			default:
			}
		}
	}()
	return p, func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
}

func waitLine(p *proc, re *regexp.Regexp) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m[1]
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-ctx.Done():
			log.Fatalf("no line matching %s", re)
		}
	}
}

func waitHTTP(url string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	log.Fatalf("%s never answered", url)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Command httpproxy measures the http proxy as a user runs it, beside
// nginx: a tiny upstream (this command, in a process of its own), the
// proxy and the load each in their own process on loopback, in rounds
// that take every proxy in turn, so that a busy machine weighs on all of
// them alike. Each round of each proxy measures:
//
//   - saturation: wrk -t1 -c64 for -duration, the requests per second and
//     the proxy's CPU per 1,000 requests;
//   - the p50 it adds at 1,000 requests/s (16 keep-alive connections,
//     paced), against the upstream's own p50 measured right after;
//   - its CPU per 1,000 requests at 2,000 requests/s.
//
// Ratios are to nginx in the same round (one worker, keep-alive to the
// upstream), then the median over the rounds.
//
//	go build -o /tmp/before ./cmd/resctl   # at the commit to compare with
//	go build -o /tmp/after ./cmd/resctl
//	go run ./bench/httpproxy -resctl /tmp/before,/tmp/after -rounds 3
//
// Linux only (it reads /proc); needs wrk, and nginx for the baseline.
// Traffic goes to 127.0.0.1 only; every load is bounded in time, and
// every process it starts is stopped before the next.
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
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	serve := flag.String("serve-upstream", "", "internal: serve the tiny upstream on this address")
	bins := flag.String("resctl", "resctl", "resctl binaries to measure, comma-separated")
	nginx := flag.String("nginx", "nginx", `the nginx binary for the baseline; "" for none`)
	wrk := flag.String("wrk", "wrk", "the wrk binary")
	rounds := flag.Int("rounds", 3, "rounds")
	dur := flag.Duration("duration", 8*time.Second, "length of each measure")
	flag.Parse()
	if *serve != "" {
		serveUpstream(*serve)
		return
	}

	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	upAddr := freeAddr()
	up := start(exec.Command(self, "-serve-upstream", upAddr))
	defer stop(up)
	waitHTTP("http://" + upAddr + "/")

	var variants []variant
	if *nginx != "" {
		variants = append(variants, variant{name: "nginx", start: func(listen string) *exec.Cmd { return startNginx(*nginx, listen, upAddr) }})
	}
	for _, b := range strings.Split(*bins, ",") {
		variants = append(variants, variant{name: b, start: func(listen string) *exec.Cmd {
			return start(exec.Command(b, "proxy", "--upstream", "http://"+upAddr, "--listen", listen, "--admin", freeAddr()))
		}})
	}
	results := map[string][]result{}
	for r := 1; r <= *rounds; r++ {
		for _, v := range variants {
			res := measure(v, *wrk, upAddr, *dur)
			results[v.name] = append(results[v.name], res)
			fmt.Printf("round %d  %-24s %s\n", r, filepath.Base(v.name), res)
		}
	}
	summarize(variants, results, *nginx != "")
}

type variant struct {
	name  string
	start func(listen string) *exec.Cmd
}

type result struct {
	rps, cpuSat         float64 // requests/s at saturation; CPU ms per 1,000 requests there
	p50, direct, cpuAt2 float64 // µs at 1,000/s through it and direct; CPU ms per 1,000 at 2,000/s
}

func (r result) String() string {
	return fmt.Sprintf("%8.0f req/s  %6.1f ms/1k at saturation  p50 %4.0f µs (direct %4.0f, added %4.0f)  %6.1f ms/1k at 2,000/s",
		r.rps, r.cpuSat, r.p50, r.direct, r.p50-r.direct, r.cpuAt2)
}

func measure(v variant, wrk, upAddr string, d time.Duration) result {
	listen := freeAddr()
	cmd := v.start(listen)
	defer stop(cmd)
	waitHTTP("http://" + listen + "/")
	url := "http://" + listen + "/"
	runWrk(wrk, url, 2*time.Second) // warm up: connections, pools
	var r result
	c0 := cpuMillis(cmd.Process.Pid)
	n, rps := runWrk(wrk, url, d)
	r.rps = rps
	r.cpuSat = float64(cpuMillis(cmd.Process.Pid)-c0) * 1000 / float64(n)
	r.p50 = paced(listen, 1000, d)
	r.direct = paced(upAddr, 1000, d/2)
	c0 = cpuMillis(cmd.Process.Pid)
	paced(listen, 2000, d)
	r.cpuAt2 = float64(cpuMillis(cmd.Process.Pid)-c0) * 1000 / (2000 * d.Seconds())
	return r
}

func summarize(variants []variant, results map[string][]result, withNginx bool) {
	fmt.Println()
	fmt.Println("medians over the rounds" + map[bool]string{true: "; ratios to nginx in the same round, then their median", false: ""}[withNginx])
	for _, v := range variants {
		rs := results[v.name]
		pick := func(f func(result) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return median(xs)
		}
		fmt.Printf("%-24s %8.0f req/s  %6.1f ms/1k  added p50 %4.0f µs  %6.1f ms/1k at 2,000/s\n", filepath.Base(v.name),
			pick(func(r result) float64 { return r.rps }), pick(func(r result) float64 { return r.cpuSat }),
			pick(func(r result) float64 { return r.p50 - r.direct }), pick(func(r result) float64 { return r.cpuAt2 }))
		if !withNginx || v.name == "nginx" {
			continue
		}
		ng := results["nginx"]
		ratio := func(f func(result) float64) float64 {
			xs := make([]float64, len(rs))
			for i := range rs {
				xs[i] = f(rs[i]) / f(ng[i])
			}
			return median(xs)
		}
		added := make([]float64, len(rs))
		for i := range rs {
			added[i] = (rs[i].p50 - rs[i].direct) - (ng[i].p50 - ng[i].direct)
		}
		fmt.Printf("%-24s × nginx: %.2f of its req/s, %.2f× its CPU at saturation, %.2f× at 2,000/s, added p50 %+.0f µs beside it\n", "",
			ratio(func(r result) float64 { return r.rps }), ratio(func(r result) float64 { return r.cpuSat }),
			ratio(func(r result) float64 { return r.cpuAt2 }), median(added))
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// serveUpstream answers every request with "ok".
func serveUpstream(addr string) {
	log.Fatal(http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
}

const nginxConf = `worker_processes 1;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{dir}}/body;
  proxy_temp_path {{dir}}/proxy;
  fastcgi_temp_path {{dir}}/fastcgi;
  uwsgi_temp_path {{dir}}/uwsgi;
  scgi_temp_path {{dir}}/scgi;
  upstream up { server {{upstream}}; keepalive 64; }
  server {
    listen {{listen}};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`

func startNginx(bin, listen, upstream string) *exec.Cmd {
	dir, err := os.MkdirTemp("", "httpproxy-nginx")
	if err != nil {
		die("%v", err)
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{upstream}}", upstream, "{{listen}}", listen).Replace(nginxConf)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		die("%v", err)
	}
	cmd := start(exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;"))
	tempDirs[cmd] = dir
	return cmd
}

// running are the processes started here and not yet stopped, and
// tempDirs the directories to remove with them.
var (
	running  = map[*exec.Cmd]bool{}
	tempDirs = map[*exec.Cmd]string{}
	mu       sync.Mutex
)

func start(cmd *exec.Cmd) *exec.Cmd {
	if err := cmd.Start(); err != nil {
		die("start %s: %v", cmd.Path, err)
	}
	mu.Lock()
	running[cmd] = true
	mu.Unlock()
	return cmd
}

// stop ends a process started here and waits for it.
func stop(cmd *exec.Cmd) {
	mu.Lock()
	delete(running, cmd)
	dir := tempDirs[cmd]
	mu.Unlock()
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// die stops every process started here, then exits with the message.
func die(format string, args ...any) {
	mu.Lock()
	cmds := make([]*exec.Cmd, 0, len(running))
	for c := range running {
		cmds = append(cmds, c)
	}
	mu.Unlock()
	for _, c := range cmds {
		stop(c)
	}
	log.Fatalf(format, args...)
}

var wrkRequests = regexp.MustCompile(`(\d+) requests in`)
var wrkRate = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)

func runWrk(bin, url string, d time.Duration) (requests int, rps float64) {
	out, err := exec.Command(bin, "-t1", "-c64", "-d"+strconv.Itoa(int(d.Seconds()))+"s", url).Output()
	if err != nil {
		die("wrk: %v", err)
	}
	m, r := wrkRequests.FindSubmatch(out), wrkRate.FindSubmatch(out)
	if m == nil || r == nil {
		die("wrk said %s", out)
	}
	requests, _ = strconv.Atoi(string(m[1]))
	rps, _ = strconv.ParseFloat(string(r[1]), 64)
	return requests, rps
}

// paced sends GETs at rate per second over 16 keep-alive connections for
// d and returns the p50 in µs, each request timed from its write to the
// end of its response.
func paced(addr string, rate int, d time.Duration) float64 {
	const conns = 16
	interval := time.Second * conns / time.Duration(rate)
	req := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now().Add(20 * time.Millisecond)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				die("%v", err)
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			var mine []time.Duration
			for due := start.Add(interval * time.Duration(c) / conns); ctx.Err() == nil; due = due.Add(interval) {
				time.Sleep(time.Until(due))
				sent := time.Now()
				if _, err := nc.Write(req); err != nil {
					die("%v", err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					die("%v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(sent))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return float64(lat[len(lat)/2].Microseconds())
}

// cpuMillis is the CPU time of a process and its children (nginx's
// worker), user and system, in milliseconds.
func cpuMillis(pid int) int64 {
	var total int64
	pids := []int{pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if f := statFields(p); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, p)
		}
	}
	for _, p := range pids {
		f := statFields(p)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += (u + s) * 10 // clock ticks of 10 ms
	}
	return total
}

// statFields are the fields of /proc/PID/stat after the command's name:
// state, ppid, … (utime is [11], stime [12]).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("%v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(url string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			die("%s never answered: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

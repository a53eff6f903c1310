package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/record"
)

// cut is one phase of the session's timeline: a stretch in which nothing
// changed — the same faults on, the same load.
type cut struct {
	Name   string
	From   time.Duration
	To     time.Duration
	Faults []FaultSpan
	Rate   float64 // the session's load in it; 0 when none ran
	Marks  []Mark
}

// timeline cuts the session into phases at each change, over the window
// that is replayable: from the first load to the last (or the whole
// session, when it sent none).
func (s *Session) timeline() (window [2]time.Duration, cuts []cut, err error) {
	s.mu.Lock()
	end := s.elapsed()
	var loads []LoadSpan
	for _, l := range s.loads {
		ll := *l
		if !ll.Done {
			ll.Off = end
		}
		loads = append(loads, ll)
	}
	marks := slices.Clone(s.marks)
	s.mu.Unlock()
	faults := s.Faults()

	window = [2]time.Duration{0, end}
	if len(loads) > 0 {
		window[0], window[1] = loads[0].On, loads[0].Off
		for _, l := range loads {
			window[1] = max(window[1], l.Off)
		}
	}
	round := func(d time.Duration) time.Duration { return d.Round(time.Second) }
	window[0], window[1] = round(window[0]), round(window[1])
	if window[1]-window[0] < time.Second {
		return window, nil, errors.New("nothing to keep yet: the session needs at least a second of load (load 50/s 30s) or of traffic")
	}
	points := []time.Duration{window[0], window[1]}
	add := func(d time.Duration) {
		if d = round(d); d > window[0] && d < window[1] {
			points = append(points, d)
		}
	}
	for _, f := range faults {
		add(f.On)
		if !f.Active() {
			add(f.Off)
		}
	}
	for _, l := range loads {
		add(l.On)
		add(l.Off)
	}
	slices.Sort(points)
	points = slices.Compact(points)
	for i := 0; i+1 < len(points); i++ {
		c := cut{From: points[i], To: points[i+1]}
		mid := (c.From + c.To) / 2
		for _, f := range faults {
			if round(f.On) <= mid && (f.Active() || round(f.Off) > mid) {
				c.Faults = append(c.Faults, f)
			}
		}
		for _, l := range loads {
			if round(l.On) <= mid && round(l.Off) > mid {
				c.Rate += l.Rate
			}
		}
		for _, m := range marks {
			if m.At >= c.From && (m.At < c.To || i+2 == len(points)) {
				c.Marks = append(c.Marks, m)
			}
		}
		cuts = append(cuts, c)
	}
	nameCuts(cuts)
	return window, cuts, nil
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_+-]+`)

// nameCuts names phases: baseline before the first fault, the faults'
// ids while they are on, recovery after; each name once.
func nameCuts(cuts []cut) {
	seen := map[string]int{}
	faulted := false
	for i := range cuts {
		var name string
		switch {
		case len(cuts[i].Faults) > 0:
			var ids []string
			seenID := map[string]int{}
			for _, f := range cuts[i].Faults {
				seenID[f.ID]++
			}
			for _, f := range cuts[i].Faults {
				if seenID[f.ID] > 1 {
					ids = append(ids, f.ID+"-"+f.Proxy) // the same id on two proxies
				} else {
					ids = append(ids, f.ID)
				}
			}
			name = unsafeName.ReplaceAllString(strings.ToLower(strings.Join(ids, "+")), "-")
			faulted = true
		case faulted:
			name = "recovery"
		default:
			name = "baseline"
		}
		seen[name]++
		if n := seen[name]; n > 1 {
			name += "-" + strconv.Itoa(n)
		}
		cuts[i].Name = name
	}
}

// Scenario writes the session as a scenario `resctl run` replays: its
// target and proxies, phases cut at each change with the faults placed in
// them, the load as it was sent, and SLAs proposed from what the session
// observed, commented as proposals.
func (s *Session) Scenario() ([]byte, error) {
	window, cuts, err := s.timeline()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	proxies := slices.Clone(s.proxies)
	var paths []string
	for _, l := range s.loads {
		if !slices.Contains(paths, l.Path) {
			paths = append(paths, l.Path)
		}
	}
	sentLoad := len(s.loads) > 0
	s.mu.Unlock()
	front := proxies[slices.IndexFunc(proxies, func(p harness.ProxyInfo) bool { return p.Name == s.opts.Front })]

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Saved by resctl chaos on %s from a session of %v.\n", s.start.UTC().Format(time.RFC3339), s.elapsed().Round(time.Second))
	w("# Phases are cut where the session changed something; the SLAs are\n# proposals from what it observed: read them before CI relies on them.\n")
	w("name: %s\n", yamlScalar("chaos-session-"+s.start.UTC().Format("20060102-150405")))
	w("seed: %d\n", s.opts.Seed)
	target := s.opts.Target
	if target == "" {
		target = front.Upstream
	}
	switch {
	case target == "builtin:demo":
		w("target:\n  builtin: demo\n")
	case strings.Contains(target, "://"):
		w("target:\n  url: %s\n", yamlScalar(target))
	default:
		w("target:\n  url: %s\n", yamlScalar("http://"+target))
	}
	protocol := front.Protocol
	w("proxy:\n  protocol: %s\n", protocol)
	w("%s", indent(s.opts.ProxyYAML[front.Name], "  "))
	var others []harness.ProxyInfo
	for _, p := range proxies {
		used := false
		for _, c := range cuts {
			used = used || slices.ContainsFunc(c.Faults, func(f FaultSpan) bool { return f.Proxy == p.Name })
		}
		if p.Name != front.Name && used {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		w("# The session's other proxies, each in front of what it fronted then.\nproxies:\n")
		for _, p := range others {
			w("  %s:\n    protocol: %s\n    upstream: %s\n", yamlScalar(p.Name), p.Protocol, yamlScalar(upstreamURL(p)))
			w("%s", indent(s.opts.ProxyYAML[p.Name], "    "))
		}
	}

	rate := 0.0
	for _, c := range cuts {
		rate = max(rate, c.Rate)
	}
	w("load:\n")
	if !sentLoad {
		rate = s.observedRate(front.Name, window)
		w("  # The session sent no load; this is the rate the proxy %s saw.\n", front.Name)
	}
	rate = math.Max(1, math.Round(rate))
	w("  rate: %s/s\n  timeout: %v\n", strconv.FormatFloat(rate, 'f', -1, 64), s.opts.LoadTimeout)
	if protocol == harness.ProtocolGRPC {
		w("  grpc:\n    call: %s\n", yamlScalar(s.opts.GRPCCall))
	} else {
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		w("  requests:\n")
		for _, p := range paths {
			w("    - {method: GET, path: %s}\n", yamlScalar(p))
		}
		if len(paths) > 1 {
			w("  # The session sent these paths one load at a time; the run sends them in turn.\n")
		}
	}

	w("phases:\n")
	for _, c := range cuts {
		for _, m := range c.Marks {
			w("  # mark at %s: %s\n", Clock(m.At), strings.ReplaceAll(m.Text, "\n", " "))
		}
		w("  - name: %s\n    duration: %v\n", yamlScalar(c.Name), c.To-c.From)
		switch {
		case c.Rate > 0 && math.Round(c.Rate) != rate:
			w("    rate: %s/s\n", strconv.FormatFloat(math.Max(1, math.Round(c.Rate)), 'f', -1, 64))
		case c.Rate == 0 && sentLoad:
			w("    # the session sent no load here: the run sends load.rate\n")
		}
		if len(c.Faults) > 0 {
			w("    faults:\n")
			for _, f := range c.Faults {
				params := cleanParams(f.Params)
				if f.Proxy != front.Name && !f.Runtime {
					params["proxy"] = f.Proxy
				}
				w("      - %s: %s\n", f.Kind, flowMap(params))
			}
		}
	}

	w("slas:\n")
	s.proposeSLAs(&b, cuts, sentLoad)
	w("output:\n  dir: resctl-out\n")
	return []byte(b.String()), nil
}

// indent puts prefix before every line of a YAML block.
func indent(block, prefix string) string {
	if strings.TrimSpace(block) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(block, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func upstreamURL(p harness.ProxyInfo) string {
	if strings.Contains(p.Upstream, "://") || p.Protocol == harness.ProtocolTCP {
		return p.Upstream
	}
	return "http://" + p.Upstream
}

// observedRate is the front proxy's mean requests per second over the
// window, from the traffic the session saw.
func (s *Session) observedRate(proxy string, window [2]time.Duration) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.traffic[proxy]
	if sr == nil || len(sr.points) == 0 {
		return 1
	}
	var n uint64
	for _, p := range sr.points {
		n += p.Requests
	}
	secs := max(int64(len(sr.points)), sr.points[len(sr.points)-1].S-sr.points[0].S+1)
	return float64(n) / float64(secs)
}

// proposeSLAs writes SLAs from what the session measured: the healthy
// baseline before the first fault, and a recovery after the last. They
// read p90 rather than p99: over a second of a modest load, p99 is the
// slowest request or two, which a busy machine's pause decides, not the
// service.
func (s *Session) proposeSLAs(b *strings.Builder, cuts []cut, sentLoad bool) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	var base *cut
	for i := range cuts {
		if len(cuts[i].Faults) > 0 {
			break
		}
		if cuts[i].Rate > 0 || !sentLoad {
			base = &cuts[i]
		}
	}
	var sum record.Summary
	if base != nil && sentLoad {
		sum = s.rec.Window(base.From, base.To)
	}
	healthy := "success_rate >= 99%"
	if sum.Requests > 0 && sum.SuccessRate() < 0.9 {
		// A baseline that was not healthy is no yardstick.
		w("  # no SLAs proposed: in %s, before the first fault, only %.1f%% of the session's requests succeeded;\n", base.Name, sum.SuccessRate()*100)
		w("  # check the load's path (load RATE DURATION PATH) and the target, then write the SLAs by hand\n  []\n")
		return
	}
	if sum.Requests > 0 {
		// One decimal, rounded down, and never 100%: one lost request in
		// a replay is not a failed baseline.
		sr := min(math.Floor(sum.SuccessRate()*1000)/10, 99.9)
		healthy = fmt.Sprintf("success_rate >= %s%% and p90 < %v", strconv.FormatFloat(sr, 'f', -1, 64), niceBound(sum.Latency.P90))
		w("  # proposed: in %s the session saw %.2f%% success, p50 %v, p90 %v, p99 %v (%d requests);\n",
			base.Name, sum.SuccessRate()*100, ms(sum.Latency.P50), ms(sum.Latency.P90), ms(sum.Latency.P99), sum.Requests)
		w("  # the bound is twice its p90 (at least 250ms), rounded up, so a busy machine does not fail it.\n")
		w("  - name: healthy before the first fault\n    during: %s\n    expect: %s\n", yamlScalar(base.Name), healthy)
	} else if base != nil {
		w("  # proposed: no load of the session measured a baseline; %s is a starting point.\n", healthy)
		w("  - name: healthy before the first fault\n    during: %s\n    expect: %s\n", yamlScalar(base.Name), healthy)
	}
	last := -1
	for i := range cuts {
		if len(cuts[i].Faults) > 0 {
			last = i
		}
	}
	if last < 0 {
		if base == nil {
			w("  []\n")
		}
		return
	}
	var room time.Duration
	if last+1 < len(cuts) {
		room = cuts[len(cuts)-1].To - cuts[last+1].From
	}
	if last+1 == len(cuts) {
		w("  # no recovery check: a fault was still on when the session's window ended\n")
		return
	}
	if room < 2*time.Second {
		w("  # no recovery check: the session ended %v after its last fault, too soon to judge one\n", room)
		return
	}
	hold := min(max((room/4).Round(time.Second), time.Second), 3*time.Second)
	seen := "it did not recover while the session went on"
	if sentLoad && sum.Requests > 0 {
		if d, ok := s.recovered(cuts[last].To, cuts[len(cuts)-1].To, hold, sum); ok {
			seen = fmt.Sprintf("the session saw it recover %v after the fault", d)
		}
	}
	w("  # proposed: back to the baseline, held %v, within what the recovery phase leaves room for; %s\n", hold, seen)
	w("  - name: recovers after the last fault\n    expect: recovery_time(%s, hold=%v) <= %v\n", healthy, hold, room-hold)
}

// recovered is how long after from the session's load was healthy again —
// success and p90 as the proposed baseline check — for hold seconds in a
// row, looking no further than to.
func (s *Session) recovered(from, to, hold time.Duration, base record.Summary) (time.Duration, bool) {
	sr := min(math.Floor(base.SuccessRate()*1000)/1000, 0.999)
	bound := niceBound(base.Latency.P90)
	run := time.Duration(0)
	for at := from; at+time.Second <= to; at += time.Second {
		sec := s.rec.Window(at, at+time.Second)
		if sec.Requests > 0 && sec.SuccessRate() >= sr && sec.Latency.P90 < bound {
			run += time.Second
			if run >= hold {
				return at + time.Second - run - from, true
			}
		} else {
			run = 0
		}
	}
	return 0, false
}

func ms(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

// niceBound is a bound with room over an observed d: twice it, at least
// 250 ms (a replay on a busy machine runs slower than the session did),
// rounded up to 1, 2 or 5 times a power of ten milliseconds, as a person
// would write it.
func niceBound(d time.Duration) time.Duration {
	ms := math.Max(2*float64(d)/float64(time.Millisecond), 250)
	p := math.Pow(10, math.Floor(math.Log10(ms)))
	for _, m := range []float64{1, 2, 5, 10} {
		if ms <= m*p+1e-9 {
			return time.Duration(m*p) * time.Millisecond
		}
	}
	return time.Duration(10*p) * time.Millisecond
}

// cleanParams drops parameters left at their zero value, so a saved
// fault reads as it was typed.
func cleanParams(p map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range p {
		if v == nil || v == "0s" {
			continue
		}
		rv := reflect.ValueOf(v)
		if rv.IsZero() || ((rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.Len() == 0) {
			continue
		}
		out[k] = v
	}
	return out
}

// flowMap writes params as a YAML flow map, keys sorted.
func flowMap(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + yamlValueText(p[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func yamlValueText(v any) string {
	switch x := v.(type) {
	case string:
		return yamlScalar(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int, int64, bool:
		return fmt.Sprint(x)
	}
	// Maps and lists as JSON, which YAML reads.
	raw, _ := json.Marshal(v)
	return string(raw)
}

var plainScalar = regexp.MustCompile(`^[A-Za-z0-9_./][A-Za-z0-9_./%+-]*$`)

// yamlScalar writes a string plain where YAML reads it back as the same
// string, quoted otherwise.
func yamlScalar(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "~", "":
		return strconv.Quote(s)
	}
	if plainScalar.MatchString(s) {
		if _, err := strconv.ParseFloat(s, 64); err != nil || strings.HasSuffix(s, "%") {
			return s
		}
	}
	return strconv.Quote(s)
}

// Save writes the scenario to path.
func (s *Session) Save(path string) error {
	doc, err := s.Scenario()
	if err != nil {
		return err
	}
	return writeFile(path, doc)
}

// writeFile writes atomically: a reader never sees half a file.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

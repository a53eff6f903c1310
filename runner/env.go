package runner

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/scrape"
	"github.com/resctl/resctl/verify"
)

// runEnv is what SLAs are evaluated against: the recording's load series,
// the scraped series and the states of faults and guards, for a finished
// run or, while it runs, for the part recorded so far.
type runEnv struct {
	rec    *record.Recorder
	snap   *record.Recording // nil while the run is going on
	spans  []record.PhaseSpan
	runEnd time.Duration // where the run ended (or "now", while it runs)
	series []scrape.Series
	states map[stateKey][]stateChange
	// windows are windows named like phases that are not phases: a
	// process fault's, from its first action to the end of its effect.
	windows map[string]verify.Window
	// initial is what a stateful thing is in before its first change,
	// where it differs from initialStates (a policy that starts open).
	initial map[stateKey]string
	// missing, when set, says why scraped series and states are not
	// here (a report of load results alone): SLAs that read them are not
	// evaluated, rather than failed for want of data.
	missing string
	// served, when set, names every series a source served, kept or not
	// (scrape.Scraper.Names); without it, the names of series are those
	// kept.
	served func(source string) []string

	mu    sync.Mutex
	cache map[verify.Window]record.Summary
}

type stateKey struct{ kind, name string }

// stateChange is a state entered at an instant.
type stateChange struct {
	at    time.Duration
	state string
}

// initialStates are what stateful things are in before their first change.
var initialStates = map[string]string{"fault": "off", "breaker": "closed"}

var _ verify.FineEnv = (*runEnv)(nil)

func newRunEnv(rec *record.Recorder, snap *record.Recording, spans []record.PhaseSpan, runEnd time.Duration, series []scrape.Series, states map[stateKey][]stateChange) *runEnv {
	for _, ch := range states {
		sort.SliceStable(ch, func(i, j int) bool { return ch[i].at < ch[j].at })
	}
	return &runEnv{rec: rec, snap: snap, spans: spans, runEnd: runEnd, series: series, states: states, cache: map[verify.Window]record.Summary{}}
}

func (e *runEnv) Run() verify.Window { return verify.Window{From: 0, To: e.runEnd} }

func (e *runEnv) Phase(name string) (verify.Window, bool) {
	for _, s := range e.spans {
		if s.Name == name {
			return verify.Window{From: s.Start, To: min(s.End, e.runEnd)}, true
		}
	}
	w, ok := e.windows[name]
	return w, ok
}

func (e *runEnv) Step() time.Duration { return time.Second }

// FineStep implements verify.FineEnv: the recording counts requests by
// the tenth of a second.
func (e *runEnv) FineStep() time.Duration { return record.SliceStep }

// FineLoad implements verify.FineEnv.
func (e *runEnv) FineLoad(name string, w verify.Window) (float64, bool) {
	c := e.rec.Slice(w.From, w.To)
	s := record.Summary{Counts: record.Counts{Requests: c.Requests, Successes: c.Requests - c.Errors, Errors: c.Errors, Fallbacks: c.Fallbacks}}
	return loadValue(s, (w.To - w.From).Seconds(), name)
}

// summary returns the load summary of w: a phase's exact aggregate (results
// attributed to it by the schedule) or the run's total when w is exactly
// that, a precomputed second, or a merge of the seconds inside w.
func (e *runEnv) summary(w verify.Window) record.Summary {
	if e.snap != nil {
		for i, s := range e.spans {
			if w.From == s.Start && w.To == min(s.End, e.runEnd) {
				return e.snap.PhaseStats[i]
			}
		}
		if w.From == 0 && w.To == e.runEnd {
			return e.snap.Total
		}
		if w.From%time.Second == 0 && w.To-w.From == time.Second {
			if i := int(w.From / time.Second); i < len(e.snap.Seconds) {
				return e.snap.Seconds[i]
			}
			return record.Summary{}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.cache[w]; ok {
		return s
	}
	s := e.rec.Window(w.From, w.To)
	e.cache[w] = s
	return s
}

// Load implements verify.RunEnv.
func (e *runEnv) Load(name string, w verify.Window) (float64, bool) {
	return loadValue(e.summary(w), (w.To - w.From).Seconds(), name)
}

// loadValue is a load series of a summary over a window of the given
// length, in the SLA language's canonical units.
func loadValue(s record.Summary, seconds float64, name string) (float64, bool) {
	has := s.Requests > 0
	switch name {
	case "requests":
		return float64(s.Requests), true
	case "rps":
		return float64(s.Requests) / seconds, seconds > 0
	case "success_rate":
		return s.SuccessRate(), has
	case "error_rate":
		return s.ErrorRate(), has
	case "fallback_rate":
		return s.FallbackRate(), has
	case "upstream_success_rate":
		return s.UpstreamSuccessRate(), has
	case "dropped":
		return float64(s.Dropped), true
	}
	l := s.Latency
	if rest, ok := strings.CutPrefix(name, "service_"); ok {
		// Service times are kept per phase and for the run, not per
		// second: a window of seconds has none.
		l, name, has = s.Service, rest, has && s.Service != (record.Latency{})
	}
	if rest, ok := strings.CutPrefix(name, "lag_"); ok {
		l, name, has = s.Lag, rest, has && s.Lag != (record.Latency{})
	}
	var d time.Duration
	switch name {
	case "p50":
		d = l.P50
	case "p90":
		d = l.P90
	case "p95":
		d = l.P95
	case "p99":
		d = l.P99
	case "p999":
		d = l.P999
	case "min":
		d = l.Min
	case "mean":
		d = l.Mean
	case "max":
		d = l.Max
	default:
		return 0, false
	}
	return d.Seconds(), has
}

// servedNames are the names of the series source served.
func (e *runEnv) servedNames(source string) []string {
	if e.served != nil {
		return e.served(source)
	}
	var names []string
	for _, s := range e.series {
		if s.Source == source && !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	return names
}

// Series implements verify.RunEnv.
func (e *runEnv) Series(sel verify.Selector) []verify.Series {
	var out []verify.Series
	for _, s := range e.series {
		if !sel.Matches(s.Source, s.Name, s.Labels) {
			continue
		}
		pts := make([]verify.Point, len(s.Points))
		for i, p := range s.Points {
			pts[i] = verify.Point{T: p.T, V: p.V}
		}
		out = append(out, verify.Series{Labels: s.Labels, Points: pts})
	}
	return out
}

// State implements verify.RunEnv.
func (e *runEnv) State(kind, name string, t time.Duration) (string, bool) {
	ch, ok := e.states[stateKey{kind, name}]
	if !ok {
		return "", false
	}
	state, ok := e.initial[stateKey{kind, name}]
	if !ok {
		state = initialStates[kind]
	}
	for _, c := range ch {
		if c.at > t {
			break
		}
		state = c.state
	}
	return state, true
}

// StateChanges implements verify.RunEnv.
func (e *runEnv) StateChanges(kind, name string) []time.Duration {
	var out []time.Duration
	for _, c := range e.states[stateKey{kind, name}] {
		out = append(out, c.at)
	}
	return slices.Compact(out)
}

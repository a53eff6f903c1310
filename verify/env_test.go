package verify_test

import (
	"math"
	"slices"
	"time"

	"github.com/resctl/resctl/verify"
)

// tableEnv is a RunEnv built from tables, with simple, exact aggregation
// rules so that tests can state ground truth:
//
//   - load comes in one bucket per step from 0; a window covers the buckets
//     from floor(From/step) to ceil(To/step), exclusive, so a window
//     aligned to the step covers exactly its buckets;
//   - requests is the sum of a window's requests, error_rate and
//     success_rate the ratio of its sums, rps the requests per second of
//     the window, p99 the largest bucket p99 among buckets with requests;
//     every other load series has no data;
//   - states hold their initial value until their first change.
type tableEnv struct {
	run     verify.Window
	phases  map[string]verify.Window
	step    time.Duration
	buckets []bucket
	scraped []scrapedSeries
	states  map[verify.StateRef]stateHistory
}

type bucket struct {
	requests, errors float64
	p99              time.Duration
}

type scrapedSeries struct {
	source, metric string
	labels         map[string]string
	points         []verify.Point
}

type stateHistory struct {
	initial string
	changes []stateChange
}

type stateChange struct {
	at    time.Duration
	state string
}

var _ verify.RunEnv = (*tableEnv)(nil)

func (e *tableEnv) Run() verify.Window { return e.run }

func (e *tableEnv) Phase(name string) (verify.Window, bool) {
	w, ok := e.phases[name]
	return w, ok
}

func (e *tableEnv) Step() time.Duration { return e.step }

func (e *tableEnv) Load(name string, w verify.Window) (float64, bool) {
	from := int(w.From / e.step)
	to := min(int((w.To+e.step-1)/e.step), len(e.buckets))
	var requests, errors float64
	var p99 time.Duration
	for _, b := range e.buckets[min(max(from, 0), to):to] {
		requests += b.requests
		errors += b.errors
		if b.requests > 0 {
			p99 = max(p99, b.p99)
		}
	}
	switch name {
	case "requests":
		return requests, true
	case "rps":
		return requests / (w.To - w.From).Seconds(), w.To > w.From
	case "error_rate":
		return errors / requests, requests > 0
	case "success_rate":
		return 1 - errors/requests, requests > 0
	case "p99":
		return p99.Seconds(), requests > 0
	}
	return math.NaN(), false
}

func (e *tableEnv) Series(sel verify.Selector) []verify.Series {
	var out []verify.Series
	for _, s := range e.scraped {
		if sel.Matches(s.source, s.metric, s.labels) {
			out = append(out, verify.Series{Labels: s.labels, Points: s.points})
		}
	}
	return out
}

func (e *tableEnv) State(kind, name string, t time.Duration) (string, bool) {
	h, ok := e.states[verify.StateRef{Kind: kind, Name: name}]
	if !ok {
		return "", false
	}
	state := h.initial
	for _, c := range h.changes {
		if c.at > t {
			break
		}
		state = c.state
	}
	return state, true
}

func (e *tableEnv) StateChanges(kind, name string) []time.Duration {
	var out []time.Duration
	for _, c := range e.states[verify.StateRef{Kind: kind, Name: name}].changes {
		out = append(out, c.at)
	}
	return out
}

// sec is n seconds; ms n milliseconds.
func sec(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }
func ms(n float64) time.Duration  { return time.Duration(n * float64(time.Millisecond)) }

// threePhases returns a 30s run of three 10s phases, baseline, fault and
// recovery, with 100 requests a second at 10ms p99 and no errors.
func threePhases() *tableEnv {
	e := &tableEnv{
		run: verify.Window{From: 0, To: sec(30)},
		phases: map[string]verify.Window{
			"baseline": {From: 0, To: sec(10)},
			"fault":    {From: sec(10), To: sec(20)},
			"recovery": {From: sec(20), To: sec(30)},
		},
		step:   time.Second,
		states: map[verify.StateRef]stateHistory{},
	}
	for range 30 {
		e.buckets = append(e.buckets, bucket{requests: 100, p99: ms(10)})
	}
	return e
}

// failing sets the error share of the buckets for the given seconds.
func (e *tableEnv) failing(share float64, seconds ...int) *tableEnv {
	for _, s := range seconds {
		e.buckets[s].errors = share * e.buckets[s].requests
	}
	return e
}

// seconds returns the integers in [from, to).
func seconds(from, to int) []int {
	var out []int
	for s := from; s < to; s++ {
		out = append(out, s)
	}
	return out
}

// gauge returns a series with one sample a second from 0, with values vs.
func gauge(source, metric string, labels map[string]string, vs ...float64) scrapedSeries {
	s := scrapedSeries{source: source, metric: metric, labels: labels}
	for i, v := range vs {
		s.points = append(s.points, verify.Point{T: sec(float64(i)), V: v})
	}
	return s
}

// repeat returns v n times.
func repeat(v float64, n int) []float64 {
	return slices.Repeat([]float64{v}, n)
}

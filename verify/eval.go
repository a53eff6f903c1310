package verify

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Window is a stretch of a run, as offsets from its start.
type Window struct{ From, To time.Duration }

// stateInstant is when states are read for the window: as they stand at
// its end, which, like every window, excludes its end — a fault switched
// off as its phase ends was still on during it.
func (w Window) stateInstant() time.Duration {
	if w.To > w.From {
		return w.To - 1
	}
	return w.To
}

// Point is one scraped sample, at offset T from the run's start.
type Point struct {
	T time.Duration
	V float64
}

// Series is one scraped series: its labels and every sample of the run,
// sorted by T.
type Series struct {
	Labels map[string]string // histogram_quantile reads "le"
	Points []Point
}

// RunEnv supplies everything an expression can refer to, for a whole run.
// The runner backs it with its recording, scrapes and state history; tests
// with tables. Methods are called from one goroutine per evaluation, and
// each Series or StateChanges result is read but never modified.
type RunEnv interface {
	// Run returns the whole run's window.
	Run() Window
	// Phase returns a phase's window; ok is false for an unknown name.
	Phase(name string) (w Window, ok bool)
	// Step is the resolution of load series, and so of time_to and
	// recovery_time: one second in resctl.
	Step() time.Duration
	// Load returns a load series aggregated over w, in canonical units.
	// w need not be aligned to Step. ok is false, or the value NaN, when
	// there is no data, for instance p99 over a window without requests.
	Load(name string, w Window) (v float64, ok bool)
	// Series returns every scraped series sel matches (see
	// Selector.Matches), nil if none.
	Series(sel Selector) []Series
	// State returns the state of a stateful thing at t ("open",
	// "on", …); ok is false if no such thing exists.
	State(kind, name string, t time.Duration) (state string, ok bool)
	// StateChanges returns the instants at which a state changed, sorted,
	// so conditions on states are timed exactly rather than to the step.
	StateChanges(kind, name string) []time.Duration
}

// FineEnv is a RunEnv that also keeps the request counts of the load at a
// step finer than Step (resctl: a tenth of a second). time_to then times a
// condition that reads only rates and ratios of the load (rps,
// success_rate, error_rate, fallback_rate, upstream_success_rate) over the
// current window, states and values during a phase at FineStep: at each
// instant its condition sees the shortest window of whole fine steps that
// holds MinFineRequests requests, and never more than Step, so a detection
// is placed as finely as the traffic allows and, below a rate of
// MinFineRequests a step, is judged over a whole step as before. Near the
// run's end, where fewer than MinFineRequests requests remain, instants
// are not judged at all. Conditions
// that read latencies, counts or scraped series are timed to Step, as are
// recovery_time's.
type FineEnv interface {
	RunEnv
	// FineStep divides Step.
	FineStep() time.Duration
	// FineLoad is Load over w, whose ends are multiples of FineStep, for
	// the series above and "requests".
	FineLoad(name string, w Window) (v float64, ok bool)
}

// MinFineRequests is how many requests a window shorter than Step must
// hold for time_to to judge its condition over it; see FineEnv.
const MinFineRequests = 20

// Scope is where an SLA is checked.
type Scope struct {
	// Window is the SLA's window: its during phase, or the run. Values
	// outside time_to and recovery_time are read over it, states at its
	// end.
	Window Window
	// DetectFrom is the window time_to counts from (from its From) when
	// the call has no from: — the SLA's phase, or the first phase with
	// faults.
	DetectFrom Window
	// RecoverFrom is the window recovery_time counts from (from its To)
	// when the call has no from:.
	RecoverFrom Window
}

// The values of Result.Kind.
const (
	ResultCheck        = "check"         // the expression has no timing function
	ResultTimeTo       = "time_to"       // the first timing function is time_to
	ResultRecoveryTime = "recovery_time" // the first timing function is recovery_time
)

// Result is the outcome of evaluating an expression.
type Result struct {
	Passed bool
	// Observed is a human summary of every value the expression read, in
	// order of appearance: "success_rate=99.82%, p99=121ms",
	// "time_to=1.2s", "recovery_time=never", `breaker("payments")=open`.
	Observed string
	// Values holds each numeric value that had data, in canonical units,
	// keyed by its label in Observed.
	Values map[string]float64
	// Kind is ResultCheck, or the name of the expression's first timing
	// function, whose instant At is.
	Kind string
	// At is when the first timing function's event happened — detection
	// for time_to, the start of the held recovery for recovery_time — or
	// nil if it never did or there is no timing function.
	At *time.Duration
}

var (
	// ErrNoData is wrapped by the error Check returns when a value
	// has no data, so callers can tell "could not judge" from a failed
	// check with errors.Is.
	ErrNoData = errors.New("no data")
	// ErrUnknownName is wrapped by the error Check returns when the
	// expression names a phase or state the RunEnv does not know; a
	// validator using CheckNames catches these before a run.
	ErrUnknownName = errors.New("unknown name")
)

// Check evaluates the expression for one SLA of a run.
//
// Outside time_to and recovery_time, load series are read over
// sc.Window, a bare selector is its latest sample at the window's end,
// functions aggregate over the window, and states are read as they stand
// at its end (a change at exactly Window.To belongs to the next window).
// Every value is read, even where and/or could short-circuit, so that
// Observed always describes the whole SLA. If one has no data the SLA
// cannot be judged: Check returns an error wrapping ErrNoData that names
// them, with Passed false and Observed still listing what was known
// ("p99=n/a" for the rest).
//
// A timing function scans instants, one Step apart, plus every change of a
// state its condition reads; at instant t its condition sees the window
// [t, t+Step), and an instant where a value has no data counts as one
// where the condition does not hold. An SLA whose timing function never
// sees its event fails, whatever the rest of the expression says.
//
// Arithmetic follows IEEE-754, so a division by zero yields ±Inf or NaN
// rather than an error, and any comparison with NaN is false.
func (e *Expr) Check(env RunEnv, sc Scope) (Result, error) {
	res := Result{Values: map[string]float64{}, Kind: ResultCheck}
	if e.first >= 0 {
		res.Kind = e.leaves[e.first].fn.name
	}
	ev, err := newEvaluator(e, env, sc)
	if err != nil {
		return res, err
	}

	stateAt := sc.Window.stateInstant()
	var observed, missing []string
	never := false
	for i, l := range e.leaves {
		if l.scope != 0 {
			continue
		}
		v := ev.leaf(i, sc.Window, stateAt)
		text := ""
		switch {
		case !v.ok:
			text = "n/a"
			missing = append(missing, l.label)
		case l.op == leafState:
			text = v.s
		case l.op == leafTiming && math.IsInf(v.v, 1):
			text = "never"
			never = true
		default:
			text = FormatValue(l.kind, v.v)
			res.Values[l.label] = v.v
		}
		observed = append(observed, l.label+"="+text)
	}
	res.Observed = strings.Join(observed, ", ")
	if e.first >= 0 && ev.found[e.first] {
		at := ev.at[e.first]
		res.At = &at
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("%w for %s", ErrNoData, strings.Join(missing, ", "))
	}
	res.Passed = ev.cond(e.root, sc.Window, stateAt) == triTrue && !never
	return res, nil
}

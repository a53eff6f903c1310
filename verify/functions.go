package verify

import (
	"slices"
	"strings"
)

// fnClass groups functions by what their arguments are and how they are
// evaluated.
type fnClass int

const (
	fnAggregate fnClass = iota + 1 // one selector, aggregated over a window
	fnQuantile                     // histogram_quantile(q, selector)
	fnTiming                       // time_to, recovery_time: a condition scanned over instants
	fnState                        // a stateful thing's state at an instant
)

// aggregation is what an fnAggregate function computes over a window.
type aggregation int

const (
	aggRate aggregation = iota + 1
	aggIncrease
	aggAvg
	aggMin
	aggMax
	aggLast
	aggFirst
)

// function describes one callable name of the language.
type function struct {
	name  string
	class fnClass
	agg   aggregation // fnAggregate only
	arity int         // positional arguments
	named []string    // accepted named arguments, in the order usage lists them
	// stateKind is the kind passed to RunEnv.State for fnState functions
	// with a fixed kind; "" for state(kind, name).
	stateKind string
	// states are the values a state of this function can take, for
	// checking literals (the first is the one examples use); nil means any
	// name.
	states []string
	usage  string // an example call, quoted in arity errors
}

// functions maps every function name to its description.
var functions = func() map[string]*function {
	list := []function{
		{name: "rate", class: fnAggregate, agg: aggRate, arity: 1, usage: "rate(target:http_requests_total)"},
		{name: "increase", class: fnAggregate, agg: aggIncrease, arity: 1, usage: "increase(target:http_requests_total)"},
		{name: "avg", class: fnAggregate, agg: aggAvg, arity: 1, usage: "avg(target:go_goroutines)"},
		{name: "min", class: fnAggregate, agg: aggMin, arity: 1, usage: "min(target:go_goroutines)"},
		{name: "max", class: fnAggregate, agg: aggMax, arity: 1, usage: "max(target:go_goroutines)"},
		{name: "last", class: fnAggregate, agg: aggLast, arity: 1, usage: "last(target:go_goroutines)"},
		{name: "first", class: fnAggregate, agg: aggFirst, arity: 1, usage: "first(target:go_goroutines)"},
		{name: "histogram_quantile", class: fnQuantile, arity: 2, usage: "histogram_quantile(0.99, target:http_request_duration_seconds)"},
		{name: "time_to", class: fnTiming, arity: 1, named: []string{"from"}, usage: "time_to(error_rate > 5%, from: fault)"},
		{name: "recovery_time", class: fnTiming, arity: 1, named: []string{"hold", "from"}, usage: "recovery_time(error_rate < 1%, hold: 5s, from: fault)"},
		{name: "breaker", class: fnState, arity: 1, stateKind: "breaker", states: []string{"open", "half_open", "closed"}, usage: `breaker("payments")`},
		{name: "fault", class: fnState, arity: 1, stateKind: "fault", states: []string{"on", "off"}, usage: `fault("latency-1")`},
		{name: "process", class: fnState, arity: 1, stateKind: "process", states: []string{"ready", "down", "paused", "starting"}, usage: `process("target")`},
		{name: "state", class: fnState, arity: 2, usage: `state("pool", "db")`},
	}
	m := make(map[string]*function, len(list))
	for i := range list {
		m[list[i].name] = &list[i]
	}
	return m
}()

// functionNames is functions' keys, sorted: the candidates for "did you
// mean" on an unknown function.
var functionNames = func() []string {
	names := make([]string, 0, len(functions))
	for name := range functions {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// takes describes f's arguments for arity messages: "1 argument".
func (f *function) takes() string {
	if f.arity == 1 {
		return "1 argument"
	}
	return "2 arguments"
}

// namedList describes f's named arguments for messages: "hold and from".
func (f *function) namedList() string {
	return strings.Join(f.named, " and ")
}

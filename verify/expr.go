package verify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Expr is a parsed and type-checked SLA expression. It is immutable, so one
// Expr may be evaluated concurrently against many windows and runs.
type Expr struct {
	src       string
	root      *enode
	idents    []string   // distinct load series, in order of first appearance
	leaves    []*leaf    // in order of first appearance
	sels      []Selector // distinct, as passed to RunEnv.Series; leaf.sel indexes it
	phases    []string   // distinct phase names; window.phase and timingSpec.from index it
	phaseRefs []nameRef  // every phase name as written
	stateRefs []stateRef // every state name as written
	first     int        // the first timing leaf, or -1
}

// PhaseRun is the phase name that stands for the whole run, as in
// p99 during run or time_to(…, from: run). A scenario cannot define a
// phase of that name and refer to it.
const PhaseRun = "run"

// String returns the source exactly as given to Parse, so reports quote the
// SLA the way its author wrote it.
func (e *Expr) String() string { return e.src }

// Idents returns the distinct load series the expression uses, sorted.
// Runners use it to know which series they must collect.
func (e *Expr) Idents() []string {
	names := slices.Clone(e.idents)
	slices.Sort(names)
	return names
}

// Phases returns the distinct phase names the expression refers to with
// during or from:, sorted, without PhaseRun. A scenario validator checks
// that each exists; CheckNames does that with columns.
func (e *Expr) Phases() []string {
	var names []string
	for _, p := range e.phases {
		if p != PhaseRun {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	return names
}

// Selectors returns the distinct scraped selectors the expression reads,
// sorted by their text, exactly as it will pass them to RunEnv.Series: a
// histogram_quantile asks for the histogram's _bucket series. Runners use
// it to decide what to scrape, validators to check the sources exist.
func (e *Expr) Selectors() []Selector {
	out := make([]Selector, len(e.sels))
	for i, s := range e.sels {
		out[i] = s.clone()
	}
	slices.SortFunc(out, func(a, b Selector) int { return cmp.Compare(a.String(), b.String()) })
	return out
}

// StateRef names a stateful thing an expression reads: Kind is "breaker"
// for breaker("x"), "fault" for fault("x"), or the first argument of
// state(kind, name).
type StateRef struct {
	Kind, Name string
}

// States returns the distinct states the expression reads, sorted by kind
// then name, so a validator can check that each breaker and fault exists.
func (e *Expr) States() []StateRef {
	var out []StateRef
	for _, r := range e.stateRefs {
		s := StateRef{Kind: r.kind, Name: r.name}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b StateRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Known lists the names a scenario defines, for CheckNames.
type Known struct {
	Phases []string
	// States lists, for each kind of stateful thing ("breaker", "fault",
	// or a kind used with state(kind, name)), the names that exist. Kinds
	// absent from the map are not checked.
	States map[string][]string
}

// CheckNames reports the first phase or state name, in source order, that
// k does not list, as a *SyntaxError at its column with a "did you mean"
// when one is close: Parse cannot know a scenario's names, and a typo in
// one would otherwise surface only when the run is over. PhaseRun is always
// known.
func (e *Expr) CheckNames(k Known) error {
	type problem struct {
		pos int
		msg string
	}
	var first *problem
	note := func(pos int, msg string) {
		if first == nil || pos < first.pos {
			first = &problem{pos, msg}
		}
	}
	for _, r := range e.phaseRefs {
		if r.name != PhaseRun && !slices.Contains(k.Phases, r.name) {
			note(r.pos, unknownName("phase", r.name, k.Phases))
		}
	}
	for _, r := range e.stateRefs {
		names, checked := k.States[r.kind]
		if checked && !slices.Contains(names, r.name) {
			note(r.pos, unknownName(r.kind, r.name, names))
		}
	}
	if first == nil {
		return nil
	}
	return errAt(first.pos, "%s", first.msg)
}

// unknownName phrases a CheckNames problem.
func unknownName(what, name string, known []string) string {
	if s, ok := suggest(name, known); ok {
		return fmt.Sprintf("no %s named %q (did you mean %q?)", what, name, s)
	}
	if len(known) == 0 {
		return fmt.Sprintf("no %s named %q; there are none", what, name)
	}
	return fmt.Sprintf("no %s named %q; known: %s", what, name, strings.Join(known, ", "))
}

package verify

import (
	"math"
	"time"
)

// Comparison is one comparison of an SLA's condition, explained for a
// report: what it read, the limit it held that to, whether it held, and
// at which steps of the SLA's window it did not. A report names a failed
// SLA's broken comparisons in words and draws each limit on the chart of
// the series it reads.
type Comparison struct {
	// Subject is the value compared, labelled as in Result.Observed:
	// "p99", "avg(target:go_goroutines)", "time_to", `breaker("x")`.
	// A subject that is arithmetic over several values lists their
	// labels joined by " · ".
	Subject string
	// Op is the comparison as the subject reads it: "<", "<=", ">",
	// ">=", "==" or "!=". A comparison written limit first (100ms > p99)
	// is turned round (p99 < 100ms).
	Op string
	// Kind is the subject's kind, for formatting Value and Limit.
	Kind Kind
	// Value is the subject over the SLA's window, in canonical units; ok
	// false when it had no data, was never reached (a timing function
	// whose event did not happen: +Inf), or is read at each instant of a
	// timing function (Within set).
	Value   float64
	ValueOK bool
	// ValueState is the state a state subject was in at the window's end.
	ValueState string
	// Limit is the other side, in canonical units; LimitOK is false when
	// it varies with the window (it reads a value over the current window)
	// or had no data. LimitState is the state compared with, for states.
	Limit      float64
	LimitOK    bool
	LimitState string
	// Held says whether the comparison held over the SLA's window;
	// false for one inside a timing function (Within set).
	Held bool
	// Load is the load series the subject is ("p99"), when it is one read
	// over the current window; Selector is the scraped selector it reads,
	// with Func the function applied ("" for a bare selector, "rate",
	// "avg", …); State the state it reads.
	Load     string
	Selector *Selector
	Func     string
	State    *StateRef
	// Within names the timing function whose condition holds this
	// comparison (time_to, recovery_time); empty at the top level.
	Within string
	// Since is, for a timing subject (time_to < 2s), the instant it
	// counted from: the deadline is Since + Limit.
	Since   time.Duration
	IsTimed bool
	// Breaches are the steps of the SLA's window at which a top-level
	// comparison that did not hold did not hold either, adjacent steps
	// merged. Only comparisons whose subject means the same over one step
	// as over the window (a percentile, a rate, a gauge's value) and whose
	// limit does not vary have them.
	Breaches []Window
}

// Explain evaluates the expression as Check does and returns each of its
// comparisons, in the order written, with what it read and where it did
// not hold. It costs one Check plus, for a comparison that failed, one
// evaluation per step of the SLA's window.
func (e *Expr) Explain(env RunEnv, sc Scope) ([]Comparison, error) {
	ev, err := newEvaluator(e, env, sc)
	if err != nil {
		return nil, err
	}
	stateAt := sc.Window.stateInstant()
	for i, l := range e.leaves {
		if l.scope == 0 {
			ev.leaf(i, sc.Window, stateAt)
		}
	}
	x := explainer{e: e, ev: ev, env: env, sc: sc, stateAt: stateAt}
	x.walk(e.root, "")
	return x.out, nil
}

type explainer struct {
	e       *Expr
	ev      *evaluator
	env     RunEnv
	sc      Scope
	stateAt time.Duration
	stepper *evaluator
	out     []Comparison
}

var opText = map[eop]string{eLT: "<", eLE: "<=", eGT: ">", eGE: ">=", eEQ: "==", eNE: "!=", eStateEQ: "==", eStateNE: "!="}

// mirrored is the operator read from its other side: 100ms > p99 is
// p99 < 100ms.
var mirrored = map[eop]eop{eLT: eGT, eLE: eGE, eGT: eLT, eGE: eLE, eEQ: eEQ, eNE: eNE}

func (x *explainer) walk(n *enode, within string) {
	switch n.op {
	case eNot:
		x.walk(n.x, within)
		return
	case eAnd, eOr:
		x.walk(n.x, within)
		x.walk(n.y, within)
		return
	case eStateEQ, eStateNE:
		l := x.e.leaves[n.x.leaf]
		c := Comparison{Subject: l.label, Op: opText[n.op], LimitState: n.s, State: &StateRef{Kind: l.state.kind, Name: l.state.name}, Within: within}
		if within == "" {
			if v := x.ev.leaf(n.x.leaf, x.sc.Window, x.stateAt); v.ok {
				c.ValueState = v.s
			}
			c.Held = x.ev.cond(n, x.sc.Window, x.stateAt) == triTrue
		}
		x.out = append(x.out, c)
		return
	}
	if _, ok := opText[n.op]; !ok {
		return
	}
	subj, lim, op := n.x, n.y, n.op
	if !hasLeaf(subj) && hasLeaf(lim) {
		subj, lim, op = lim, subj, mirrored[op]
	}
	c := Comparison{Op: opText[op], Within: within}
	var leaves []int
	collectLeaves(subj, &leaves)
	for _, i := range leaves {
		if l := x.e.leaves[i]; l.op == leafTiming {
			x.walk(l.tm.cond, l.fn.name)
		}
	}
	for k, i := range leaves {
		if k > 0 {
			c.Subject += " · "
		}
		c.Subject += x.e.leaves[i].label
	}
	if subj.op == eLeaf {
		l := x.e.leaves[subj.leaf]
		c.Kind = l.kind
		switch l.op {
		case leafLoad:
			if l.win.kind != winDuring {
				c.Load = l.name
			}
		case leafSelector, leafAggregate, leafQuantile:
			s := x.e.sels[l.sel].clone()
			c.Selector = &s
			if l.fn != nil {
				c.Func = l.fn.name
			}
		case leafTiming:
			c.IsTimed = true
		}
	} else if len(leaves) > 0 {
		c.Kind = x.e.leaves[leaves[0]].kind
	}
	if steady(x.e, lim) {
		c.Limit, c.LimitOK = x.ev.num(lim, x.sc.Window, x.stateAt)
	}
	if within != "" {
		x.out = append(x.out, c)
		return
	}
	c.Value, c.ValueOK = x.ev.num(subj, x.sc.Window, x.stateAt)
	if math.IsInf(c.Value, 0) || math.IsNaN(c.Value) {
		c.ValueOK = false
	}
	c.Held = x.ev.cond(n, x.sc.Window, x.stateAt) == triTrue
	if c.IsTimed {
		c.Since = x.ev.since[subj.leaf]
	}
	if !c.Held && c.LimitOK && perStep(x.e, subj) {
		c.Breaches = x.breaches(n)
	}
	x.out = append(x.out, c)
}

// breaches evaluates comparison n at each step of the SLA's window.
func (x *explainer) breaches(n *enode) []Window {
	if x.stepper == nil {
		ev, err := newEvaluator(x.e, x.env, x.sc)
		if err != nil {
			return nil
		}
		ev.stepping = true
		x.stepper = ev
	}
	ev := x.stepper
	var out []Window
	step := ev.step
	if step <= 0 {
		return nil
	}
	for t := x.sc.Window.From; t < x.sc.Window.To; t += step {
		ev.now++
		w := Window{From: t, To: min(t+step, x.sc.Window.To)}
		if ev.cond(n, w, t) != triFalse {
			continue
		}
		if k := len(out); k > 0 && out[k-1].To == w.From {
			out[k-1].To = w.To
			continue
		}
		out = append(out, w)
	}
	return out
}

func hasLeaf(n *enode) bool {
	if n == nil {
		return false
	}
	return n.op == eLeaf || hasLeaf(n.x) || hasLeaf(n.y)
}

func collectLeaves(n *enode, out *[]int) {
	if n == nil {
		return
	}
	if n.op == eLeaf {
		*out = append(*out, n.leaf)
		return
	}
	collectLeaves(n.x, out)
	collectLeaves(n.y, out)
}

// steady says whether n has the same value at every step: it reads
// nothing, or only values over a named phase.
func steady(e *Expr, n *enode) bool {
	var leaves []int
	collectLeaves(n, &leaves)
	for _, i := range leaves {
		if e.leaves[i].win.kind != winDuring {
			return false
		}
	}
	return true
}

// perStep says whether a subject read over one step means what it means
// over the whole window, so a step at which it breaks the limit is a
// breach worth showing: a percentile, a ratio or a rate of the load, a
// gauge's value or its extremes, a counter's rate. Totals (requests,
// increase) and histogram quantiles are not.
func perStep(e *Expr, n *enode) bool {
	if n.op != eLeaf {
		return false
	}
	l := e.leaves[n.leaf]
	if l.win.kind == winDuring {
		return false
	}
	switch l.op {
	case leafLoad:
		return l.kind != KindCount
	case leafSelector:
		return true
	case leafAggregate:
		return l.fn.agg != aggIncrease
	}
	return false
}

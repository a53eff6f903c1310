package verify

import (
	"fmt"
	"slices"
	"strings"
)

// This file holds the checker's half for the operands that read the run:
// load series, selectors, calls and their windows. Each becomes a leaf.

// addLeaf registers l in the current scope, sharing an existing leaf of the
// same label, and returns a node reading it.
func (c *checker) addLeaf(l leaf) *enode {
	key := leafKey{c.scope, l.label}
	i, ok := c.leafIndex[key]
	if !ok {
		l.scope = c.scope
		i = len(c.e.leaves)
		c.e.leaves = append(c.e.leaves, &l)
		c.leafIndex[key] = i
		if l.op == leafState && c.tm != nil {
			c.tm.states = append(c.tm.states, i)
		}
	}
	return &enode{op: eLeaf, leaf: i}
}

func (c *checker) loadLeaf(n *seriesRef, w window) (typ, *enode, error) {
	return typeOfKind(n.kind), c.addLeaf(leaf{op: leafLoad, label: n.name + w.text, kind: n.kind, win: w, name: n.name}), nil
}

func (c *checker) selectorLeaf(n *selectorExpr, w window) (typ, *enode, error) {
	k := MetricKind(n.sel.Metric)
	return typeOfKind(k), c.addLeaf(leaf{op: leafSelector, label: n.sel.String() + w.text, kind: k, win: w, sel: c.selector(n.sel)}), nil
}

// selector registers s as one the expression reads and returns its index.
func (c *checker) selector(s Selector) int {
	key := s.String()
	if i, ok := c.selIndex[key]; ok {
		return i
	}
	c.e.sels = append(c.e.sels, s)
	c.selIndex[key] = len(c.e.sels) - 1
	return len(c.e.sels) - 1
}

// phase registers a phase reference and returns the phase's index.
func (c *checker) phase(p *phaseName) int {
	c.e.phaseRefs = append(c.e.phaseRefs, nameRef{name: p.name, pos: p.pos})
	if i := slices.Index(c.e.phases, p.name); i >= 0 {
		return i
	}
	c.e.phases = append(c.e.phases, p.name)
	return len(c.e.phases) - 1
}

// window compiles a during or over modifier.
func (c *checker) window(w *windowExpr) window {
	if w.phase != nil {
		return window{kind: winDuring, phase: c.phase(w.phase), text: " during " + phaseText(w.phase.name)}
	}
	return window{kind: winOver, over: w.dur.d, text: " over " + w.dur.text}
}

// phaseText writes a phase name as the language reads it back.
func phaseText(name string) string {
	for i, r := range name {
		if !isIdentPart(r) || (i == 0 && !isIdentStart(r)) {
			return quote(name)
		}
	}
	if _, ok := keywords[name]; ok {
		return quote(name)
	}
	return name
}

// windowed checks x during PHASE and x over DURATION: x must be a load
// series, a selector or a call that aggregates over a window.
func (c *checker) windowed(n *windowExpr) (typ, *enode, error) {
	switch x := unparen(n.x).(type) {
	case *seriesRef:
		return c.loadLeaf(x, c.window(n))
	case *selectorExpr:
		return c.selectorLeaf(x, c.window(n))
	case *windowExpr:
		return tyInvalid, nil, errAt(n.kwPos, "%s already has a window; give one, during or over", c.text(x))
	case *callExpr:
		switch x.fn.class {
		case fnTiming:
			return tyInvalid, nil, errAt(n.kwPos, "%s counts from a phase's edge: use from:, e.g. %s", x.name, x.fn.usage)
		case fnState:
			return tyInvalid, nil, errAt(n.kwPos, "%s is read at an instant; %q does not apply to it", c.text(x), n.kw)
		}
		return c.call(x, n)
	}
	return tyInvalid, nil, errAt(n.kwPos, "%q applies to a load series, a selector or a function such as avg(…), not to %s", n.kw, c.text(n.x))
}

// call checks a call; outer is the window modifier applied to it, if any.
func (c *checker) call(n *callExpr, outer *windowExpr) (typ, *enode, error) {
	switch n.fn.class {
	case fnAggregate:
		return c.aggregate(n, outer)
	case fnQuantile:
		return c.quantile(n, outer)
	case fnTiming:
		return c.timingCall(n)
	}
	return c.stateCall(n)
}

func (c *checker) aggregate(n *callExpr, outer *windowExpr) (typ, *enode, error) {
	s, w, err := c.selectorArg(n, n.args[0], outer)
	if err != nil {
		return tyInvalid, nil, err
	}
	k := MetricKind(s.sel.Metric)
	if n.fn.agg == aggRate {
		k = KindRate
	}
	label := fmt.Sprintf("%s(%s%s)", n.name, s.sel, w.text)
	return typeOfKind(k), c.addLeaf(leaf{op: leafAggregate, label: label, kind: k, win: w, fn: n.fn, sel: c.selector(s.sel)}), nil
}

func (c *checker) quantile(n *callExpr, outer *windowExpr) (typ, *enode, error) {
	lit, ok := unparen(n.args[0]).(*numberLit)
	if !ok || (lit.unit != nil && lit.unit.name != "%") {
		return tyInvalid, nil, errAt(start(n.args[0]), "the quantile is a number from 0 to 1 or a percentage: %s", n.fn.usage)
	}
	if lit.value < 0 || lit.value > 1 {
		return tyInvalid, nil, errAt(lit.pos, "quantile %s is out of range; use 0 to 1 or 0%% to 100%%", lit.text)
	}
	s, w, err := c.selectorArg(n, n.args[1], outer)
	if err != nil {
		return tyInvalid, nil, err
	}
	for i, m := range s.sel.Matchers {
		if m.Name == "le" {
			return tyInvalid, nil, errAt(s.matcherPos[i], "histogram_quantile reads every bucket; remove the le matcher")
		}
	}
	// Name the histogram by its base name, whichever the author wrote.
	base := s.sel.clone()
	base.Metric = strings.TrimSuffix(base.Metric, "_bucket")
	buckets := base.clone()
	buckets.Metric += "_bucket"
	k := MetricKind(base.Metric)
	label := fmt.Sprintf("%s(%s, %s%s)", n.name, lit.text, base, w.text)
	return typeOfKind(k), c.addLeaf(leaf{op: leafQuantile, label: label, kind: k, win: w, fn: n.fn, q: lit.value, sel: c.selector(buckets)}), nil
}

// selectorArg checks the selector argument arg of call n, and returns it
// with its window: written inside the parentheses, or applied to the call
// (outer), but not both.
func (c *checker) selectorArg(n *callExpr, arg node, outer *windowExpr) (*selectorExpr, window, error) {
	x := unparen(arg)
	var w window
	if inner, ok := x.(*windowExpr); ok {
		if outer != nil {
			return nil, w, errAt(outer.kwPos, "%s(…) already has a window inside its parentheses; give one", n.name)
		}
		if _, ok := unparen(inner.x).(*windowExpr); ok {
			return nil, w, errAt(inner.kwPos, "%s already has a window; give one, during or over", c.text(inner.x))
		}
		w = c.window(inner)
		x = unparen(inner.x)
	} else if outer != nil {
		w = c.window(outer)
	}
	s, ok := x.(*selectorExpr)
	if !ok {
		if ref, ok := x.(*seriesRef); ok {
			return nil, w, errAt(start(arg), "%s takes a selector, e.g. %s; %s is a load series, already aggregated over its window", n.name, n.fn.usage, ref.name)
		}
		return nil, w, errAt(start(arg), "%s takes a selector, e.g. %s", n.name, n.fn.usage)
	}
	return s, w, nil
}

// timingCall checks time_to and recovery_time. The condition is compiled
// into a scope of its own: its leaves are read at each instant.
func (c *checker) timingCall(n *callExpr) (typ, *enode, error) {
	if c.timing != nil {
		return tyInvalid, nil, errAt(n.pos, "%s cannot be used inside %s(…)", n.name, c.timing.name)
	}
	tm := &timingSpec{from: -1}
	outerScope := c.scope
	c.scopes++
	tm.scope = c.scopes
	c.scope, c.timing, c.tm = c.scopes, n, tm
	t, cond, err := c.check(n.args[0])
	c.scope, c.timing, c.tm = outerScope, nil, nil
	if err != nil {
		return tyInvalid, nil, err
	}
	if t != tyBool {
		return tyInvalid, nil, errAt(start(n.args[0]), "%s needs a condition: %s", n.name, n.fn.usage)
	}
	tm.cond = cond
	tm.fine = n.name == ResultTimeTo && c.fineScope(tm.scope)
	for _, a := range n.named {
		switch a.name {
		case "from":
			tm.from = c.phase(a.phase)
		case "hold":
			tm.hold = a.dur.d
		}
	}
	c.timings[n.name]++
	label := n.name
	if k := c.timings[n.name]; k > 1 {
		label = fmt.Sprintf("%s#%d", n.name, k)
	}
	en := c.addLeaf(leaf{op: leafTiming, label: label, kind: KindDuration, fn: n.fn, tm: tm})
	if c.e.first < 0 {
		c.e.first = en.leaf
	}
	return tyDuration, en, nil
}

// fineSeries are the load series a FineEnv keeps at its finer step:
// rates and ratios, which mean the same over a tenth of a second as over a
// second (counts and latencies do not, or are not kept that finely).
var fineSeries = map[string]bool{"rps": true, "success_rate": true, "error_rate": true, "fallback_rate": true, "upstream_success_rate": true}

// fineScope says whether the leaves of a timing condition's scope let it
// be timed finer than Step: it reads at least one fine series over the
// current window, and otherwise only fine series, states and values
// during a phase.
func (c *checker) fineScope(scope int) bool {
	fine := false
	for _, l := range c.e.leaves {
		switch {
		case l.scope != scope:
		case l.op == leafState:
		case l.op == leafLoad && l.win.kind == winDuring:
		case l.op == leafLoad && l.win.kind == winNone && fineSeries[l.name]:
			fine = true
		default:
			return false
		}
	}
	return fine
}

// stateCall checks breaker("name"), fault("id") and state("kind", "name").
func (c *checker) stateCall(n *callExpr) (typ, *enode, error) {
	names := make([]string, len(n.args))
	quoted := make([]string, len(n.args))
	for i, arg := range n.args {
		s, ok := unparen(arg).(*stringLit)
		if !ok {
			return tyInvalid, nil, errAt(start(arg), "names are quoted: %s", n.fn.usage)
		}
		if s.value == "" {
			return tyInvalid, nil, errAt(s.pos, "empty name in %s(…)", n.name)
		}
		names[i], quoted[i] = s.value, quote(s.value)
	}
	ref := stateRef{kind: n.fn.stateKind, name: names[0], pos: start(n.args[0])}
	if n.fn.stateKind == "" {
		ref = stateRef{kind: names[0], name: names[1], pos: start(n.args[1])}
	}
	c.e.stateRefs = append(c.e.stateRefs, ref)
	label := n.name + "(" + strings.Join(quoted, ", ") + ")"
	return tyState, c.addLeaf(leaf{op: leafState, label: label, fn: n.fn, state: ref}), nil
}

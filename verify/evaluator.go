package verify

import (
	"fmt"
	"math"
	"time"
)

// tri is a three-valued truth: a condition on a value without data is
// unknown, and at an instant unknown counts as "does not hold".
type tri uint8

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

// forever marks a cached leaf value that holds for the whole evaluation:
// leaves read over the SLA's window and leaves with a during window.
const forever = ^uint32(0)

// evaluator is the state of one Check: the Env, resolved phases, scraped
// data fetched so far, and a cache of leaf values. Everything is allocated
// up front, so scanning instants allocates nothing.
type evaluator struct {
	e      *Expr
	env    RunEnv
	sc     Scope
	run    Window
	step   time.Duration
	phases []Window   // resolved Expr.phases
	scr    []*scraped // per Expr.sels, fetched on first use
	vals   []leafVal
	done   []uint32 // the instant (now) vals[i] was computed for, or forever
	now    uint32
	at     []time.Duration // timing leaves: the instant of the event
	found  []bool          // timing leaves: whether the event happened
	since  []time.Duration // timing leaves: the instant counted from
	// stepping reads the SLA's own leaves over whatever window it is
	// given rather than once for good: Explain walks the SLA's window
	// step by step with it.
	stepping bool
	// fine is the scope of the time_to condition a FineEnv (fe) is
	// timing to its FineStep, whose load leaves read FineLoad; 0 when
	// none is.
	fine int
	fe   FineEnv
}

type leafVal struct {
	v  float64
	s  string // states
	ok bool
}

func newEvaluator(e *Expr, env RunEnv, sc Scope) (*evaluator, error) {
	n := len(e.leaves)
	ev := &evaluator{
		e: e, env: env, sc: sc, run: env.Run(), step: env.Step(),
		phases: make([]Window, len(e.phases)),
		scr:    make([]*scraped, len(e.sels)),
		vals:   make([]leafVal, n),
		done:   make([]uint32, n),
		now:    1,
		at:     make([]time.Duration, n),
		found:  make([]bool, n),
		since:  make([]time.Duration, n),
	}
	for i, name := range e.phases {
		if name == PhaseRun {
			ev.phases[i] = ev.run
			continue
		}
		w, ok := env.Phase(name)
		if !ok {
			return nil, fmt.Errorf("%w: no phase %q", ErrUnknownName, name)
		}
		ev.phases[i] = w
	}
	for _, r := range e.stateRefs {
		if _, ok := env.State(r.kind, r.name, ev.run.From); !ok {
			return nil, fmt.Errorf("%w: no %s %q", ErrUnknownName, r.kind, r.name)
		}
	}
	if e.first >= 0 && ev.step <= 0 {
		return nil, fmt.Errorf("verify: RunEnv.Step() is %v; time_to and recovery_time need a positive step", ev.step)
	}
	return ev, nil
}

// leaf returns leaf i's value in the current window cur, reading states at
// instant at. Values are cached for the current instant, or for good when
// they cannot change during the evaluation.
func (ev *evaluator) leaf(i int, cur Window, at time.Duration) leafVal {
	if d := ev.done[i]; d == ev.now || d == forever {
		return ev.vals[i]
	}
	l := ev.e.leaves[i]
	v := ev.compute(i, l, cur, at)
	if math.IsNaN(v.v) {
		v = leafVal{}
	}
	ev.vals[i] = v
	ev.done[i] = ev.now
	if (l.scope == 0 && !ev.stepping) || l.win.kind == winDuring {
		ev.done[i] = forever
	}
	return v
}

func (ev *evaluator) compute(i int, l *leaf, cur Window, at time.Duration) leafVal {
	var v float64
	var ok bool
	w := ev.resolve(l.win, cur)
	switch l.op {
	case leafTiming:
		return ev.scan(i, l)
	case leafState:
		s, ok := ev.env.State(l.state.kind, l.state.name, at)
		return leafVal{s: s, ok: ok}
	case leafLoad:
		if ev.fine != 0 && l.scope == ev.fine && l.win.kind == winNone {
			v, ok = ev.fe.FineLoad(l.name, w)
			break
		}
		v, ok = ev.env.Load(l.name, w)
	case leafSelector:
		pts := ev.scraped(l.sel).total()
		if l.win.kind == winNone {
			v, ok = latest(pts, w.To)
		} else {
			v, ok = aggregate(aggLast, pts, w)
		}
	case leafAggregate:
		v, ok = ev.aggregate(l, w)
	case leafQuantile:
		v, ok = ev.scraped(l.sel).quantile(l.q, w)
	}
	return leafVal{v: v, ok: ok}
}

// resolve returns the window a leaf with window w reads when the current
// window is cur.
func (ev *evaluator) resolve(w window, cur Window) Window {
	switch w.kind {
	case winDuring:
		return ev.phases[w.phase]
	case winOver:
		return Window{From: max(cur.To-w.over, ev.run.From), To: cur.To}
	}
	return cur
}

func (ev *evaluator) scraped(i int) *scraped {
	if s := ev.scr[i]; s != nil {
		return s
	}
	s := &scraped{series: ev.env.Series(ev.e.sels[i])}
	ev.scr[i] = s
	return s
}

// aggregate computes rate, increase, avg, min, max, last or first. Rate and
// increase are taken per series, where counter resets are visible, then
// summed; the others work on the selector's sum.
func (ev *evaluator) aggregate(l *leaf, w Window) (float64, bool) {
	s := ev.scraped(l.sel)
	switch l.fn.agg {
	case aggRate, aggIncrease:
		total, any := 0.0, false
		for _, ser := range s.series {
			inc, span, ok := increase(ser.Points, w)
			if !ok {
				continue
			}
			if l.fn.agg == aggRate {
				if span <= 0 {
					continue
				}
				inc /= span.Seconds()
			}
			total += inc
			any = true
		}
		return total, any
	}
	return aggregate(l.fn.agg, s.total(), w)
}

// cond evaluates a condition node.
func (ev *evaluator) cond(n *enode, cur Window, at time.Duration) tri {
	switch n.op {
	case eNot:
		switch ev.cond(n.x, cur, at) {
		case triTrue:
			return triFalse
		case triFalse:
			return triTrue
		}
		return triUnknown
	case eAnd, eOr:
		// Short-circuiting is safe: outside instants every leaf has
		// been read already, for Observed.
		stop := triFalse
		if n.op == eOr {
			stop = triTrue
		}
		x := ev.cond(n.x, cur, at)
		if x == stop {
			return stop
		}
		y := ev.cond(n.y, cur, at)
		if y == stop {
			return stop
		}
		if x == triUnknown || y == triUnknown {
			return triUnknown
		}
		return x
	case eStateEQ, eStateNE:
		v := ev.leaf(n.x.leaf, cur, at)
		if !v.ok {
			return triUnknown
		}
		return truth((v.s == n.s) == (n.op == eStateEQ))
	}
	x, okx := ev.num(n.x, cur, at)
	y, oky := ev.num(n.y, cur, at)
	if !okx || !oky {
		return triUnknown
	}
	switch n.op {
	case eLT:
		return truth(x < y)
	case eLE:
		return truth(x <= y)
	case eGT:
		return truth(x > y)
	case eGE:
		return truth(x >= y)
	case eEQ:
		return truth(x == y) // exact: literals are converted exactly, see unit
	case eNE:
		return truth(x != y)
	}
	panic(fmt.Sprintf("verify: op %d is not a condition", n.op))
}

func truth(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// num evaluates a numeric node; ok is false if a value it needs has no
// data.
func (ev *evaluator) num(n *enode, cur Window, at time.Duration) (float64, bool) {
	switch n.op {
	case eConst:
		return n.v, true
	case eLeaf:
		v := ev.leaf(n.leaf, cur, at)
		return v.v, v.ok
	case eNeg:
		x, ok := ev.num(n.x, cur, at)
		return -x, ok
	}
	x, okx := ev.num(n.x, cur, at)
	y, oky := ev.num(n.y, cur, at)
	ok := okx && oky
	switch n.op {
	case eAdd:
		return x + y, ok
	case eSub:
		return x - y, ok
	case eMul:
		return x * y, ok
	case eDiv:
		return x / y, ok
	}
	panic(fmt.Sprintf("verify: op %d is not numeric", n.op))
}

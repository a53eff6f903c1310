package verify

import (
	"math"
	"slices"
	"time"
)

// scan evaluates timing leaf i: it walks the instants from the start
// instant to the end of the run and returns the time from the start to the
// event, or +Inf if it never happened.
//
// time_to's event is the first instant at which the condition holds.
// recovery_time's is the first instant t from which it holds at every
// instant of [t, t+hold), with t+hold within the run.
func (ev *evaluator) scan(i int, l *leaf) leafVal {
	tm := l.tm
	recovery := l.fn.name == ResultRecoveryTime
	var start time.Duration
	switch {
	case recovery && tm.from >= 0:
		start = ev.phases[tm.from].To
	case recovery:
		start = ev.sc.RecoverFrom.To
	case tm.from >= 0:
		start = ev.phases[tm.from].From
	default:
		start = ev.sc.DetectFrom.From
	}
	ev.since[i] = start
	found := func(t time.Duration) leafVal {
		ev.at[i], ev.found[i] = t, true
		return leafVal{v: (t - start).Seconds(), ok: true}
	}

	changes := ev.changes(tm, start)
	holding, since := false, time.Duration(0)
	next, ci := start, 0
	step, fe := ev.step, FineEnv(nil)
	if f, ok := ev.env.(FineEnv); ok && tm.fine && f.FineStep() > 0 && f.FineStep() < ev.step && ev.step%f.FineStep() == 0 {
		step, fe = f.FineStep(), f
		ev.fine, ev.fe = tm.scope, f
		defer func() { ev.fine, ev.fe = 0, nil }()
	}
	for {
		// The next instant is the next step or the next state change,
		// whichever comes first.
		t := next
		if ci < len(changes) && changes[ci] <= next {
			t = changes[ci]
			ci++
		}
		if t == next {
			next += step
		}
		if t >= ev.run.To {
			break
		}
		if recovery && holding && t-since >= tm.hold {
			return found(since)
		}
		ev.now++
		w := Window{From: t, To: t + ev.step}
		if fe != nil {
			var enough bool
			if w, enough = fineWindow(fe, t, step, ev.step, ev.run.To); !enough {
				holding = false
				continue // too few requests left before the run's end
			}
		}
		if ev.cond(tm.cond, w, t) != triTrue {
			holding = false
			continue
		}
		if !recovery {
			return found(t)
		}
		if !holding {
			holding, since = true, t
		}
		if tm.hold == 0 {
			return found(since)
		}
	}
	if recovery && holding && ev.run.To-since >= tm.hold {
		return found(since)
	}
	return leafVal{v: math.Inf(1), ok: true}
}

// fineWindow is the window a fine scan judges at instant t: from t
// (rounded up to the fine grid, which a state change or a phase start
// need not be on) the fewest fine steps that hold MinFineRequests
// requests, and at most limit, but not past the run's end. enough is
// false for a window the run's end cut short of MinFineRequests: so near
// the end the evidence is too thin to judge.
func fineWindow(fe FineEnv, t, fine, limit, end time.Duration) (w Window, enough bool) {
	from := (t + fine - 1) / fine * fine
	w = Window{From: from, To: from + fine}
	for {
		if w.To > end {
			w.To = end / fine * fine
			if w.To <= w.From {
				return w, false
			}
			n, _ := fe.FineLoad("requests", w)
			return w, n >= MinFineRequests
		}
		if n, _ := fe.FineLoad("requests", w); n >= MinFineRequests || w.To-w.From >= limit {
			return w, true
		}
		w.To += fine
	}
}

// changes returns the instants in [start, end of run) at which a state the
// condition reads changes, sorted and distinct.
func (ev *evaluator) changes(tm *timingSpec, start time.Duration) []time.Duration {
	var out []time.Duration
	for _, i := range tm.states {
		s := ev.e.leaves[i].state
		for _, t := range ev.env.StateChanges(s.kind, s.name) {
			if t >= start && t < ev.run.To {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

package runner

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/internal/suggest"
	"github.com/resctl/resctl/internal/version"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/verify"
)

// buildReport turns a recording into the report model and decides the SLAs.
func buildReport(s *scenario.Scenario, target string, rec *record.Recording, env *runEnv, proxies *proxySet, events []record.Event, runEnd time.Duration) *report.Report {
	r := &report.Report{
		Schema:    report.Schema,
		Scenario:  s.Name,
		File:      s.File,
		Seed:      s.Seed,
		Target:    target,
		StartedAt: rec.Start.UTC(),
		Passed:    true,
		SLAs:      []report.SLA{},
		Faults:    []report.Fault{},
	}
	fillRecording(r, rec, runEnd)

	for _, sla := range s.SLAs {
		if env.missing != "" && (len(sla.Expr.Selectors()) > 0 || len(sla.Expr.States()) > 0) {
			r.SLAs = append(r.SLAs, report.SLA{Name: sla.Name, Expect: sla.Expect, During: sla.During, NotEvaluated: env.missing})
			continue
		}
		out := checkSLA(s, sla, env)
		r.Passed = r.Passed && out.Passed
		r.SLAs = append(r.SLAs, out)
	}

	spans := map[string]record.PhaseSpan{}
	for _, sp := range rec.Phases {
		spans[sp.Name] = sp
	}
	for _, pr := range proxies.list {
		for _, a := range pr.board.History() {
			if span, ok := spans[a.Scope]; ok && a.Stats().Matched == 0 && span.Start >= runEnd {
				// Armed, and perhaps switched on a moment ahead, for a
				// phase the run never reached: addNotRunFaults lists it.
				continue
			}
			f := faultOf(a, pr.Name, spans, rec.Start, runEnd)
			r.Faults = append(r.Faults, f)
			if s.RequireFaultsFired && !f.Fired {
				failNotFired(r, f.ID, fmt.Sprintf("injected %d of %d matched requests", f.Injected, f.Matched),
					"the fault never acted: check its path, method and headers against the load's requests")
			}
		}
	}
	// In the order the faults came on, whichever proxy they act on.
	slices.SortStableFunc(r.Faults, func(a, b report.Fault) int { return cmp.Compare(a.StartS, b.StartS) })
	for _, e := range events {
		r.Events = append(r.Events, report.Event{AtS: report.Secs(e.At), Source: e.Source, Kind: e.Kind, Detail: e.Detail, Name: e.Name, From: e.From, To: e.To})
	}
	return r
}

// RecordingReport is what a recording alone says of a run that lasted
// runEnd, in the report's terms: its phases, total, error reasons and
// per-second series. A chaos session builds its report on it, so a
// session's and a run's report read the same.
func RecordingReport(rec *record.Recording, runEnd time.Duration) *report.Report {
	r := &report.Report{Schema: report.Schema, StartedAt: rec.Start.UTC(), Passed: true, SLAs: []report.SLA{}, Faults: []report.Fault{}}
	fillRecording(r, rec, runEnd)
	return r
}

func fillRecording(r *report.Report, rec *record.Recording, runEnd time.Duration) {
	for i, span := range rec.Phases {
		end := max(min(span.End, runEnd), span.Start)
		r.Phases = append(r.Phases, phaseOf(span.Name, span.Start, end, rec.PhaseStats[i]))
	}
	r.Total = phaseOf("", 0, runEnd, rec.Total)
	r.ErrorReasons = errorReasons(rec)
	for i, sec := range rec.Seconds {
		ok, failed := sec.SuccessLatency, sec.ErrorLatency
		r.Series = append(r.Series, report.Second{
			T: i, Requests: sec.Requests, Successes: sec.Successes, Errors: sec.Errors, Fallbacks: sec.Fallbacks,
			P50Ms: report.Ms(sec.Latency.P50), P90Ms: report.Ms(sec.Latency.P90), P95Ms: report.Ms(sec.Latency.P95),
			P99Ms: report.Ms(sec.Latency.P99), MaxMs: report.Ms(sec.Latency.Max),
			SuccessP50Ms: report.Ms(ok.P50), SuccessP90Ms: report.Ms(ok.P90), SuccessP95Ms: report.Ms(ok.P95),
			SuccessP99Ms: report.Ms(ok.P99), SuccessMaxMs: report.Ms(ok.Max),
			ErrorP50Ms: report.Ms(failed.P50), ErrorP99Ms: report.Ms(failed.P99), ErrorMaxMs: report.Ms(failed.Max),
			ErrorReasons: topReasons(sec.Reasons, report.SecondReasons),
		})
	}
}

// topReasons keeps the n most frequent reasons, for a second's hover.
func topReasons(reasons map[string]uint64, n int) map[string]uint64 {
	if len(reasons) == 0 {
		return nil
	}
	keys := slices.Collect(maps.Keys(reasons))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(reasons[b], reasons[a]), strings.Compare(a, b)) })
	out := map[string]uint64{}
	for _, k := range keys[:min(n, len(keys))] {
		out[k] = reasons[k]
	}
	return out
}

// errorReasons tabulates the recording's failure reasons per phase.
func errorReasons(rec *record.Recording) []report.ErrorReason {
	var out []report.ErrorReason
	for reason, n := range rec.Total.Reasons {
		kind, detail, _ := strings.Cut(reason, ": ")
		e := report.ErrorReason{Kind: kind, Reason: detail, Total: n, Phases: make([]uint64, len(rec.PhaseStats))}
		for i, ph := range rec.PhaseStats {
			e.Phases[i] = ph.Reasons[reason]
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b report.ErrorReason) int {
		return cmp.Or(
			cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)),
			cmp.Compare(b.Total, a.Total),
			strings.Compare(a.Reason, b.Reason))
	})
	return out
}

// kindRank orders reason kinds as reports list them; unknown kinds last.
func kindRank(kind string) int {
	if i := slices.Index(report.ReasonKinds, kind); i >= 0 {
		return i
	}
	return len(report.ReasonKinds)
}

func phaseOf(name string, start, end time.Duration, sum record.Summary) report.Phase {
	l := sum.Latency
	p := report.Phase{
		Name: name, StartS: report.Secs(start), EndS: report.Secs(end),
		Requests: sum.Requests, Successes: sum.Successes, Errors: sum.Errors, Fallbacks: sum.Fallbacks,
		SuccessRate: sum.SuccessRate(),
		LatencyMs:   *msOf(l),
	}
	if sum.Service != (record.Latency{}) {
		p.ServiceMs, p.LagMs = msOf(sum.Service), msOf(sum.Lag)
	}
	p.Dropped = sum.Dropped
	if secs := (end - start).Seconds(); secs > 0 {
		p.RPS = float64(sum.Requests) / secs
	}
	if len(sum.Codes) > 0 {
		p.Codes = map[string]uint64{}
		for c, n := range sum.Codes {
			p.Codes[strconv.Itoa(c)] = n
		}
	}
	return p
}

// checkSLA decides one SLA over the run (or the part of it recorded so far).
func checkSLA(s *scenario.Scenario, sla scenario.SLA, env *runEnv) report.SLA {
	sc := scopeOf(s, sla, env)
	res, err := sla.Expr.Check(env, sc)
	out := report.SLA{
		Name: sla.Name, Expect: sla.Expect, During: sla.During,
		Passed: res.Passed && err == nil, Observed: res.Observed, Values: res.Values, Kind: res.Kind,
	}
	if res.At != nil {
		at := report.Secs(*res.At)
		out.AtS = &at
	}
	if err != nil {
		out.Error = err.Error() + unmatched(sla, env)
	}
	if cmps, err := sla.Expr.Explain(env, sc); err == nil {
		out.Checks = slaChecks(cmps)
	}
	return out
}

// slaChecks are an SLA's comparisons in the report's terms.
func slaChecks(cmps []verify.Comparison) []report.SLACheck {
	var out []report.SLACheck
	for _, c := range cmps {
		rc := report.SLACheck{Subject: c.Subject, Op: c.Op, ValueState: c.ValueState, LimitState: c.LimitState,
			Held: c.Held, Load: c.Load, Func: c.Func, Within: c.Within}
		if c.State == nil {
			rc.Unit = c.Kind.String()
		} else {
			rc.StateKind, rc.StateName = c.State.Kind, c.State.Name
		}
		if c.ValueOK {
			rc.Value = &c.Value
		}
		if c.LimitOK {
			rc.Limit = &c.Limit
		}
		if c.Selector != nil {
			rc.Selector = c.Selector.String()
		}
		if c.IsTimed {
			since := report.Secs(c.Since)
			rc.SinceS = &since
		}
		for _, b := range c.Breaches {
			rc.Breaches = append(rc.Breaches, [2]float64{report.Secs(b.From), report.Secs(b.To)})
		}
		out = append(out, rc)
	}
	return out
}

// unmatched explains selectors that matched no scraped series, with the
// closest name the source did serve: a typo in a metric name cannot be
// caught before the run, since nobody knows a target's metrics until they
// are scraped.
func unmatched(sla scenario.SLA, env *runEnv) string {
	var b strings.Builder
	for _, sel := range sla.Expr.Selectors() {
		if len(env.Series(sel)) > 0 {
			continue
		}
		names := env.servedNames(sel.Source)
		fmt.Fprintf(&b, "; %s matched no scraped series", sel)
		switch {
		case len(names) == 0:
			fmt.Fprintf(&b, " (nothing was scraped from %s)", sel.Source)
		default:
			if c, ok := suggest.Closest(sel.Metric, names); ok && c != sel.Metric {
				fmt.Fprintf(&b, " (did you mean %s:%s?)", sel.Source, c)
			}
		}
	}
	return b.String()
}

// scopeOf is where an SLA is checked: its phase (or the run), and where
// time_to and recovery_time count from when they do not say — the SLA's
// phase, or else the first and the last phase with faults.
func scopeOf(s *scenario.Scenario, sla scenario.SLA, env *runEnv) verify.Scope {
	sc := verify.Scope{Window: env.Run()}
	if w, ok := env.Phase(sla.During); ok {
		sc.Window, sc.DetectFrom, sc.RecoverFrom = w, w, w
		return sc
	}
	first, last := "", ""
	for _, ph := range s.Phases {
		if len(ph.Faults) > 0 {
			if first == "" {
				first = ph.Name
			}
			last = ph.Name
		}
	}
	if first == "" && len(s.Phases) > 0 {
		first, last = s.Phases[0].Name, s.Phases[len(s.Phases)-1].Name
	}
	sc.DetectFrom, _ = env.Phase(first)
	sc.RecoverFrom, _ = env.Phase(last)
	return sc
}

// failNotFired fails the run for a fault that never fired, under
// require_faults_fired, with what it observed and why.
func failNotFired(r *report.Report, id, observed, why string) {
	r.Passed = false
	r.SLAs = append(r.SLAs, report.SLA{Name: firedSLA(id), Expect: "require_faults_fired", Kind: "check", Observed: observed, Error: why})
}

// faultStates are the on/off histories of the scenario's faults: a scoped
// fault is on exactly during its phase.
func faultStates(p plan, end time.Duration) map[stateKey][]stateChange {
	states := map[stateKey][]stateChange{}
	for i, span := range p.spans {
		for _, f := range p.faults[i] {
			k := stateKey{"fault", f.id}
			if span.Start < end {
				states[k] = append(states[k], stateChange{span.Start, "on"}, stateChange{min(span.End, end), "off"})
			} else {
				states[k] = nil // planned, never reached
			}
		}
	}
	return states
}

// faultOf is a fault's report entry from its activation on a proxy's board.
func faultOf(a *inject.Activation, proxy string, spans map[string]record.PhaseSpan, start time.Time, runEnd time.Duration) report.Fault {
	st := a.Stats()
	f := report.Fault{
		ID:             a.ID,
		Kind:           a.Spec.Kind(),
		Proxy:          proxy,
		Layer:          string(inject.LayerOf(a.Spec)),
		Phase:          a.Scope,
		Config:         inject.Params(a.Spec),
		Matched:        st.Matched,
		Injected:       st.Injected,
		ConfiguredRate: st.ConfiguredRate,
		EffectiveRate:  st.EffectiveRate,
		Fired:          st.Fired(),
		StartS:         report.Secs(st.Since.Sub(start)),
	}
	if !st.Until.IsZero() {
		f.EndS = report.Secs(st.Until.Sub(start))
	}
	// A scoped fault acts on exactly its phase's requests, so its window
	// is the phase, whatever lead the clock switched it on with.
	if span, scoped := spans[a.Scope]; scoped {
		f.StartS = report.Secs(span.Start)
		f.EndS = report.Secs(min(span.End, runEnd))
	}
	return f
}

func msOf(l record.Latency) *report.Latency {
	return &report.Latency{
		Min: report.Ms(l.Min), Mean: report.Ms(l.Mean), P50: report.Ms(l.P50), P90: report.Ms(l.P90),
		P95: report.Ms(l.P95), P99: report.Ms(l.P99), P999: report.Ms(l.P999), Max: report.Ms(l.Max),
	}
}

// markNotRun marks what a run that stopped at runEnd never reached: the
// phases that had not begun, the SLAs over them (over any phase, when
// none had begun) or that read them, which are then neither passed nor
// failed; and says which phase the run stopped in.
func markNotRun(r *report.Report, s *scenario.Scenario, spans []record.PhaseSpan, runEnd time.Duration) {
	notRun := map[string]bool{}
	ended := map[string]bool{}
	none := true
	r.Reached = "starting the load"
	for i, span := range spans {
		ended[span.Name] = span.End <= runEnd
		notRun[span.Name] = span.Start >= runEnd
		if span.Start < runEnd {
			r.Reached = "phase " + span.Name
			none = false
			continue
		}
		r.Phases[i] = report.Phase{Name: span.Name, StartS: report.Secs(span.Start), EndS: report.Secs(span.End), NotRun: true}
	}
	r.Passed = true
	for i, sla := range r.SLAs {
		reads := i < len(s.SLAs) && s.SLAs[i].Name == sla.Name && readsUnreached(s, s.SLAs[i], sla.Kind, notRun, ended)
		if none || notRun[sla.During] || reads {
			r.SLAs[i] = report.SLA{Name: sla.Name, Expect: sla.Expect, During: sla.During, Kind: sla.Kind, NotRun: true}
			continue
		}
		r.Passed = r.Passed && (sla.Passed || sla.NotEvaluated != "")
	}
}

// addNotRunFaults lists the faults of the phases the run never reached,
// marked not run: they had no chance to act, so they neither fired nor
// failed to (require_faults_fired does not count them).
func addNotRunFaults(r *report.Report, s *scenario.Scenario) {
	listed := map[string]bool{}
	for _, f := range r.Faults {
		listed[f.ID] = true
	}
	for i, ph := range s.Phases {
		if i >= len(r.Phases) || !r.Phases[i].NotRun {
			continue
		}
		for _, f := range ph.Faults {
			if listed[f.ID] {
				continue
			}
			out := report.Fault{ID: f.ID, Kind: f.Kind(), Phase: ph.Name, Config: f.Params, NotRun: true,
				StartS: r.Phases[i].StartS, EndS: r.Phases[i].EndS}
			switch {
			case f.Runtime != nil:
				out.Layer = "runtime"
			case f.Network != nil:
				out.Layer, out.Proxy = "network", f.Proxy
			case f.Process != nil:
				out.Layer = "process"
			case f.Spec != nil:
				out.Layer, out.Proxy, out.Config = string(inject.LayerOf(f.Spec)), f.Proxy, inject.Params(f.Spec)
			}
			r.Faults = append(r.Faults, out)
		}
	}
}

// markCutShort marks the SLAs of an interrupted run whose window the
// interrupt cut short — the whole run, a phase that had begun and not
// ended, a fault that had not fired when its phase was cut — as not
// evaluated: a window's part says nothing sure of the whole (a count not
// yet reached, a recovery still to come, a percentile of a gentler part),
// so neither a pass nor a failure would be honest. What was observed on
// the part is kept, and said.
func markCutShort(r *report.Report, s *scenario.Scenario, spans []record.PhaseSpan, runEnd time.Duration) {
	ended := map[string]bool{}
	for _, span := range spans {
		ended[span.Name] = span.End <= runEnd
	}
	phaseOf := map[string]string{}
	for _, f := range r.Faults {
		phaseOf[firedSLA(f.ID)] = f.Phase
	}
	for i, sla := range r.SLAs {
		if sla.NotRun || sla.NotEvaluated != "" {
			continue
		}
		window := "the whole run"
		switch {
		case i >= len(s.SLAs): // require_faults_fired
			if sla.Expect != "require_faults_fired" || ended[phaseOf[sla.Name]] {
				continue
			}
			window = "phase " + phaseOf[sla.Name]
		case sla.During != "":
			if ended[sla.During] {
				continue
			}
			window = "phase " + sla.During
		}
		observed := sla.Observed
		if sla.Error != "" {
			observed += " — " + sla.Error
		}
		r.SLAs[i].Passed = false
		r.SLAs[i].NotEvaluated = fmt.Sprintf("the run was interrupted before %s ended; on the part recorded it observed %s", window, observed)
	}
}

// readsUnreached says whether an SLA reads a phase the run did not reach:
// one it names (during X, from: X) that never began, the phase a time_to
// counts from that never began, or the phase a recovery_time counts from
// the end of that never ended — a recovery the run never came to.
func readsUnreached(s *scenario.Scenario, sla scenario.SLA, kind string, notRun, ended map[string]bool) bool {
	var named []string
	for _, p := range sla.Expr.Phases() {
		if _, isPhase := notRun[p]; isPhase { // not a process fault's window
			named = append(named, p)
		}
	}
	for _, p := range named {
		if notRun[p] {
			return true
		}
	}
	from := sla.During
	switch kind {
	case verify.ResultTimeTo:
		if from == "" && len(named) == 0 {
			from = faultPhase(s, true)
		}
		return from != "" && notRun[from]
	case verify.ResultRecoveryTime:
		if from == "" && len(named) == 0 {
			from = faultPhase(s, false)
		}
		for _, p := range append(named, from) {
			if p != "" && !ended[p] {
				return true
			}
		}
	}
	return false
}

// faultPhase is the first (or last) phase with faults, "" for none.
func faultPhase(s *scenario.Scenario, first bool) string {
	name := ""
	for _, ph := range s.Phases {
		if len(ph.Faults) > 0 {
			if first {
				return ph.Name
			}
			name = ph.Name
		}
	}
	return name
}

// notStartedReport is the report of a run that stopped (interrupted,
// failed) at a step of start-up, before any load: every phase and SLA is
// not run.
func notStartedReport(s *scenario.Scenario, began time.Time, reached string) *report.Report {
	target := s.Target.URL
	if s.Target.Builtin != "" {
		target = "builtin " + s.Target.Builtin
	}
	r := &report.Report{
		Schema: report.Schema, Scenario: s.Name, File: s.File, Version: version.String(), Seed: s.Seed, Target: target,
		StartedAt: began.UTC(), DurationS: time.Since(began).Seconds(), Reached: reached,
		SLAs: []report.SLA{}, Faults: []report.Fault{}, Series: []report.Second{},
	}
	p := newPlan(s)
	for _, span := range p.spans {
		r.Phases = append(r.Phases, report.Phase{Name: span.Name, StartS: report.Secs(span.Start), EndS: report.Secs(span.End), NotRun: true})
	}
	for _, sla := range s.SLAs {
		r.SLAs = append(r.SLAs, report.SLA{Name: sla.Name, Expect: sla.Expect, During: sla.During, NotRun: true})
	}
	return r
}

// firedSLA names the SLA require_faults_fired adds for the fault id.
func firedSLA(id string) string { return "fault " + id + " fired" }

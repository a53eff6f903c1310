package runner

import (
	"strconv"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/verify"
)

// buildReport turns a recording into the report model and decides the SLAs.
func buildReport(s *scenario.Scenario, target string, rec *record.Recording, board *inject.Board, events []record.Event, elapsed time.Duration) *report.Report {
	r := &report.Report{
		Schema:    report.Schema,
		Scenario:  s.Name,
		File:      s.File,
		Seed:      s.Seed,
		Target:    target,
		StartedAt: rec.Start.UTC(),
		DurationS: elapsed.Seconds(),
		Passed:    true,
		SLAs:      []report.SLA{},
		Faults:    []report.Fault{},
	}
	windows := map[string]window{}
	for i, span := range rec.Phases {
		end := min(span.End, elapsed)
		w := window{sum: rec.PhaseStats[i], seconds: max(end-span.Start, 0).Seconds()}
		windows[span.Name] = w
		r.Phases = append(r.Phases, phaseOf(span.Name, span.Start, end, w))
	}
	var runEnd time.Duration
	if n := len(rec.Phases); n > 0 {
		runEnd = min(rec.Phases[n-1].End, elapsed)
	}
	total := window{sum: rec.Total, seconds: runEnd.Seconds()}
	r.Total = phaseOf("", 0, runEnd, total)

	for _, sla := range s.SLAs {
		w := total
		if sla.During != "" {
			w = windows[sla.During]
		}
		res, err := sla.Expr.Eval(w)
		out := report.SLA{Name: sla.Name, Expect: sla.Expect, During: sla.During, Passed: res.Passed && err == nil, Observed: res.Observed, Values: res.Values}
		if err != nil {
			out.Error = err.Error()
		}
		r.Passed = r.Passed && out.Passed
		r.SLAs = append(r.SLAs, out)
	}

	spans := map[string]record.PhaseSpan{}
	for _, sp := range rec.Phases {
		spans[sp.Name] = sp
	}
	for _, a := range board.History() {
		st := a.Stats()
		// A scoped fault acts on exactly its phase's requests, so its
		// window is the phase, whatever lead the clock switched it on with.
		span, scoped := spans[a.Scope]
		f := report.Fault{
			ID:             a.ID,
			Kind:           a.Spec.Kind(),
			Phase:          a.Scope,
			Config:         configOf(a.Spec),
			Matched:        st.Matched,
			Injected:       st.Injected,
			ConfiguredRate: a.Spec.Selector().Percent.Fraction(),
			StartS:         st.Since.Sub(rec.Start).Seconds(),
		}
		if st.Matched > 0 {
			f.EffectiveRate = float64(st.Injected) / float64(st.Matched)
		}
		if !st.Until.IsZero() {
			f.EndS = st.Until.Sub(rec.Start).Seconds()
		}
		if scoped {
			f.StartS = span.Start.Seconds()
			f.EndS = min(span.End, elapsed).Seconds()
		}
		r.Faults = append(r.Faults, f)
	}
	for _, e := range events {
		r.Events = append(r.Events, report.Event{AtS: e.At.Seconds(), Source: e.Source, Kind: e.Kind, Detail: e.Detail})
	}
	for i, sec := range rec.Seconds {
		r.Series = append(r.Series, report.Second{
			T: i, Requests: sec.Requests, Successes: sec.Successes, Errors: sec.Errors,
			P50Ms: report.Ms(sec.Latency.P50), P90Ms: report.Ms(sec.Latency.P90), P95Ms: report.Ms(sec.Latency.P95),
			P99Ms: report.Ms(sec.Latency.P99), MaxMs: report.Ms(sec.Latency.Max),
		})
	}
	return r
}

func phaseOf(name string, start, end time.Duration, w window) report.Phase {
	l := w.sum.Latency
	p := report.Phase{
		Name: name, StartS: start.Seconds(), EndS: end.Seconds(),
		Requests: w.sum.Requests, Successes: w.sum.Successes, Errors: w.sum.Errors,
		SuccessRate: w.sum.SuccessRate(),
		LatencyMs: report.Latency{
			Min: report.Ms(l.Min), Mean: report.Ms(l.Mean), P50: report.Ms(l.P50), P90: report.Ms(l.P90),
			P95: report.Ms(l.P95), P99: report.Ms(l.P99), P999: report.Ms(l.P999), Max: report.Ms(l.Max),
		},
	}
	if w.seconds > 0 {
		p.RPS = float64(w.sum.Requests) / w.seconds
	}
	if len(w.sum.Codes) > 0 {
		p.Codes = map[string]uint64{}
		for c, n := range w.sum.Codes {
			p.Codes[strconv.Itoa(c)] = n
		}
	}
	return p
}

// window is a stretch of the run that SLAs are checked over; it supplies
// the load series of the SLA language in canonical units.
type window struct {
	sum     record.Summary
	seconds float64
}

var _ verify.Env = window{}

func (w window) Value(name string) (float64, bool) {
	s := w.sum
	has := s.Requests > 0
	switch name {
	case "requests":
		return float64(s.Requests), true
	case "rps":
		return float64(s.Requests) / w.seconds, w.seconds > 0
	case "success_rate":
		return s.SuccessRate(), has
	case "error_rate":
		return s.ErrorRate(), has
	case "fallback_rate":
		// The proxy has no fallbacks yet, so none of the requests were
		// served by one.
		return 0, has
	}
	l := s.Latency
	d, ok := map[string]time.Duration{
		"p50": l.P50, "p90": l.P90, "p95": l.P95, "p99": l.P99, "p999": l.P999,
		"min": l.Min, "mean": l.Mean, "max": l.Max,
	}[name]
	return d.Seconds(), ok && has
}

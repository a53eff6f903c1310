package runner

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/scrape"
)

// AbortError is why a safeguard SLA stopped a run: a steady-state
// hypothesis that did not hold before the faults, or an abort-on-breach SLA
// that failed while its phase ran.
type AbortError struct {
	SLA      string
	Phase    string
	Observed string
	// SteadyState is true for a failed steady-state check, false for a
	// breach.
	SteadyState bool
	// At is where on the run's timeline the run stopped: the end of the
	// phase whose steady state failed, which no later phase's request
	// passed, or the instant a breach was seen.
	At time.Duration
}

func (e *AbortError) Error() string {
	if e.SteadyState {
		return fmt.Sprintf("steady state not met after phase %s: %q (observed %s); the run stopped before any later fault", e.Phase, e.SLA, e.Observed)
	}
	return fmt.Sprintf("SLA %q breached during phase %s (observed %s); the run stopped and every fault was cleared", e.SLA, e.Phase, e.Observed)
}

// safeguards checks the SLAs marked steady_state (as their phase ends) and
// abort_on_breach (every second while their phase runs, over the phase so
// far), and aborts the run when one fails.
type safeguards struct {
	s        *scenario.Scenario
	plan     plan
	rec      *record.Recorder
	scraper  *scrape.Scraper
	guards   *guards
	start    time.Time
	abort    context.CancelCauseFunc
	progress io.Writer

	// gates[i] holds phase i's requests back until the steady-state
	// checks of phase i-1 pass; nil where there are none.
	gates []chan struct{}
}

func newSafeguards(s *scenario.Scenario, p plan, rec *record.Recorder, sc *scrape.Scraper, gd *guards, start time.Time, abort context.CancelCauseFunc, progress io.Writer) *safeguards {
	g := &safeguards{s: s, plan: p, rec: rec, scraper: sc, guards: gd, start: start, abort: abort, progress: progress, gates: make([]chan struct{}, len(p.spans))}
	for i := 1; i < len(p.spans); i++ {
		for _, sla := range s.SLAs {
			if sla.SteadyState && sla.During == p.spans[i-1].Name && g.gates[i] == nil {
				g.gates[i] = make(chan struct{})
			}
		}
	}
	return g
}

// hold is load.Options.Hold.
func (g *safeguards) hold(step int) <-chan struct{} {
	if step < len(g.gates) && g.gates[step] != nil {
		return g.gates[step]
	}
	return nil
}

// liveEnv is the run as recorded until now.
func (g *safeguards) liveEnv(now time.Duration) *runEnv {
	_, states, initial := g.guards.snapshot()
	maps.Copy(states, faultStates(g.plan, now))
	env := newRunEnv(g.rec, nil, g.plan.spans, now, g.scraper.Series(), states)
	env.initial = initial
	env.served = g.scraper.Names
	return env
}

func (g *safeguards) phaseEnded(i int) {
	span := g.plan.spans[i]
	passed := true
	defer func() {
		if passed && i+1 < len(g.gates) && g.gates[i+1] != nil {
			close(g.gates[i+1])
		}
	}()
	var env *runEnv
	for _, sla := range g.s.SLAs {
		if !sla.SteadyState || sla.During != span.Name {
			continue
		}
		if env == nil {
			env = g.liveEnv(span.End)
		}
		// No data counts as failing: a phase in which nothing succeeded is
		// not a steady state.
		if out := checkSLA(g.s, sla, env); !out.Passed {
			passed = false
			fmt.Fprintf(g.progress, "resctl: steady state not met: %s (observed %s)\n", sla.Name, out.Observed)
			g.abort(&AbortError{SLA: sla.Name, Phase: span.Name, Observed: out.Observed, SteadyState: true, At: span.End})
		}
	}
}

func (g *safeguards) watch(ctx context.Context) {
	var watched bool
	for _, sla := range g.s.SLAs {
		watched = watched || sla.AbortOnBreach
	}
	if !watched {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Since(g.start)
		var env *runEnv
		for _, sla := range g.s.SLAs {
			if !sla.AbortOnBreach {
				continue
			}
			w, ok := g.span(sla.During)
			// Judge a phase only once it has a full second behind it.
			if !ok || now < w.Start+time.Second || now >= w.End {
				continue
			}
			if env == nil {
				env = g.liveEnv(now.Truncate(time.Second))
			}
			out := checkSLA(g.s, sla, env)
			if !out.Passed && out.Error == "" { // no data yet is not a breach
				fmt.Fprintf(g.progress, "resctl: SLA breached: %s (observed %s); stopping\n", sla.Name, out.Observed)
				g.abort(&AbortError{SLA: sla.Name, Phase: sla.During, Observed: out.Observed, At: time.Since(g.start)})
				return
			}
		}
	}
}

func (g *safeguards) span(name string) (record.PhaseSpan, bool) {
	for _, s := range g.plan.spans {
		if s.Name == name {
			return s, true
		}
	}
	return record.PhaseSpan{}, false
}

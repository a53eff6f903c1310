package runner

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/scenario"
)

// faultLead is how long before its phase a fault is switched on, and after
// it switched off. Load requests carry their phase, and the board applies a
// phase's faults only to that phase's requests, so the lead costs nothing in
// precision; it makes sure a request sent at the first instant of a phase
// finds its faults already in place.
const faultLead = 250 * time.Millisecond

// phaseClock switches each phase's faults on and off on the timeline the
// load schedule runs on, and records phase and fault events.
type phaseClock struct {
	plan     plan
	proxies  *proxySet
	start    time.Time
	progress io.Writer
	// phaseEnded, if set, is called as each phase ends, before the next
	// one starts (steady-state checks).
	phaseEnded func(i int)
	// agent runs runtime faults inside the target; nil when it has none.
	agent   *agent.Client
	runtime map[string]runtimeFault // by fault id
	network map[string]networkFault // by fault id
	// procs carries out the process faults.
	procs *processActor

	mu  sync.Mutex
	evs []record.Event
}

func (c *phaseClock) event(source, kind, detail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, record.Event{At: time.Since(c.start), Source: source, Kind: kind, Detail: detail})
}

func (c *phaseClock) events() []record.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.evs)
}

// sleepUntil waits until offset from the start; false if ctx ended first.
func (c *phaseClock) sleepUntil(ctx context.Context, offset time.Duration) bool {
	return sleepCtx(ctx, time.Until(c.start.Add(offset)))
}

// arm puts every phase's request faults on their proxies' boards before
// the load starts, each acting only on the requests labelled with its
// phase. A request carries its phase from the schedule, so it meets its
// phase's faults even when the machine is so busy that the clock widens
// them late or narrows them before the generator, running late, has sent
// the phase's last request. Connection faults cannot read a label; the
// clock switches them on and off.
func (c *phaseClock) arm() {
	for i, span := range c.plan.spans {
		for _, f := range c.plan.faults[i] {
			if _, ok := f.spec.(inject.HTTPSpec); !ok || f.runtime != nil || f.network != nil {
				continue
			}
			pr := c.proxies.byName(f.proxy)
			if pr == nil {
				continue // the clock says so as the phase starts
			}
			opts := inject.ActivateOptions{Scope: span.Name, Armed: true, Since: c.start.Add(span.Start)}
			if _, err := pr.board.ActivateWith(f.id, f.spec, opts); err != nil {
				c.event("fault", "error", fmt.Sprintf("%s: %v", f.id, err))
			}
		}
	}
}

type action struct {
	at time.Duration
	do func()
}

func (c *phaseClock) run(ctx context.Context) {
	var acts []action
	current := -1 // the phase started and not yet ended
	for i, span := range c.plan.spans {
		faults := c.plan.faults[i]
		for _, f := range faults {
			if f.process != nil {
				acts = append(acts, c.procs.schedule(f, span)...)
				continue
			}
			if f.network != nil {
				acts = append(acts, c.networkWindows(f, span)...)
			}
			if f.runtime != nil || f.network != nil {
				continue // started with the phase, below
			}
			// Each proxy's faults are switched with its own lead (see
			// proxyRun.lead).
			pr := c.proxies.byName(f.proxy)
			if pr == nil {
				c.event("fault", "error", fmt.Sprintf("%s: no proxy named %q", f.id, f.proxy))
				continue
			}
			if _, armed := f.spec.(inject.HTTPSpec); armed {
				// Armed by arm before the load started: the clock only
				// switches it on and off for requests without a phase.
				acts = append(acts,
					action{max(span.Start-pr.lead, 0), func() {
						if pr.board.Widen(f.id) == nil {
							c.event("fault", "error", f.id+": not armed on its proxy")
						}
					}},
					action{span.End + pr.lead, func() { pr.board.Narrow(f.id) }})
				continue
			}
			acts = append(acts,
				action{max(span.Start-pr.lead, 0), func() {
					if _, err := pr.board.ActivateScoped(f.id, f.spec, span.Name); err != nil {
						c.event("fault", "error", fmt.Sprintf("%s: %v", f.id, err))
					}
				}},
				action{span.End + pr.lead, func() { pr.board.Deactivate(f.id) }})
		}
		acts = append(acts,
			action{span.Start, func() {
				current = i
				c.event("phase", "start", span.Name)
				var ids []string
				for _, f := range faults {
					if f.runtime != nil && !c.startRuntime(f, span) {
						continue
					}
					if f.network != nil && !c.startNetwork(f, span) {
						continue
					}
					c.event("fault", "on", f.id)
					ids = append(ids, f.id)
				}
				line := fmt.Sprintf("resctl: phase %s (%s)", span.Name, span.End-span.Start)
				if len(ids) > 0 {
					line += " faults: " + strings.Join(ids, ", ")
				}
				fmt.Fprintln(c.progress, line)
			}},
			action{span.End, func() {
				c.endPhase(i)
				current = -1
				if c.phaseEnded != nil {
					c.phaseEnded(i)
				}
			}},
		)
	}
	slices.SortStableFunc(acts, func(a, b action) int { return int(a.at - b.at) })
	for _, a := range acts {
		if !c.sleepUntil(ctx, a.at) {
			if current >= 0 {
				c.endPhase(current)
			}
			return
		}
		a.do()
	}
}

func (c *phaseClock) endPhase(i int) {
	for _, f := range c.plan.faults[i] {
		if f.runtime != nil {
			c.stopRuntime(f)
		}
		if f.process != nil {
			c.procs.end(f)
		}
		if f.network != nil && !c.stopNetwork(f) {
			continue // a flapping fault already off, or one never on
		}
		c.event("fault", "off", f.id)
	}
	c.event("phase", "end", c.plan.spans[i].Name)
}

// runtimeFault is a runtime fault the clock started, for the report.
type runtimeFault struct {
	phase    string
	kind     string
	params   map[string]any
	started  bool
	err      string
	from, to time.Duration
}

func (c *phaseClock) startRuntime(f plannedFault, span record.PhaseSpan) bool {
	rf := runtimeFault{phase: span.Name, kind: f.runtime.Kind(), params: f.params, from: time.Since(c.start)}
	defer func() {
		c.mu.Lock()
		c.runtime[f.id] = rf
		c.mu.Unlock()
	}()
	if c.agent == nil {
		rf.err = "the target has no agent"
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.agent.Start(ctx, f.id, rf.kind, span.End-span.Start+scenario.RuntimeGrace, f.params); err != nil {
		rf.err = err.Error()
		c.event("fault", "error", fmt.Sprintf("%s: %v", f.id, err))
		fmt.Fprintf(c.progress, "resctl: warning: runtime fault %s did not start: %v\n", f.id, err)
		return false
	}
	rf.started = true
	return true
}

func (c *phaseClock) stopRuntime(f plannedFault) {
	c.mu.Lock()
	rf, ok := c.runtime[f.id]
	c.mu.Unlock()
	if !ok || !rf.started {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.agent.Stop(ctx, f.id); err != nil {
		c.event("fault", "error", fmt.Sprintf("%s: stop: %v", f.id, err))
	}
	c.mu.Lock()
	rf.to = time.Since(c.start)
	c.runtime[f.id] = rf
	c.mu.Unlock()
}

// runtimeFaults returns the runtime faults started so far, by id.
func (c *phaseClock) runtimeFaults() map[string]runtimeFault {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.runtime)
}

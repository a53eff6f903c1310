package runner

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/record"
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
	board    *inject.Board
	start    time.Time
	progress io.Writer
	// phaseEnded, if set, is called as each phase ends, before the next
	// one starts (steady-state checks).
	phaseEnded func(i int)

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
	t := time.NewTimer(time.Until(c.start.Add(offset)))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
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
		acts = append(acts,
			action{max(span.Start-faultLead, 0), func() {
				for _, f := range faults {
					if _, err := c.board.ActivateScoped(f.id, f.spec, span.Name); err != nil {
						c.event("fault", "error", fmt.Sprintf("%s: %v", f.id, err))
					}
				}
			}},
			action{span.Start, func() {
				current = i
				c.event("phase", "start", span.Name)
				var ids []string
				for _, f := range faults {
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
			action{span.End + faultLead, func() {
				for _, f := range faults {
					c.board.Deactivate(f.id)
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
		c.event("fault", "off", f.id)
	}
	c.event("phase", "end", c.plan.spans[i].Name)
}

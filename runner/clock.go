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

// phaseClock switches each phase's faults on when the phase starts and off
// when it ends, on the same timeline the load schedule runs on, and records
// both as events.
type phaseClock struct {
	plan     plan
	board    *inject.Board
	start    time.Time
	progress io.Writer

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

func (c *phaseClock) run(ctx context.Context) {
	for i, span := range c.plan.spans {
		if !c.sleepUntil(ctx, span.Start) {
			return
		}
		c.event("phase", "start", span.Name)
		var names []string
		for _, f := range c.plan.faults[i] {
			if _, err := c.board.Activate(f.id, f.spec); err != nil {
				c.event("fault", "error", fmt.Sprintf("%s: %v", f.id, err))
				continue
			}
			c.event("fault", "on", f.id)
			names = append(names, f.id)
		}
		line := fmt.Sprintf("resctl: phase %s (%s)", span.Name, (span.End - span.Start).String())
		if len(names) > 0 {
			line += " faults: " + strings.Join(names, ", ")
		}
		fmt.Fprintln(c.progress, line)
		ok := c.sleepUntil(ctx, span.End)
		for _, f := range c.plan.faults[i] {
			if c.board.Deactivate(f.id) != nil {
				c.event("fault", "off", f.id)
			}
		}
		c.event("phase", "end", span.Name)
		if !ok {
			return
		}
	}
}

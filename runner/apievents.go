package runner

import (
	"fmt"
	"sync"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/record"
)

// maxAPIEvents bounds the events a run keeps of what came through its
// admin API: a client that adds and removes faults in a loop cannot grow
// the report without end.
const maxAPIEvents = 10_000

// apiEvents keeps what people and tools did through the run's admin API
// while it went on — marks, and faults added, changed, removed, cleared
// or ended by their TTL — for the run's own events, beside the phases'
// faults and the guards' transitions. The runner's own faults are set on
// the boards directly, so the admin API records none of them.
type apiEvents struct {
	mu      sync.Mutex
	evs     []harness.Event
	dropped int
}

// add is the admin API's AdminOptions.OnEvent: quick, under its lock.
func (a *apiEvents) add(e harness.Event) {
	if e.Source != harness.SourceMark && e.Source != harness.SourceFault {
		return // guard transitions reach the run through its own observers
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.evs) == maxAPIEvents {
		a.dropped++
		return
	}
	a.evs = append(a.evs, e)
}

// events are the events kept, timed from the run's start: a mark as a
// mark, a fault as its kind of change ("added" …) with its id, proxy and
// parameters. The last says how many more there were, if any.
func (a *apiEvents) events(start time.Time) []record.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]record.Event, 0, len(a.evs)+1)
	at := func(e harness.Event) time.Duration { return max(e.At.Sub(start), 0) } // a mark made while the run set up
	for _, e := range a.evs {
		if e.Source == harness.SourceMark {
			out = append(out, record.Event{At: at(e), Source: "mark", Kind: "mark", Detail: e.Detail})
			continue
		}
		out = append(out, record.Event{At: at(e), Source: "fault", Kind: e.Kind, Name: e.ID,
			Detail: e.ID + " on " + e.Proxy + " (admin API): " + e.Detail})
	}
	if a.dropped > 0 && len(a.evs) > 0 {
		last := a.evs[len(a.evs)-1]
		out = append(out, record.Event{At: at(last), Source: "admin", Kind: "dropped",
			Detail: fmt.Sprintf("%d more marks and faults through the admin API than a run keeps", a.dropped)})
	}
	return out
}

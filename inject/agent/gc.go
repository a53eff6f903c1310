package agent

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// GCSpec puts pressure on the garbage collector: forced collections every
// Interval, and/or a lower GOGC percentage while the fault lasts.
type GCSpec struct {
	// Interval forces a collection this often; zero forces none.
	Interval time.Duration `yaml:"interval"`
	// Percent sets GOGC while the fault runs (10 collects ten times as
	// often as the default 100); zero leaves it.
	Percent int `yaml:"percent"`
}

// Kind implements Spec.
func (*GCSpec) Kind() string { return "gc" }

// Check implements Spec.
func (s *GCSpec) Check(_ Options, problem func(field, msg string)) {
	if s.Interval < 0 || (s.Interval > 0 && s.Interval < time.Millisecond) {
		problem("interval", "must be at least 1ms")
	}
	if s.Percent < 0 {
		problem("percent", "must not be negative")
	}
	if s.Interval == 0 && s.Percent == 0 {
		problem("interval", "set interval, percent or both")
	}
}

// gcPercent serialises GOGC changes: two gc faults must restore the value
// the service had, not each other's.
var gcPercent struct {
	sync.Mutex
	saved  int
	active int
}

func (s *GCSpec) start() func() {
	var stops []func()
	if s.Percent > 0 {
		gcPercent.Lock()
		if gcPercent.active == 0 {
			gcPercent.saved = debug.SetGCPercent(s.Percent)
		} else {
			debug.SetGCPercent(s.Percent)
		}
		gcPercent.active++
		gcPercent.Unlock()
		stops = append(stops, func() {
			gcPercent.Lock()
			defer gcPercent.Unlock()
			if gcPercent.active--; gcPercent.active == 0 {
				debug.SetGCPercent(gcPercent.saved)
			}
		})
	}
	if s.Interval > 0 {
		stops = append(stops, workers(1, func(ctx context.Context) {
			t := time.NewTicker(s.Interval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					runtime.GC()
				case <-ctx.Done():
					return
				}
			}
		}))
	}
	return func() {
		for _, f := range stops {
			f()
		}
	}
}

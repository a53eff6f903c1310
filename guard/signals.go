package guard

import (
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// MemorySignal names a Go runtime memory figure the memory policy watches.
type MemorySignal string

// Memory signals, each read from runtime/metrics.
const (
	// MemoryTotal is the memory the runtime holds from the OS minus what it
	// has returned: what GOMEMLIMIT is compared against.
	MemoryTotal MemorySignal = "total"
	// MemoryHeap is the heap held by objects, live or not yet swept.
	MemoryHeap MemorySignal = "heap"
	// MemoryLive is the heap found live by the last GC: the steadiest
	// signal, updated once per GC cycle.
	MemoryLive MemorySignal = "live"
)

// Signals reads the process's resource usage for the memory and shed
// policies. Tests and embedders substitute their own (cgroup figures, a
// fake); the default reads runtime/metrics and the OS.
type Signals interface {
	// Memory returns the current bytes of a signal.
	Memory(s MemorySignal) uint64
	// MemoryLimit returns the runtime's memory limit (GOMEMLIMIT), or
	// math.MaxInt64 when none is set.
	MemoryLimit() uint64
	// CPUTime returns the CPU time the process has used so far.
	CPUTime() time.Duration
	// CPUs is how many CPUs the process may use at once.
	CPUs() int
}

// runtimeSignals reads runtime/metrics rather than runtime.ReadMemStats,
// which stops the world.
type runtimeSignals struct {
	mu      sync.Mutex
	samples []metrics.Sample
}

const (
	metricTotal      = "/memory/classes/total:bytes"
	metricReleased   = "/memory/classes/heap/released:bytes"
	metricHeap       = "/memory/classes/heap/objects:bytes"
	metricLive       = "/gc/heap/live:bytes"
	metricLimit      = "/gc/gomemlimit:bytes"
	metricGoroutines = "/sched/goroutines:goroutines"
)

func newRuntimeSignals() *runtimeSignals {
	names := []string{metricTotal, metricReleased, metricHeap, metricLive, metricLimit, metricGoroutines}
	s := &runtimeSignals{samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		s.samples[i].Name = n
	}
	return s
}

func (s *runtimeSignals) read() [6]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	metrics.Read(s.samples)
	var v [6]uint64
	for i, sm := range s.samples {
		if sm.Value.Kind() == metrics.KindUint64 {
			v[i] = sm.Value.Uint64()
		}
	}
	return v
}

func (s *runtimeSignals) Memory(sig MemorySignal) uint64 {
	v := s.read()
	switch sig {
	case MemoryHeap:
		return v[2]
	case MemoryLive:
		return v[3]
	default:
		return v[0] - v[1]
	}
}

func (s *runtimeSignals) MemoryLimit() uint64 {
	if l := s.read()[4]; l > 0 {
		return l
	}
	return math.MaxInt64
}

// Goroutines implements GoroutineSignal.
func (s *runtimeSignals) Goroutines() int { return int(s.read()[5]) }

func (s *runtimeSignals) CPUTime() time.Duration { return processCPUTime() }

func (s *runtimeSignals) CPUs() int { return runtime.GOMAXPROCS(0) }

// defaultSignals is shared: reading runtime/metrics is the same for every
// policy of the process.
var defaultSignals = sync.OnceValue(func() Signals { return newRuntimeSignals() })

func signalsOf(o Options) Signals {
	if o.Signals != nil {
		return o.Signals
	}
	return defaultSignals()
}

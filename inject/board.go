package inject

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FaultHeader is set on responses a fault answered itself, naming the kind,
// so a client or a report can tell an injected error from a real one.
const FaultHeader = "X-Resctl-Fault"

// ErrDuplicate is returned by Board.Activate when a fault with the same ID is
// already active.
var ErrDuplicate = errors.New("fault already active")

// seeded is implemented by faults that draw random numbers of their own
// (jitter, distributions); the Board hands each one a generator derived from
// the run's seed and the activation's ID, so runs are reproducible.
type seeded interface{ seed(*rand.Rand) }

// Activation is one fault switched on in a Board. It keeps counting after it
// is switched off, so a report can say what the fault did.
type Activation struct {
	ID   string
	Spec Spec
	// Scope, when set, limits the fault to requests labelled with it (see
	// Board.ScopeByHeader); unlabelled requests see it while it is active.
	Scope string

	fault HTTPFault
	match Match
	prob  float64

	mu  sync.Mutex
	rng *rand.Rand

	matched  atomic.Uint64
	injected atomic.Uint64

	since time.Time
	until atomic.Pointer[time.Time]
}

// Stats is what an activation did.
type Stats struct {
	// Matched counts requests the fault's selector matched.
	Matched uint64 `json:"matched"`
	// Injected counts requests the fault acted on.
	Injected uint64 `json:"injected"`
	// Since and Until bound the time the fault was active; Until is zero
	// while it still is.
	Since time.Time `json:"since"`
	Until time.Time `json:"until,omitzero"`
}

// Stats returns a snapshot of the activation's counters.
func (a *Activation) Stats() Stats {
	s := Stats{Matched: a.matched.Load(), Injected: a.injected.Load(), Since: a.since}
	if u := a.until.Load(); u != nil {
		s.Until = *u
	}
	return s
}

func (a *Activation) roll() bool {
	if a.prob >= 1 {
		return true
	}
	if a.prob <= 0 {
		return false
	}
	a.mu.Lock()
	v := a.rng.Float64()
	a.mu.Unlock()
	return v < a.prob
}

// Board is the switchboard: the set of faults active on a proxy. It is safe
// for concurrent use; requests read the active set without taking a lock.
type Board struct {
	seed        uint64
	now         func() time.Time
	scopeHeader string

	mu      sync.Mutex // serialises writers of active and history
	active  atomic.Pointer[[]*Activation]
	history []*Activation // every activation ever made, for metrics and reports
}

// NewBoard returns an empty Board whose faults draw their randomness from
// seed. now is the clock used to stamp activations; nil means time.Now.
func NewBoard(seed uint64, now func() time.Time) *Board {
	if now == nil {
		now = time.Now
	}
	b := &Board{seed: seed, now: now}
	b.active.Store(&[]*Activation{})
	return b
}

// ScopeByHeader makes the board read each request's scope from the named
// header (and remove it before the request goes on). A scoped fault then
// acts only on requests labelled with its scope. The runner labels load
// requests with their phase, so a request sent in the last instant of a
// phase meets that phase's faults, not the next one's. Call it before
// serving traffic.
func (b *Board) ScopeByHeader(name string) { b.scopeHeader = name }

// Activate switches a fault on under id. The spec must have passed Check.
func (b *Board) Activate(id string, spec Spec) (*Activation, error) {
	return b.ActivateScoped(id, spec, "")
}

// ActivateScoped switches a fault on under id for requests of one scope.
func (b *Board) ActivateScoped(id string, spec Spec, scope string) (*Activation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := *b.active.Load()
	for _, a := range cur {
		if a.ID == id {
			return nil, fmt.Errorf("activate %q: %w", id, ErrDuplicate)
		}
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	a := &Activation{
		ID:    id,
		Spec:  spec,
		Scope: scope,
		fault: spec.Build(),
		match: spec.Selector(),
		prob:  spec.Selector().Percent.Fraction(),
		rng:   rand.New(rand.NewPCG(b.seed, h.Sum64())),
		since: b.now(),
	}
	if s, ok := a.fault.(seeded); ok {
		s.seed(rand.New(rand.NewPCG(b.seed^0x9e3779b97f4a7c15, h.Sum64())))
	}
	next := append(slices.Clip(cur), a)
	b.active.Store(&next)
	b.history = append(b.history, a)
	return a, nil
}

// Deactivate switches the fault with the given id off. It returns nil when
// no such fault is active.
func (b *Board) Deactivate(id string) *Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := *b.active.Load()
	i := slices.IndexFunc(cur, func(a *Activation) bool { return a.ID == id })
	if i < 0 {
		return nil
	}
	a := cur[i]
	next := slices.Delete(slices.Clone(cur), i, i+1)
	b.active.Store(&next)
	t := b.now()
	a.until.Store(&t)
	return a
}

// Clear switches every fault off and returns the ones that were active.
func (b *Board) Clear() []*Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := *b.active.Load()
	b.active.Store(&[]*Activation{})
	t := b.now()
	for _, a := range cur {
		a.until.Store(&t)
	}
	return cur
}

// Active returns the faults active now, in activation order.
func (b *Board) Active() []*Activation { return slices.Clone(*b.active.Load()) }

// History returns every activation the board has made, in order.
func (b *Board) History() []*Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.history)
}

// Middleware applies the active faults to requests before next serves them.
func (b *Board) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var scope string
		if b.scopeHeader != "" {
			if scope = r.Header.Get(b.scopeHeader); scope != "" {
				r.Header.Del(b.scopeHeader)
			}
		}
		for _, a := range *b.active.Load() {
			if a.Scope != "" && scope != "" && a.Scope != scope {
				continue
			}
			if !a.match.matches(r) {
				continue
			}
			a.matched.Add(1)
			if !a.roll() {
				continue
			}
			a.injected.Add(1)
			if a.fault.Inject(w, r) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

var (
	descActive   = prometheus.NewDesc("resctl_fault_active", "Whether a fault is switched on (1) or off (0).", []string{"fault", "kind"}, nil)
	descMatched  = prometheus.NewDesc("resctl_fault_matched_total", "Requests a fault's selector matched.", []string{"fault", "kind"}, nil)
	descInjected = prometheus.NewDesc("resctl_fault_injected_total", "Requests a fault acted on.", []string{"fault", "kind"}, nil)
)

// Describe implements prometheus.Collector.
func (b *Board) Describe(ch chan<- *prometheus.Desc) {
	ch <- descActive
	ch <- descMatched
	ch <- descInjected
}

// Collect implements prometheus.Collector: one series per fault ever
// activated, so counters stay visible after the fault is switched off.
func (b *Board) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	hist := b.History()
	for i := len(hist) - 1; i >= 0; i-- { // the newest activation of an id wins
		a := hist[i]
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		kind := a.Spec.Kind()
		on := 1.0
		if a.until.Load() != nil {
			on = 0
		}
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, on, a.ID, kind)
		ch <- prometheus.MustNewConstMetric(descMatched, prometheus.CounterValue, float64(a.matched.Load()), a.ID, kind)
		ch <- prometheus.MustNewConstMetric(descInjected, prometheus.CounterValue, float64(a.injected.Load()), a.ID, kind)
	}
}

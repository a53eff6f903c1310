package guard

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// MemoryConfig configures degradation by memory pressure. A Go runtime
// memory signal, smoothed with an EWMA, is compared against a yellow and a
// red level; at each level the policy takes that level's action. A level
// is reached when any of its triggers is, and left when the signal falls
// Hysteresis below every trigger, so that it does not flap at the edge.
type MemoryConfig struct {
	// Signal is the figure watched: total (default), heap or live.
	Signal MemorySignal `yaml:"signal"`
	// Interval is how often the signal is read.
	Interval time.Duration `yaml:"interval"`
	// Smoothing is the weight of each new reading in the EWMA.
	Smoothing  quantity.Percent `yaml:"smoothing"`
	Hysteresis quantity.Percent `yaml:"hysteresis"`
	Yellow     MemoryLevel      `yaml:"yellow"`
	Red        MemoryLevel      `yaml:"red"`
	// Critical lists route prefixes no action ever rejects (health checks,
	// payments); a Request marked Critical is spared too.
	Critical []string `yaml:"critical"`
}

// MemoryLevel is one watermark: the triggers that reach it and the action
// taken there. Unset triggers (zero) are off.
type MemoryLevel struct {
	// Bytes is an absolute level.
	Bytes quantity.Bytes `yaml:"bytes"`
	// Limit is a share of the runtime's memory limit (GOMEMLIMIT).
	Limit quantity.Percent `yaml:"limit"`
	// Growth is a level of memory growing unusually fast.
	Growth GrowthLevel `yaml:"growth"`
	// Action is what the policy does at the level.
	Action MemoryAction `yaml:"action"`
}

// GrowthLevel is reached when memory grows Times faster than the
// Percentile of the growth rates seen in the last Baseline readings while
// the policy was green (and at least Floor per second), for a leak or a
// burst the absolute levels would catch too late.
type GrowthLevel struct {
	// Times is how many times faster than usual memory must grow to reach
	// the level.
	Times float64 `yaml:"times"`
	// Percentile of the growth rates seen while green that is "usual".
	Percentile quantity.Percent `yaml:"percentile"`
	// Baseline is how many of the last green readings the usual growth is
	// drawn from.
	Baseline int `yaml:"baseline"`
	// Floor is the least growth per second that can reach the level.
	Floor quantity.Bytes `yaml:"floor"`
}

// MemoryAction is what a level does to the calls it sees.
type MemoryAction struct {
	// Shed rejects this share of non-critical calls.
	Shed quantity.Percent `yaml:"shed"`
	// RejectNonCritical rejects every call not on a critical route.
	RejectNonCritical bool `yaml:"reject_noncritical"`
	// MaxInFlight lowers the concurrency limit to this many calls; 0
	// leaves concurrency alone.
	MaxInFlight int `yaml:"max_in_flight"`
}

func (l *MemoryLevel) set() bool { return l.Bytes > 0 || l.Limit > 0 || l.Growth.Times > 0 }

// DefaultMemoryConfig sheds a tenth of the calls at 80% of GOMEMLIMIT and
// half of them, with every non-critical route, at 95%.
func DefaultMemoryConfig() MemoryConfig {
	growth := GrowthLevel{Percentile: 99, Baseline: 60, Floor: 1 << 20}
	return MemoryConfig{
		Signal:     MemoryTotal,
		Interval:   time.Second,
		Smoothing:  30,
		Hysteresis: 5,
		Yellow:     MemoryLevel{Limit: 80, Growth: growth, Action: MemoryAction{Shed: 10}},
		Red:        MemoryLevel{Limit: 95, Growth: growth, Action: MemoryAction{Shed: 50, RejectNonCritical: true}},
	}
}

var _ Config = (*MemoryConfig)(nil)

// Kind implements Config.
func (*MemoryConfig) Kind() string { return "memory" }

// Check implements Config.
func (c *MemoryConfig) Check(problem func(field, msg string)) {
	switch c.Signal {
	case MemoryTotal, MemoryHeap, MemoryLive:
	default:
		problem("signal", fmt.Sprintf("unknown signal %q; use total, heap or live", c.Signal))
	}
	if c.Interval <= 0 {
		problem("interval", "must be above zero, e.g. 1s")
	}
	checkPercent("smoothing", c.Smoothing, problem)
	if c.Smoothing == 0 {
		problem("smoothing", "must be above 0%, or the smoothed value never moves")
	}
	checkPercent("hysteresis", c.Hysteresis, problem)
	if c.Hysteresis == 100 {
		problem("hysteresis", "must be below 100%, or a level is never left")
	}
	c.Yellow.check(prefixed("yellow", problem))
	c.Red.check(prefixed("red", problem))
	if !c.Yellow.set() && !c.Red.set() {
		problem("red", "set bytes, limit or growth on yellow or red: no level can be reached")
	}
	if c.Yellow.Bytes > 0 && c.Red.Bytes > 0 && c.Yellow.Bytes > c.Red.Bytes {
		problem("yellow.bytes", fmt.Sprintf("%v is above red.bytes %v", c.Yellow.Bytes, c.Red.Bytes))
	}
	if c.Yellow.Limit > 0 && c.Red.Limit > 0 && c.Yellow.Limit > c.Red.Limit {
		problem("yellow.limit", fmt.Sprintf("%v is above red.limit %v", c.Yellow.Limit, c.Red.Limit))
	}
	if c.Yellow.Growth.Times > 0 && c.Red.Growth.Times > 0 && c.Yellow.Growth.Times > c.Red.Growth.Times {
		problem("yellow.growth.times", fmt.Sprintf("%v is above red.growth.times %v", c.Yellow.Growth.Times, c.Red.Growth.Times))
	}
	for i, p := range c.Critical {
		if !strings.HasPrefix(p, "/") {
			problem(fmt.Sprintf("critical[%d]", i), "must start with /")
		}
	}
}

func (l *MemoryLevel) check(problem func(field, msg string)) {
	if l.Bytes < 0 {
		problem("bytes", "must not be negative")
	}
	checkPercent("limit", l.Limit, problem)
	g := l.Growth
	if g.Times != 0 {
		if math.IsNaN(g.Times) || g.Times <= 1 {
			problem("growth.times", "must be above 1 (growth this many times the baseline)")
		}
		checkPercent("growth.percentile", g.Percentile, problem)
		if g.Percentile == 0 {
			problem("growth.percentile", "must be above 0%")
		}
		if g.Baseline < 2 {
			problem("growth.baseline", "must be at least 2 readings")
		}
		if g.Floor < 0 {
			problem("growth.floor", "must not be negative")
		}
	}
	checkPercent("action.shed", l.Action.Shed, problem)
	if l.Action.MaxInFlight < 0 {
		problem("action.max_in_flight", "must not be negative (0 leaves concurrency alone)")
	}
}

// Build implements Config.
func (c *MemoryConfig) Build(name string, o Options) (Policy, error) {
	return build(NewMemory(name, *c, o))
}

// Memory states.
const (
	memGreen int32 = iota
	memYellow
	memRed
)

// Memory rejection reasons.
const (
	reasonMemShed = iota
	reasonNonCritical
	reasonMemInFlight
)

// Memory degrades service as memory fills. The signal is read lazily by
// the first call after each interval, so the policy starts no goroutine;
// its states are "green", "yellow" and "red".
type Memory struct {
	core
	cfg     MemoryConfig
	signals Signals
	rand    *rng
	limit   uint64 // GOMEMLIMIT at construction

	next     atomic.Int64 // when the next reading is due
	inFlight atomic.Int64
	smoothed atomic.Uint64 // bytes, for metrics

	smu      sync.Mutex // guards the readings below
	ewma     float64
	lastAt   int64
	growth   float64
	baseline []float64 // ring of green growth rates
	bpos     int
}

var _ Policy = (*Memory)(nil)

// NewMemory returns a green memory policy. A level given as a share of
// GOMEMLIMIT needs the process to have one.
func NewMemory(name string, c MemoryConfig, o Options) (*Memory, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	m := &Memory{cfg: c, signals: signalsOf(o), rand: newRNG(o.Seed, name)}
	m.init("memory", name, o, []string{"green", "yellow", "red"}, []string{"shed", "noncritical", "in_flight"}, unavailable(ErrShed))
	m.limit = m.signals.MemoryLimit()
	var ps []Problem
	for _, l := range []struct {
		name string
		lvl  MemoryLevel
	}{{"yellow", c.Yellow}, {"red", c.Red}} {
		// A share of GOMEMLIMIT counts only when the process has one; a
		// level that has nothing else to trigger on cannot do without.
		if l.lvl.Limit > 0 && m.limit >= math.MaxInt64 && l.lvl.Bytes == 0 && l.lvl.Growth.Times == 0 {
			ps = append(ps, Problem{l.name + ".limit", "the process has no memory limit (GOMEMLIMIT): set one, or give the level in bytes"})
		}
	}
	if y, r := m.bytesOf(c.Yellow), m.bytesOf(c.Red); len(ps) == 0 && y > 0 && r > 0 && y > r {
		ps = append(ps, Problem{"yellow", fmt.Sprintf("is reached at %v, above red at %v (GOMEMLIMIT %v)", quantity.Bytes(y), quantity.Bytes(r), quantity.Bytes(m.limit))})
	}
	if len(ps) > 0 {
		return nil, &ConfigError{Kind: "memory", Name: name, Problems: ps}
	}
	for _, g := range []GrowthLevel{c.Yellow.Growth, c.Red.Growth} {
		if g.Times > 0 {
			m.baseline = make([]float64, 0, max(g.Baseline, cap(m.baseline)))
		}
	}
	now := m.clk.nanos()
	m.ewma = float64(m.signals.Memory(c.Signal))
	m.smoothed.Store(uint64(m.ewma))
	m.lastAt = now
	m.next.Store(now + int64(c.Interval))
	return m, nil
}

// bytesOf is the lowest absolute trigger of a level, or 0.
func (m *Memory) bytesOf(l MemoryLevel) float64 {
	var b float64
	if l.Bytes > 0 {
		b = float64(l.Bytes)
	}
	if l.Limit > 0 && m.limit < math.MaxInt64 {
		v := l.Limit.Fraction() * float64(m.limit)
		if b == 0 || v < b {
			b = v
		}
	}
	return b
}

// Bytes is the smoothed signal.
func (m *Memory) Bytes() uint64 { return m.smoothed.Load() }

// InFlight is how many admitted calls have not ended.
func (m *Memory) InFlight() int64 { return m.inFlight.Load() }

// Limit is the concurrency limit of the current level, or 0 for none.
func (m *Memory) Limit() float64 {
	if a := m.action(m.state.Load()); a != nil {
		return float64(a.MaxInFlight)
	}
	return 0 // green: no action, no limit
}

func (m *Memory) action(level int32) *MemoryAction {
	switch level {
	case memYellow:
		return &m.cfg.Yellow.Action
	case memRed:
		return &m.cfg.Red.Action
	}
	return nil
}

// Acquire implements Policy.
func (m *Memory) Acquire(_ context.Context, r *Request) (Permit, error) {
	now := m.clk.nanos()
	if next := m.next.Load(); now >= next && m.next.CompareAndSwap(next, now+int64(m.cfg.Interval)) {
		m.sample(now)
	}
	n := m.inFlight.Add(1)
	if a := m.action(m.state.Load()); a != nil && !m.critical(r) {
		reason := -1
		switch {
		case a.RejectNonCritical:
			reason = reasonNonCritical
		case a.MaxInFlight > 0 && n > int64(a.MaxInFlight):
			reason = reasonMemInFlight
		case a.Shed > 0 && m.rand.float64() < a.Shed.Fraction():
			reason = reasonMemShed
		}
		if reason >= 0 {
			m.inFlight.Add(-1)
			return Permit{}, m.reject(reason, 0)
		}
	}
	m.admitted.Add(1)
	return Permit{}, nil
}

func (*Memory) instant() {}

func (m *Memory) critical(r *Request) bool {
	if r == nil {
		return false
	}
	if r.Critical {
		return true
	}
	for _, p := range m.cfg.Critical {
		if strings.HasPrefix(r.Route, p) {
			return true
		}
	}
	return false
}

// Release implements Policy.
func (m *Memory) Release(Permit, Outcome) { m.inFlight.Add(-1) }

func (*Memory) timeless() {}

// sample reads the signal, updates the EWMA and the growth rate, and moves
// between levels.
func (m *Memory) sample(now int64) {
	v := float64(m.signals.Memory(m.cfg.Signal))
	m.smu.Lock()
	defer m.smu.Unlock()
	prev := m.ewma
	a := m.cfg.Smoothing.Fraction()
	m.ewma = a*v + (1-a)*prev
	m.smoothed.Store(uint64(m.ewma))
	if dt := float64(now-m.lastAt) / float64(time.Second); dt > 0 {
		m.growth = (m.ewma - prev) / dt
	}
	m.lastAt = now

	cur := m.state.Load()
	next := memGreen
	switch {
	case m.reached(&m.cfg.Red, cur >= memRed):
		next = memRed
	case m.reached(&m.cfg.Yellow, cur >= memYellow):
		next = memYellow
	}
	if next == memGreen && cur == memGreen && cap(m.baseline) > 0 {
		// Learn only from calm readings, so that a leak does not become
		// its own baseline.
		if len(m.baseline) < cap(m.baseline) {
			m.baseline = append(m.baseline, m.growth)
		} else {
			m.baseline[m.bpos] = m.growth
			m.bpos = (m.bpos + 1) % len(m.baseline)
		}
	}
	if next != cur {
		m.mu.Lock()
		m.transition(cur, next, now)
		m.mu.Unlock()
	}
}

// reached says whether the smoothed signal is at a level; staying (the
// policy is at that level or above) asks the signal to fall Hysteresis
// below a trigger before the level is left.
func (m *Memory) reached(l *MemoryLevel, staying bool) bool {
	if !l.set() {
		return false
	}
	k := 1.0
	if staying {
		k = 1 - m.cfg.Hysteresis.Fraction()
	}
	if b := m.bytesOf(*l); b > 0 && m.ewma >= b*k {
		return true
	}
	g := l.Growth
	if g.Times == 0 || len(m.baseline) < g.Baseline {
		return false
	}
	sorted := m.recent(g.Baseline)
	slices.Sort(sorted)
	p := sorted[min(len(sorted)-1, int(math.Ceil(g.Percentile.Fraction()*float64(len(sorted))))-1)]
	threshold := g.Times * max(p, float64(g.Floor))
	return m.growth >= threshold*k
}

// recent copies the last k growth rates of the baseline ring.
func (m *Memory) recent(k int) []float64 {
	n := len(m.baseline)
	out := make([]float64, 0, k)
	if n < cap(m.baseline) {
		return append(out, m.baseline[n-k:]...)
	}
	for i := range k {
		out = append(out, m.baseline[(m.bpos-k+i+n)%n])
	}
	return out
}

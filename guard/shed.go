package guard

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/quantity"
)

// ShedConfig configures BBR-style adaptive load shedding (as in Kratos'
// bbr limiter, after TCP BBR): the capacity of the upstream path is the
// most calls completed in a bucket × the least latency of a bucket (the
// bandwidth-delay product); while the CPU is busy, or shortly after
// shedding, calls beyond that capacity in flight are rejected.
type ShedConfig struct {
	// CPUThreshold is the CPU usage above which in-flight calls are
	// judged against capacity; 0 judges them always.
	CPUThreshold quantity.Percent `yaml:"cpu_threshold"`
	// Window and Buckets say over how long, and how finely, completed
	// calls and their latencies are counted.
	Window time.Duration `yaml:"window"`
	// Buckets is how many parts Window is counted in.
	Buckets int `yaml:"buckets"`
	// CoolOff keeps shedding judged for this long after the last shed
	// call even when the CPU has calmed, so that a burst is not let
	// through the moment usage dips.
	CoolOff time.Duration `yaml:"cool_off"`
	// CPUInterval is how often CPU usage is read; CPUSmoothing the weight
	// of each reading in the EWMA.
	CPUInterval time.Duration `yaml:"cpu_interval"`
	// CPUSmoothing is the weight of each CPU reading in the moving average.
	CPUSmoothing quantity.Percent `yaml:"cpu_smoothing"`
}

// DefaultShedConfig is Kratos' tuning: 80% CPU, ten seconds in 100 buckets,
// one second of cool-off.
func DefaultShedConfig() ShedConfig {
	return ShedConfig{
		CPUThreshold: 80,
		Window:       10 * time.Second,
		Buckets:      100,
		CoolOff:      time.Second,
		CPUInterval:  250 * time.Millisecond,
		CPUSmoothing: 20,
	}
}

var _ Config = (*ShedConfig)(nil)

// Kind implements Config.
func (*ShedConfig) Kind() string { return "shed" }

// Check implements Config.
func (c *ShedConfig) Check(problem func(field, msg string)) {
	checkPercent("cpu_threshold", c.CPUThreshold, problem)
	if c.Window <= 0 {
		problem("window", "must be above zero, e.g. 10s")
	}
	if c.Buckets < 2 {
		problem("buckets", "must be at least 2")
	} else if c.Window > 0 && c.Window/time.Duration(c.Buckets) < time.Millisecond {
		problem("buckets", fmt.Sprintf("%d buckets in %v are shorter than a millisecond", c.Buckets, c.Window))
	}
	if c.CoolOff < 0 {
		problem("cool_off", "must not be negative")
	}
	if c.CPUInterval <= 0 {
		problem("cpu_interval", "must be above zero, e.g. 250ms")
	}
	checkPercent("cpu_smoothing", c.CPUSmoothing, problem)
	if c.CPUSmoothing == 0 {
		problem("cpu_smoothing", "must be above 0%, or the smoothed usage never moves")
	}
}

// Build implements Config.
func (c *ShedConfig) Build(name string, o Options) (Policy, error) {
	return build(NewShed(name, *c, o))
}

// Shed is BBR-style load shedding. Its states are "passing" and
// "shedding" (it shed a call within the cool-off).
type Shed struct {
	core
	pressure
	cfg     ShedConfig
	signals Signals
	width   int64

	inFlight atomic.Int64
	lastDrop atomic.Int64 // 0: not cooling off
	buckets  []shedBucket

	capEpoch atomic.Int64 // bucket the cached capacity was computed in
	capacity atomic.Int64

	cpuNext  atomic.Int64
	cpuBits  atomic.Uint64 // smoothed usage 0..1, float64 bits
	cpuLast  atomic.Int64  // CPU time at the last reading
	cpuLastT atomic.Int64  // clock at the last reading
}

type shedBucket struct {
	epoch atomic.Int64
	pass  atomic.Int64
	rt    atomic.Int64 // nanoseconds, summed
}

var _ Policy = (*Shed)(nil)

// NewShed returns a shed policy that has seen nothing and so sheds nothing.
func NewShed(name string, c ShedConfig, o Options) (*Shed, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	s := &Shed{cfg: c, signals: signalsOf(o), width: int64(c.Window) / int64(c.Buckets)}
	s.quiet = c.CoolOff
	s.init("shed", name, o, []string{"passing", "shedding"}, []string{"shed"}, unavailable(ErrShed))
	s.buckets = make([]shedBucket, c.Buckets)
	for i := range s.buckets {
		s.buckets[i].epoch.Store(-1)
	}
	s.capEpoch.Store(-1)
	now := s.clk.nanos()
	s.cpuLast.Store(int64(s.signals.CPUTime()))
	s.cpuLastT.Store(now)
	s.cpuNext.Store(now + int64(c.CPUInterval))
	return s, nil
}

// CPU is the smoothed CPU usage, 0..1.
func (s *Shed) CPU() float64 { return math.Float64frombits(s.cpuBits.Load()) }

// InFlight is how many admitted calls have not ended.
func (s *Shed) InFlight() int64 { return s.inFlight.Load() }

// Limit is the capacity estimate (most calls in flight the upstream path
// carries without queueing), or 0 before any call completed.
func (s *Shed) Limit() float64 {
	c := s.capacityAt(s.clk.nanos())
	if c == math.MaxInt64 {
		return 0
	}
	return float64(c)
}

// Acquire implements Policy.
func (s *Shed) Acquire(_ context.Context, _ *Request) (Permit, error) {
	now := s.clk.nanos()
	if next := s.cpuNext.Load(); now >= next && s.cpuNext.CompareAndSwap(next, now+int64(s.cfg.CPUInterval)) {
		s.sampleCPU(now)
	}
	if s.shouldDrop(now) {
		s.onReject(&s.core, now)
		return Permit{}, s.reject(0, 0)
	}
	s.inFlight.Add(1)
	s.admitted.Add(1)
	s.onAdmit(&s.core, -1)
	return Permit{}, nil
}

func (*Shed) instant() {}

func (s *Shed) shouldDrop(now int64) bool {
	busy := s.cfg.CPUThreshold == 0 || s.CPU() >= s.cfg.CPUThreshold.Fraction()
	if !busy {
		last := s.lastDrop.Load()
		if last == 0 {
			return false
		}
		if now-last > int64(s.cfg.CoolOff) {
			s.lastDrop.CompareAndSwap(last, 0)
			return false
		}
	}
	n := s.inFlight.Load()
	if n <= 1 || n < s.capacityAt(now) {
		return false
	}
	if busy {
		s.lastDrop.Store(max(now, 1))
	}
	return true
}

// capacityAt is maxPass × minRT in calls, computed over the complete
// buckets of the window once per bucket and cached; MaxInt64 until a call
// completed.
func (s *Shed) capacityAt(now int64) int64 {
	e := now / s.width
	if s.capEpoch.Load() == e {
		return s.capacity.Load()
	}
	var maxPass int64
	minRT := int64(math.MaxInt64)
	n := int64(len(s.buckets))
	for i := range s.buckets {
		b := &s.buckets[i]
		be := b.epoch.Load()
		if be >= e || be <= e-n {
			continue // the current bucket, or one out of the window
		}
		p := b.pass.Load()
		if p <= 0 {
			continue
		}
		maxPass = max(maxPass, p)
		minRT = min(minRT, b.rt.Load()/p)
	}
	c := int64(math.MaxInt64)
	if maxPass > 0 {
		perSec := float64(time.Second) / float64(s.width)
		c = int64(math.Ceil(float64(maxPass) * perSec * float64(minRT) / float64(time.Second)))
	}
	s.capacity.Store(c)
	s.capEpoch.Store(e)
	return c
}

func (s *Shed) sampleCPU(now int64) {
	cpu := int64(s.signals.CPUTime())
	dc, dt := cpu-s.cpuLast.Swap(cpu), now-s.cpuLastT.Swap(now)
	if dt <= 0 {
		return
	}
	usage := min(1, max(0, float64(dc)/(float64(dt)*float64(max(1, s.signals.CPUs())))))
	a := s.cfg.CPUSmoothing.Fraction()
	s.cpuBits.Store(math.Float64bits(a*usage + (1-a)*s.CPU()))
}

// Release implements Policy.
func (s *Shed) Release(_ Permit, o Outcome) {
	s.inFlight.Add(-1)
	if o.Skipped {
		return
	}
	now := s.clk.nanos()
	e := now / s.width
	b := &s.buckets[e%int64(len(s.buckets))]
	if be := b.epoch.Load(); be != e && b.epoch.CompareAndSwap(be, e) {
		b.pass.Store(0)
		b.rt.Store(0)
	}
	b.pass.Add(1)
	b.rt.Add(int64(o.Duration))
}

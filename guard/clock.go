package guard

import (
	"hash/fnv"
	"math/bits"
	"sync/atomic"
	"time"
)

// clock gives policies monotonic nanoseconds: since their construction on
// a configured Clock, and since the package was loaded on the system's
// time, which it reads through time.Since (the runtime's monotonic clock,
// without the wall-clock read time.Now also makes).
type clock struct {
	c    Clock
	base time.Time
}

// sysBase is the base of every clock on the system's time, so that
// readings of one are readings of all: a chain reads the clock once for
// its policies.
var sysBase = time.Now()

// sysNanos reads the system clock as a clock without a Clock does.
func sysNanos() int64 { return int64(time.Since(sysBase)) }

// sysTime turns a reading of sysNanos into a time, with a monotonic
// reading of its own.
func sysTime(n int64) time.Time { return sysBase.Add(time.Duration(n)) }

func newClock(c Clock) clock {
	if c == nil {
		return clock{base: sysBase}
	}
	return clock{c: c, base: c.Now()}
}

func (k *clock) nanos() int64 {
	if k.c == nil {
		return sysNanos()
	}
	return int64(k.c.Now().Sub(k.base))
}

// or is now, or a reading of the clock when now is negative (the caller
// has none).
func (k *clock) or(now int64) int64 {
	if now < 0 {
		return k.nanos()
	}
	return now
}

// at turns nanos back into a time for events.
func (k *clock) at(n int64) time.Time { return k.base.Add(time.Duration(n)) }

// afterFuncer is implemented by clocks that can run a function after a
// delay of their own time; the bulkhead's queue timeout uses it so that
// tests never wait on the wall clock.
type afterFuncer interface {
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

func (k *clock) afterFunc(d time.Duration, f func()) (stop func() bool) {
	if a, ok := k.c.(afterFuncer); ok {
		return a.AfterFunc(d, f)
	}
	return time.AfterFunc(d, f).Stop
}

// rearmable runs f after a delay, as afterFunc does, but is made once and
// armed again and again: on the wall clock, arming it allocates nothing.
type rearmable struct {
	f    func()
	t    *time.Timer
	stop func() bool // the Clock's, when it has AfterFunc
}

func (k *clock) arm(r *rearmable, d time.Duration) {
	if a, ok := k.c.(afterFuncer); ok {
		r.stop = a.AfterFunc(d, r.f)
		return
	}
	if r.t == nil {
		r.t = time.AfterFunc(d, r.f)
		return
	}
	r.t.Reset(d)
}

// disarm stops the timer armed last. It reports false when f has been
// started, or is about to be, for that arming.
func (r *rearmable) disarm() bool {
	if r.stop != nil {
		stopped := r.stop()
		r.stop = nil
		return stopped
	}
	return r.t.Stop()
}

// rng is a seeded generator safe for concurrent use without a lock: a
// splitmix64 sequence advanced atomically. Sequential callers see the same
// numbers for the same seed and name.
type rng struct{ state atomic.Uint64 }

func newRNG(seed uint64, name string) *rng {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	r := &rng{}
	r.state.Store(seed ^ bits.RotateLeft64(h.Sum64(), 17))
	return r
}

func (r *rng) uint64() uint64 {
	z := r.state.Add(0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float64 returns a number in [0, 1).
func (r *rng) float64() float64 { return float64(r.uint64()>>11) / (1 << 53) }

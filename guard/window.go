package guard

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Window is a breaker's sliding window: the last N calls, or the last N
// seconds. It is written "100" (or "100 calls") for a count window and
// "10s" for a time window of ten one-second buckets.
type Window struct {
	Calls    int
	Duration time.Duration
}

// UnmarshalText reads "100", "100 calls" or a duration such as "10s".
func (w *Window) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	num := strings.TrimSpace(strings.TrimSuffix(s, "calls"))
	if n, err := strconv.Atoi(num); err == nil {
		*w = Window{Calls: n}
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid window %q: write a number of calls (100) or a duration (10s)", s)
	}
	*w = Window{Duration: d}
	return nil
}

// MarshalText prints the window as UnmarshalText reads it.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

func (w Window) String() string {
	if w.Duration != 0 {
		return w.Duration.String()
	}
	return strconv.Itoa(w.Calls) + " calls"
}

func (w Window) check(field string, problem func(field, msg string)) {
	switch {
	case w.Calls == 0 && w.Duration == 0:
		problem(field, "must not be zero: a number of calls (100) or a duration (10s)")
	case w.Calls != 0 && w.Duration != 0:
		problem(field, "is either a number of calls or a duration, not both")
	case w.Calls < 0:
		problem(field, "must be a positive number of calls")
	case w.Duration < 0:
		problem(field, "must be a positive duration")
	case w.Duration > 0 && w.Duration%time.Second != 0:
		problem(field, fmt.Sprintf("%v is not a whole number of seconds (the window is made of one-second buckets)", w.Duration))
	}
}

// Outcome marks recorded in windows. A slot of a count window holds one
// mark; windows count bad outcomes in a packed word, failures in the low
// half and slow calls in the high half (see unpack).
const (
	markCall uint32 = 1 << iota
	markFail
	markSlow
)

func badDelta(m uint32) uint64 {
	return uint64(m>>1&1) + uint64(m>>2&1)<<32
}

// unpack splits a packed failure/slow count. Concurrent recorders may
// briefly drive the failure half below zero between their two atomic
// steps, so it is read as a signed number and the slow half is what
// remains.
func unpack(v uint64) (fails, slows int64) {
	fails = int64(int32(uint32(v)))
	slows = (int64(v) - fails) >> 32
	return fails, slows
}

// countWindow holds the outcomes of the last size calls in a ring. A
// record takes one atomic add for the position and, only when the slot's
// outcome changes, a swap and one add to the packed counts; a success into
// a window of successes writes nothing at all.
type countWindow struct {
	size  uint64
	pos   atomic.Uint64
	bad   atomic.Uint64
	slots []atomic.Uint32
}

func newCountWindow(size int) *countWindow {
	return &countWindow{size: uint64(size), slots: make([]atomic.Uint32, size)}
}

func (w *countWindow) record(m uint32) (calls, fails, slows int64) {
	// A success into a full window of successes changes nothing, whichever
	// slot it would overwrite: skip the write, so that a healthy breaker's
	// hot path only reads shared memory.
	if m == markCall && w.bad.Load() == 0 && w.pos.Load() >= w.size {
		return int64(w.size), 0, 0
	}
	i := w.pos.Add(1)
	s := &w.slots[(i-1)%w.size]
	var v uint64
	if s.Load() != m {
		old := s.Swap(m)
		if d := badDelta(m) - badDelta(old); d != 0 {
			v = w.bad.Add(d)
		} else {
			v = w.bad.Load()
		}
	} else {
		v = w.bad.Load()
	}
	calls = int64(min(i, w.size))
	fails, slows = unpack(v)
	return calls, fails, slows
}

// timeWindow counts calls and bad outcomes over the last n buckets of
// width nanoseconds. Totals are kept beside the buckets and a bucket's
// counts are subtracted from them when it is evicted, so reading the window
// is O(1). Eviction is lazy: the first record in a new bucket evicts every
// bucket that fell out of the window since the last one, under a lock taken
// only then. A record that races with an eviction lands in the newer
// bucket: the totals always equal the sum of the buckets.
type timeWindow struct {
	width   int64
	n       int64
	head    atomic.Int64 // newest bucket number the window has advanced to
	calls   atomic.Uint64
	bad     atomic.Uint64
	mu      sync.Mutex
	buckets []timeBucket
}

type timeBucket struct {
	calls atomic.Uint64
	bad   atomic.Uint64
}

func newTimeWindow(width time.Duration, n int, now int64) *timeWindow {
	w := &timeWindow{width: int64(width), n: int64(n), buckets: make([]timeBucket, n)}
	w.head.Store(now / w.width)
	return w
}

// advance evicts the buckets that fell out of the window by now and
// returns the bucket now belongs to.
func (w *timeWindow) advance(now int64) int64 {
	e := now / w.width
	if e <= w.head.Load() {
		return e
	}
	w.mu.Lock()
	if h := w.head.Load(); e > h {
		from := max(h+1, e-w.n+1)
		for k := from; k <= e; k++ {
			b := &w.buckets[k%w.n]
			if c := b.calls.Swap(0); c != 0 {
				w.calls.Add(-c)
			}
			if d := b.bad.Swap(0); d != 0 {
				w.bad.Add(-d)
			}
		}
		w.head.Store(e)
	}
	w.mu.Unlock()
	return e
}

func (w *timeWindow) record(now int64, m uint32) (calls, fails, slows int64) {
	e := w.advance(now)
	b := &w.buckets[e%w.n]
	b.calls.Add(1)
	c := w.calls.Add(1)
	var v uint64
	if d := badDelta(m); d != 0 {
		b.bad.Add(d)
		v = w.bad.Add(d)
	} else {
		v = w.bad.Load()
	}
	fails, slows = unpack(v)
	return int64(c), fails, slows
}

// add counts to both halves without the failure/slow packing, for windows
// that count other pairs (requests and accepts).
func (w *timeWindow) add(now int64, calls, bad uint64) {
	e := w.advance(now)
	b := &w.buckets[e%w.n]
	if calls != 0 {
		b.calls.Add(calls)
		w.calls.Add(calls)
	}
	if bad != 0 {
		b.bad.Add(bad)
		w.bad.Add(bad)
	}
}

func (w *timeWindow) totals(now int64) (calls, bad uint64) {
	w.advance(now)
	return w.calls.Load(), w.bad.Load()
}

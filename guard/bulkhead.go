package guard

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// BulkheadConfig caps the calls in flight at once, so that one slow
// upstream cannot take every goroutine and connection of the proxy. Calls
// over the cap wait in a bounded FIFO queue, or are rejected at once when
// there is none.
type BulkheadConfig struct {
	// MaxInFlight is the most calls in flight at once.
	MaxInFlight int `yaml:"max_in_flight"`
	// Queue is how many calls may wait for a slot; 0 rejects at once.
	Queue int `yaml:"queue"`
	// QueueTimeout bounds a wait; 0 waits until the caller gives up.
	QueueTimeout time.Duration `yaml:"queue_timeout"`
}

// DefaultBulkheadConfig admits 100 calls at once and queues none.
func DefaultBulkheadConfig() BulkheadConfig {
	return BulkheadConfig{MaxInFlight: 100}
}

var _ Config = (*BulkheadConfig)(nil)

// Kind implements Config.
func (*BulkheadConfig) Kind() string { return "bulkhead" }

// Check implements Config.
func (c *BulkheadConfig) Check(problem func(field, msg string)) {
	if c.MaxInFlight < 1 {
		problem("max_in_flight", "must be at least 1")
	}
	if c.Queue < 0 {
		problem("queue", "must not be negative (0 rejects at once)")
	}
	if c.QueueTimeout < 0 {
		problem("queue_timeout", "must not be negative (0 waits until the caller gives up)")
	}
	if c.QueueTimeout > 0 && c.Queue == 0 {
		problem("queue_timeout", "is set but queue is 0: nothing ever waits")
	}
}

// Build implements Config.
func (c *BulkheadConfig) Build(name string, o Options) (Policy, error) {
	return build(NewBulkhead(name, *c, o))
}

// Bulkhead rejection reasons.
const (
	reasonFull = iota
	reasonQueueFull
	reasonQueueTimeout
)

// Bulkhead is a static concurrency limit with an optional wait queue. The
// uncontended path is one compare-and-swap on the in-flight count; the
// queue, when there is one, takes a lock. Its states are "passing" and
// "limiting" (it rejected a call within the last second).
type Bulkhead struct {
	core
	pressure
	cfg BulkheadConfig

	inFlight atomic.Int64
	waiting  atomic.Int64 // callers in the slow path, queued or about to be

	qmu   sync.Mutex
	queue []*waiter
}

type waiter struct {
	ready chan struct{} // receives the slot handed over
	done  bool          // guarded by qmu: handed a slot or gave up
}

var _ Policy = (*Bulkhead)(nil)

// NewBulkhead returns an empty bulkhead.
func NewBulkhead(name string, c BulkheadConfig, o Options) (*Bulkhead, error) {
	if err := validate(&c, name); err != nil {
		return nil, err
	}
	b := &Bulkhead{cfg: c}
	b.init("bulkhead", name, o, []string{"passing", "limiting"}, []string{"full", "queue_full", "queue_timeout"}, unavailable(ErrLimited))
	return b, nil
}

// InFlight is how many calls hold a slot now.
func (b *Bulkhead) InFlight() int64 { return b.inFlight.Load() }

// Waiting is how many calls wait in the queue.
func (b *Bulkhead) Waiting() int {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	return len(b.queue)
}

// Limit is the configured maximum in flight.
func (b *Bulkhead) Limit() float64 { return float64(b.cfg.MaxInFlight) }

func (b *Bulkhead) tryTake() bool {
	for {
		n := b.inFlight.Load()
		if n >= int64(b.cfg.MaxInFlight) {
			return false
		}
		if b.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Acquire implements Policy. Only with a queue does it block, and then
// never past ctx: a caller that gives up leaves the queue at once.
func (b *Bulkhead) Acquire(ctx context.Context, _ *Request) (Permit, error) {
	if b.waiting.Load() == 0 && b.tryTake() {
		return b.admit(), nil
	}
	if b.cfg.Queue == 0 {
		b.onReject(&b.core, b.clk.nanos())
		return Permit{}, b.reject(reasonFull, 0)
	}
	return b.wait(ctx)
}

func (b *Bulkhead) admit() Permit {
	b.admitted.Add(1)
	b.onAdmit(&b.core, -1)
	return Permit{}
}

func (b *Bulkhead) wait(ctx context.Context) (Permit, error) {
	b.qmu.Lock()
	// Announce the wait before the last try, so that a Release that frees
	// a slot after that try sees the waiter and hands the slot over.
	b.waiting.Add(1)
	if len(b.queue) == 0 && b.tryTake() {
		b.waiting.Add(-1)
		b.qmu.Unlock()
		return b.admit(), nil
	}
	if len(b.queue) >= b.cfg.Queue {
		b.waiting.Add(-1)
		b.qmu.Unlock()
		b.onReject(&b.core, b.clk.nanos())
		return Permit{}, b.reject(reasonQueueFull, 0)
	}
	if err := ctx.Err(); err != nil {
		b.waiting.Add(-1)
		b.qmu.Unlock()
		return Permit{}, err
	}
	w := &waiter{ready: make(chan struct{}, 1)}
	b.queue = append(b.queue, w)
	b.qmu.Unlock()

	var timeout chan struct{}
	if b.cfg.QueueTimeout > 0 {
		timeout = make(chan struct{})
		stop := b.clk.afterFunc(b.cfg.QueueTimeout, func() { close(timeout) })
		defer stop()
	}
	select {
	case <-w.ready:
		return b.admit(), nil
	case <-ctx.Done():
		if b.leave(w) {
			return Permit{}, ctx.Err()
		}
	case <-timeout:
		if b.leave(w) {
			b.onReject(&b.core, b.clk.nanos())
			return Permit{}, b.reject(reasonQueueTimeout, 0)
		}
	}
	// A slot was handed over as we gave up: take it, then give it back.
	<-w.ready
	b.free()
	if ctx.Err() != nil {
		return Permit{}, ctx.Err()
	}
	b.onReject(&b.core, b.clk.nanos())
	return Permit{}, b.reject(reasonQueueTimeout, 0)
}

// leave takes w out of the queue; false means it was already handed a slot.
func (b *Bulkhead) leave(w *waiter) bool {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if w.done {
		return false
	}
	w.done = true
	for i, q := range b.queue {
		if q == w {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			break
		}
	}
	b.waiting.Add(-1)
	return true
}

// Release implements Policy.
func (b *Bulkhead) Release(Permit, Outcome) { b.free() }

func (*Bulkhead) timeless() {}

func (b *Bulkhead) free() {
	b.inFlight.Add(-1)
	if b.waiting.Load() == 0 {
		return
	}
	b.qmu.Lock()
	defer b.qmu.Unlock()
	for len(b.queue) > 0 && b.tryTake() {
		w := b.queue[0]
		b.queue = b.queue[1:]
		w.done = true
		b.waiting.Add(-1)
		w.ready <- struct{}{}
	}
}

package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
)

func newBulkhead(t *testing.T, clk *fakeClock, max, queue int, timeout time.Duration) *guard.Bulkhead {
	t.Helper()
	b, err := guard.NewBulkhead("bh", guard.BulkheadConfig{MaxInFlight: max, Queue: queue, QueueTimeout: timeout}, guard.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBulkhead_RejectsOverMax(t *testing.T) {
	clk := newFakeClock()
	b := newBulkhead(t, clk, 2, 0, 0)
	p1, _ := b.Acquire(t.Context(), nil)
	p2, _ := b.Acquire(t.Context(), nil)
	_, err := b.Acquire(t.Context(), nil)
	rej := rejected(t, err, guard.ErrLimited, "full")
	if rej.Status != 503 {
		t.Errorf("status %d, want 503", rej.Status)
	}
	b.Release(p1, ok200)
	p3, err := b.Acquire(t.Context(), nil)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	b.Release(p2, ok200)
	b.Release(p3, ok200)
	if n := b.InFlight(); n != 0 {
		t.Errorf("in flight %d, want 0", n)
	}
}

// acquireAsync starts an Acquire that waits in the queue and returns its
// result channel once the bulkhead shows it waiting.
func acquireAsync(t *testing.T, ctx context.Context, b *guard.Bulkhead) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		p, err := b.Acquire(ctx, nil)
		if err == nil {
			defer b.Release(p, ok200)
		}
		done <- err
	}()
	return done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBulkhead_Queue(t *testing.T) {
	t.Run("a release hands the slot to the first waiter", func(t *testing.T) {
		clk := newFakeClock()
		b := newBulkhead(t, clk, 1, 2, 0)
		p, _ := b.Acquire(t.Context(), nil)
		first := acquireAsync(t, t.Context(), b)
		waitFor(t, "the first waiter", func() bool { return b.Waiting() == 1 })
		second := acquireAsync(t, t.Context(), b)
		waitFor(t, "the second waiter", func() bool { return b.Waiting() == 2 })
		_, err := b.Acquire(t.Context(), nil)
		rejected(t, err, guard.ErrLimited, "queue_full")

		b.Release(p, ok200)
		if err := <-first; err != nil {
			t.Fatalf("first waiter: %v", err)
		}
		if err := <-second; err != nil {
			t.Fatalf("second waiter: %v", err)
		}
	})
	t.Run("a cancelled waiter leaves the queue", func(t *testing.T) {
		clk := newFakeClock()
		b := newBulkhead(t, clk, 1, 1, 0)
		p, _ := b.Acquire(t.Context(), nil)
		ctx, cancel := context.WithCancel(t.Context())
		w := acquireAsync(t, ctx, b)
		waitFor(t, "the waiter", func() bool { return b.Waiting() == 1 })
		cancel()
		if err := <-w; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
		}
		if b.Waiting() != 0 {
			t.Errorf("%d still waiting", b.Waiting())
		}
		b.Release(p, ok200)
		if b.InFlight() != 0 {
			t.Errorf("in flight %d after all released", b.InFlight())
		}
	})
	t.Run("the queue timeout runs on the policy's clock", func(t *testing.T) {
		clk := newFakeClock()
		b := newBulkhead(t, clk, 1, 1, 200*time.Millisecond)
		p, _ := b.Acquire(t.Context(), nil)
		w := acquireAsync(t, t.Context(), b)
		waitFor(t, "the waiter", func() bool { return b.Waiting() == 1 })
		clk.Advance(199 * time.Millisecond)
		select {
		case err := <-w:
			t.Fatalf("waiter returned before its timeout: %v", err)
		default:
		}
		clk.Advance(time.Millisecond)
		rejected(t, <-w, guard.ErrLimited, "queue_timeout")
		b.Release(p, ok200)
	})
}

func TestBulkhead_ParallelNeverExceedsMax(t *testing.T) {
	b := newBulkhead(t, newFakeClock(), 3, 100, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for range 8 {
		wg.Go(func() {
			for range 200 {
				p, err := b.Acquire(context.Background(), nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				peak = max(peak, b.InFlight())
				mu.Unlock()
				b.Release(p, ok200)
			}
		})
	}
	wg.Wait()
	if peak > 3 || b.InFlight() != 0 {
		t.Errorf("peak in flight %d (max 3), %d left", peak, b.InFlight())
	}
}

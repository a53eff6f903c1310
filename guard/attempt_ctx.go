package guard

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// attemptCtx is the context of one attempt a timeout or a hedge sends: its
// parent's, with a deadline of its own (or none) and a cancel. It is
// context.WithDeadline made lazily: the channel Done returns, the timer
// (pooled) that closes it at the deadline and the link to the parent's
// cancellation are made when Done is first called, so that an upstream
// that never waits on the context pays for none of them; until then Err
// reads the clock and the parent.
//
// It is made in one allocation with the attempt's copy of the request, and
// never reused. Code may keep a request, or its context, after the attempt
// returns (a goroutine its handler started; a log written later), and must
// then go on seeing this attempt's deadline, and its context cancelled: a
// pooled context would show it another request's.
//
// A timeout whose next wrapper is a hedge lends it the attempt (see lend),
// so that the hedge's first attempt needs no context of its own.
type attemptCtx struct {
	parent context.Context
	// deadline is on the system clock (sysNanos), read by comparing
	// integers; 0: the parent's.
	deadline int64
	// src is the request req copies, while the attempt may be lent.
	src *http.Request
	// stamp is the timeout whose HTTP header carries the deadline, if
	// one does: an attempt sent later than the first (a retry, a hedge)
	// has it set afresh.
	stamp *Timeout

	mu     sync.Mutex
	err    error
	done   chan struct{}
	timer  *deadlineTimer // ends the attempt at its deadline
	unlink func() bool    // stops the parent's AfterFunc
	// first is the list of AfterFunc registrations, its head (the one
	// http.Transport makes) inline; n counts them.
	first ctxFunc
	n     int

	req http.Request
}

// ctxFunc is an AfterFunc registration; f is nil once run or stopped.
// next is the registration after it.
type ctxFunc struct {
	f    func()
	next *ctxFunc
}

var _ context.Context = (*attemptCtx)(nil)

// newAttempt returns an attempt of r: a copy of the request whose context
// is an attemptCtx under parent, ending at deadline on the system clock
// (0: the parent's). r.WithContext is inlined, so its copy stays on the
// stack and the attempt is the only allocation.
func newAttempt(r *http.Request, parent context.Context, deadline int64) *attemptCtx {
	a := &attemptCtx{parent: parent, deadline: deadline}
	a.req = *r.WithContext(a)
	return a
}

// sysDeadline is a deadline as an attempt keeps it: t on the system clock,
// or 0 for none. A deadline before the process started is as past as one
// just after.
func sysDeadline(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(1, int64(t.Sub(sysBase)))
}

// restampDeadline sets the deadline header of a request sent after the
// timeout that set it — a retry, a hedge's second attempt — to the time
// the request has left now, so that an upstream never reads a deadline
// later than the proxy's.
func restampDeadline(r *http.Request) {
	ctx := r.Context()
	a, ok := ctx.Value(stampKey{}).(*attemptCtx)
	if !ok || r.Header == nil {
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		r.Header[a.stamp.header] = a.stamp.headerVals.get(max(1, time.Until(dl).Milliseconds()))
	}
}

// lendable lets lend give the attempt away once. The owner must cancel the
// context only after the call it lends it to returns.
func (a *attemptCtx) lendable(src *http.Request) { a.src = src }

// lend gives the attempt to a hedge that r reached unchanged, once, and
// returns the request it copies. The hedge sends its first attempt on r
// and its context, and cancels the context if that attempt loses; its
// second attempt is a sibling, under the same parent with the same
// deadline, made from the source (which nothing changes while r is in
// use, as the first attempt may change r).
func (a *attemptCtx) lend(r *http.Request) (src *http.Request, ok bool) {
	if a.src == nil || r != &a.req {
		return nil, false
	}
	src, a.src = a.src, nil
	return src, true
}

// expired reports whether the attempt's own deadline has passed. It reads
// the monotonic clock only.
func (a *attemptCtx) expired() bool {
	return a.deadline != 0 && sysNanos() >= a.deadline
}

// Deadline implements context.Context.
func (a *attemptCtx) Deadline() (time.Time, bool) {
	if a.deadline != 0 {
		return sysTime(a.deadline), true
	}
	return a.parent.Deadline()
}

// stampKey finds, through contexts made under an attempt (a route's
// values, say), the nearest attempt a timeout stamped.
type stampKey struct{}

// Value implements context.Context.
func (a *attemptCtx) Value(key any) any {
	if _, ok := key.(stampKey); ok && a.stamp != nil {
		return a
	}
	return a.parent.Value(key)
}

// Err implements context.Context. Until Done is called nothing watches the
// deadline or the parent, so Err looks at both.
func (a *attemptCtx) Err() error {
	a.mu.Lock()
	err := a.err
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if a.expired() {
		return a.cancel(context.DeadlineExceeded)
	}
	if err := a.parent.Err(); err != nil {
		return a.cancel(err)
	}
	return nil
}

// Done implements context.Context. The first call makes the channel and
// starts watching the deadline and the parent. (When it finds the attempt
// ended, nothing watched it yet: cancelLocked leaves nothing to do.)
func (a *attemptCtx) Done() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done != nil {
		return a.done
	}
	a.done = make(chan struct{})
	if a.err != nil {
		close(a.done)
		return a.done
	}
	if a.expired() {
		a.cancelLocked(context.DeadlineExceeded)
		return a.done
	}
	if err := a.parent.Err(); err != nil {
		a.cancelLocked(err)
		return a.done
	}
	if a.deadline != 0 {
		if pd, ok := a.parent.Deadline(); !ok || a.deadline < sysDeadline(pd) {
			a.timer = armDeadline(a)
		}
	}
	if a.parent.Done() != nil {
		a.unlink = context.AfterFunc(a.parent, func() { a.cancel(a.parent.Err()) })
	}
	return a.done
}

// AfterFunc lets context.WithCancel and context.AfterFunc under this
// context hear of its end without a goroutine each: f runs in a goroutine
// of its own once the context is done.
func (a *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	a.Done()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		go f()
		return func() bool { return false }
	}
	e := &a.first
	if a.n > 0 {
		e = &ctxFunc{next: a.first.next}
		a.first.next = e
	}
	a.n++
	e.f = f
	return func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		stopped := e.f != nil
		e.f = nil
		return stopped
	}
}

// cancel ends the context, unless it has ended already, and returns the
// error it ended with: err, or what an eager context would have ended with
// already — DeadlineExceeded past the deadline, the parent's error once
// the parent has ended.
func (a *attemptCtx) cancel(err error) error {
	a.mu.Lock()
	if a.err != nil {
		err = a.err
		a.mu.Unlock()
		return err
	}
	if a.done == nil {
		// Never watched: no channel to close, nothing to stop or run.
		a.err = a.endErr(err)
		a.mu.Unlock()
		return a.err
	}
	end := a.cancelLocked(err)
	err = a.err
	a.mu.Unlock()
	end.finish()
	return err
}

// cancelLocked sets the error and closes done. It returns what is left to
// do once mu is let go of.
func (a *attemptCtx) cancelLocked(err error) (end ending) {
	a.err = a.endErr(err)
	if a.done != nil {
		close(a.done)
	}
	end.timer, end.unlink, end.first = a.timer, a.unlink, a.first.f
	a.timer, a.unlink, a.first.f = nil, nil, nil
	for e := a.first.next; e != nil; e = e.next {
		if e.f != nil {
			end.more = append(end.more, e.f)
			e.f = nil
		}
	}
	return end
}

// endErr is the error an attempt cancelled with err ends with: what an
// eager context would have ended with already, if anything.
func (a *attemptCtx) endErr(err error) error {
	if a.expired() {
		return context.DeadlineExceeded
	}
	if perr := a.parent.Err(); perr != nil {
		return perr
	}
	return err
}

// ending is what is left to do once an attempt has ended: stop watching,
// and run the functions registered with AfterFunc.
type ending struct {
	timer  *deadlineTimer
	unlink func() bool
	first  func()
	more   []func()
}

func (e *ending) finish() {
	if e.timer != nil {
		e.timer.release()
	}
	if e.unlink != nil {
		e.unlink()
	}
	if e.first != nil {
		go e.first()
	}
	for _, f := range e.more {
		go f()
	}
}

// deadlineTimer ends a watched attempt at its deadline. Timers are pooled:
// an attempt holds one from its first Done to its end. A timer that goes
// off late, for an attempt that has ended, may find a later one holding
// it; that attempt's deadline has not passed, and the timer does nothing.
type deadlineTimer struct {
	t *time.Timer
	a atomic.Pointer[attemptCtx]
}

var deadlineTimers = sync.Pool{New: func() any { return new(deadlineTimer) }}

func armDeadline(a *attemptCtx) *deadlineTimer {
	dt := deadlineTimers.Get().(*deadlineTimer)
	dt.a.Store(a)
	d := time.Duration(a.deadline - sysNanos())
	if dt.t == nil {
		dt.t = time.AfterFunc(d, dt.fire)
	} else {
		dt.t.Reset(d)
	}
	return dt
}

func (dt *deadlineTimer) fire() {
	if a := dt.a.Load(); a != nil && a.expired() {
		a.cancel(context.DeadlineExceeded)
	}
}

func (dt *deadlineTimer) release() {
	dt.t.Stop()
	dt.a.Store(nil)
	deadlineTimers.Put(dt)
}

package guard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// exchange is one outgoing call as the call wrappers drive it, whatever its
// protocol: an HTTP request of the Transport, a gRPC client call, a Call.
// The wrappers decide; the exchange sends, reads and discards answers.
type exchange interface {
	// send makes attempt n (from 1) under ctx. It returns the attempt's answer
	// (nil when there is none: a transport error, a Call), its Outcome for
	// the policies, and the error the caller gets when that answer is
	// final and is not one.
	send(ctx context.Context, x *outCall, n int) (ans any, o Outcome, err error)
	// repeatable reports whether the call may be sent more than once: its
	// method is in methods (HTTP only) and its body, up to maxBody, can
	// be replayed byte for byte.
	repeatable(methods *methodSet, maxBody int64) bool
	// retryAfter is the Retry-After an answer carries, "" for none.
	retryAfter(ans any) string
	// drop discards an answer the caller will not see.
	drop(ans any)
	// deadline returns a context under ctx that ends at the deadline, at
	// on the system clock (sysNanos), and what ends it sooner.
	deadline(ctx context.Context, at int64) (context.Context, ender)
	// hold ends end once the caller is done with an answer (an HTTP body
	// read and closed): a timeout's deadline bounds that too.
	hold(ans any, end ender)
	// fallback answers in place of a failed call, if the protocol can.
	fallback(f *Fallback) (ans any, ok bool)
	// concurrent reports whether two attempts may run at once (a hedge).
	concurrent() bool
}

// ender ends an attempt's context.
type ender interface{ end() }

// cancelEnd is a context.CancelFunc as an ender.
type cancelEnd context.CancelFunc

func (c cancelEnd) end() { c() }

// withDeadline is exchange.deadline for exchanges with nothing to save.
func withDeadline(ctx context.Context, at int64) (context.Context, ender) {
	c, cancel := context.WithDeadline(ctx, sysTime(at))
	return c, cancelEnd(cancel)
}

// outCall is the state of one outgoing call across its attempts.
type outCall struct {
	req Request
	ex  exchange
	// attempts counts the attempts sent.
	attempts atomic.Int32
	// attemptHeader and idHeader are the headers a retry or a hedge
	// numbers attempts and identifies the call in; id is the call's id.
	attemptHeader, idHeader string
	id                      string
	// stamp is the innermost timeout: its header carries the time left.
	stamp *Timeout
}

// result is how a call, or a part of its chain, ended.
type result struct {
	ans any
	o   Outcome
	// err is what the caller gets when there is no answer.
	err error
	// rejected marks a refusal by a guard policy: never retried.
	rejected bool
}

// stage is one step of a chain composed for outgoing calls.
type stage interface {
	run(ctx context.Context, x *outCall) result
}

// outgoing returns the chain composed for outgoing calls, built once: as
// compose nests a chain around a handler, runs of admission policies admit
// the rest, each wrapper wraps what follows it, a fallback answers for the
// whole chain, and a hedge shares the budget of a retry.
func (c *Chain) outgoing() stage {
	c.outOnce.Do(func() {
		var retry *Retry
		for _, p := range c.policies {
			if r, ok := p.(*Retry); ok && retry == nil {
				retry = r
			}
		}
		var s stage = &sendStage{}
		var run []Policy
		flush := func() {
			if len(run) > 0 {
				s = &admitStage{chain: newChain(run, c.clk), next: s}
				run = nil
			}
		}
		var outer []*Fallback
		for i := len(c.policies) - 1; i >= 0; i-- {
			switch p := c.policies[i].(type) {
			case *Fallback:
				outer = append(outer, p)
			case *Retry:
				flush()
				s = &retryStage{r: p, next: s}
			case *Timeout:
				flush()
				s = &timeoutStage{t: p, next: s}
			case *Hedge:
				flush()
				if retry != nil {
					p.shareBudget(retry.budget)
				}
				s = &hedgeStage{h: p, next: s}
			default:
				run = append([]Policy{p}, run...)
			}
		}
		flush()
		for _, f := range outer {
			s = &fallbackStage{f: f, next: s}
		}
		c.out = s
	})
	return c.out
}

// sendStage makes one attempt. It is used by pointer, so that calling it
// through stage copies no receiver.
type sendStage struct{}

func (*sendStage) run(ctx context.Context, x *outCall) result {
	n := x.attempts.Add(1)
	ans, o, err := x.ex.send(ctx, x, int(n))
	return result{ans: ans, o: o, err: err}
}

// admitStage runs admission policies around the rest of the chain.
type admitStage struct {
	chain *Chain
	next  stage
}

func (s *admitStage) run(ctx context.Context, x *outCall) result {
	var res result
	err := s.chain.Do(ctx, &x.req, func(ctx context.Context) Outcome {
		res = s.next.run(ctx, x)
		if res.rejected {
			return Outcome{Skipped: true}
		}
		return res.o
	})
	if err != nil {
		return result{err: err, o: Outcome{Skipped: true}, rejected: true}
	}
	return res
}

// retryStage sends the rest of the chain again while the retry's
// judgement (Retry.again) says so.
type retryStage struct {
	r    *Retry
	next stage
}

func (s *retryStage) run(ctx context.Context, x *outCall) result {
	r := s.r
	repeatable := x.ex.repeatable(&r.methods, int64(r.cfg.MaxBody))
	start := r.begin() // once the body is read: the first attempt starts
	if !repeatable {
		r.unretryable.Add(1)
		return s.next.run(ctx, x)
	}
	// A timeout right inside the retry bounds the first attempt from the
	// reading the retry began at, on the system clock.
	ts, _ := s.next.(*timeoutStage)
	now := int64(-1)
	if ts != nil && r.clk.c == nil {
		now = start
	}
	x.identify(&r.ids, r.cfg.AttemptHeader)
	var wait time.Duration
	for n := 1; ; n++ {
		var res result
		if ts != nil {
			res = ts.runAt(ctx, x, now)
			now = -1 // the attempt took time
		} else {
			res = s.next.run(ctx, x)
		}
		value := func() string { return x.ex.retryAfter(res.ans) }
		w, again := r.again(ctx, res.o, res.rejected, value, n, start, wait)
		if !again {
			return res
		}
		x.ex.drop(res.ans)
		if !sleep(ctx, &r.clk, w) {
			return result{err: ctx.Err(), o: Outcome{Err: context.Canceled}}
		}
		wait = w
	}
}

// identify sets the headers that number a call's attempts and carry its
// id, making an id when the caller sent none.
func (x *outCall) identify(ids *requestIDs, attemptHeader string) {
	if x.attemptHeader == "" {
		x.attemptHeader = attemptHeader
	}
	if ids.header == "" || x.idHeader != "" {
		return
	}
	x.idHeader = ids.header
	if x.req.Header != nil {
		x.id = x.req.Header.Get(ids.header)
	}
	if x.id == "" {
		x.id = ids.make()
	}
}

// TimeoutError is the error an outgoing call gets when a timeout policy's
// deadline passed before it was answered. It is errors.Is ErrTimeout and
// context.DeadlineExceeded.
type TimeoutError struct {
	// Policy is the timeout's name.
	Policy string
	// Expired says the deadline had passed before the call was sent.
	Expired bool
}

// ErrTimeout is what every TimeoutError is.
var ErrTimeout = errors.New("guard timeout")

func (e *TimeoutError) Error() string {
	if e.Expired {
		return "guard timeout " + e.Policy + ": deadline passed before the call was sent"
	}
	return "guard timeout " + e.Policy + ": deadline exceeded"
}

// Is makes a TimeoutError ErrTimeout and context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// Timeout reports true, as net.Error's Timeout does.
func (e *TimeoutError) Timeout() bool { return true }

// timeoutStage gives the rest of the chain a deadline, kept until the
// caller is done with the answer.
type timeoutStage struct {
	t    *Timeout
	next stage
}

func (s *timeoutStage) run(ctx context.Context, x *outCall) result { return s.runAt(ctx, x, -1) }

// runAt is run at now, a reading of the system clock (sysNanos), or -1 to
// take one. The deadline is on the same clock, so that it is set and
// compared in integers, without the wall clock read time.Now makes.
func (s *timeoutStage) runAt(ctx context.Context, x *outCall, now int64) result {
	t := s.t
	t.calls.Add(1)
	if now < 0 {
		now = sysNanos()
	}
	deadline := now + int64(t.cfg.After)
	if dl, ok := ctx.Deadline(); ok {
		deadline = min(deadline, sysDeadline(dl))
	}
	if deadline <= now || ctx.Err() != nil {
		t.expired.Add(1)
		return result{err: &TimeoutError{Policy: t.name, Expired: true}, o: Outcome{Timeout: true}}
	}
	actx, end := x.ex.deadline(ctx, deadline)
	outer := x.stamp
	if t.header != "" {
		x.stamp = t
	}
	res := s.next.run(actx, x)
	x.stamp = outer
	if res.ans == nil && res.err != nil && !res.rejected && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		end.end()
		t.timedOut.Add(1)
		return result{err: &TimeoutError{Policy: t.name}, o: Outcome{Timeout: true}}
	}
	if res.ans == nil {
		end.end()
		return res
	}
	x.ex.hold(res.ans, end)
	return res
}

// hedgeStage races a second attempt against a slow first one.
type hedgeStage struct {
	h    *Hedge
	next stage
}

// raced is one hedged attempt's result.
type raced struct {
	i   int
	res result
}

func (s *hedgeStage) run(ctx context.Context, x *outCall) result {
	h := s.h
	h.calls.Add(1)
	h.onAdmit(&h.core, -1)
	start := h.clk.nanos()
	if b, own := h.budget(); own {
		b.request(start)
	}
	h.refresh(start)
	delay := time.Duration(h.delay.Load())
	if delay <= 0 || !x.ex.concurrent() || !x.ex.repeatable(&h.methods, int64(h.cfg.MaxBody)) {
		res := s.next.run(ctx, x)
		h.record(start)
		return res
	}
	x.identify(&h.ids, h.cfg.AttemptHeader)

	var ctxs [2]context.Context
	var cancels [2]context.CancelFunc
	done := make(chan raced, 2)
	launch := func(i int) {
		ctxs[i], cancels[i] = context.WithCancel(ctx)
		go func() { done <- raced{i, s.next.run(ctxs[i], x)} }()
	}
	launch(0)
	fire := make(chan struct{})
	stop := h.clk.afterFunc(delay, func() { close(fire) })
	defer stop()
	running, winner := 1, -1
	var won result
	var lost []result
	for running > 0 {
		select {
		case r := <-done:
			running--
			if winner >= 0 {
				lost = append(lost, r.res)
				continue
			}
			if r.res.rejected || h.bad.classify(&r.res.o) != failure || running == 0 {
				winner, won = r.i, r.res
				if c := cancels[1-r.i]; c != nil {
					c()
				}
				h.record(start)
				if r.i == 1 {
					h.won.Add(1)
				}
				continue
			}
			lost = append(lost, r.res)
			cancels[r.i]()
		case <-fire:
			fire = nil
			if winner >= 0 {
				continue
			}
			b, _ := h.budget()
			if !b.withdraw() {
				h.exhausted.Add(1)
				h.onReject(&h.core, h.clk.nanos())
				continue
			}
			h.onAdmit(&h.core, -1)
			h.sent.Add(1)
			running++
			launch(1)
		}
	}
	for _, r := range lost {
		x.ex.drop(r.ans)
	}
	if won.ans == nil {
		cancels[winner]()
		return won
	}
	x.ex.hold(won.ans, cancelEnd(cancels[winner]))
	return won
}

// fallbackStage answers for the whole chain when it failed or refused.
type fallbackStage struct {
	f    *Fallback
	next stage
}

func (s *fallbackStage) run(ctx context.Context, x *outCall) result {
	f := s.f
	f.calls.Add(1)
	res := s.next.run(ctx, x)
	if ctx.Err() == nil && (res.rejected || f.fails.classify(&res.o) == failure) {
		if ans, ok := x.ex.fallback(f); ok {
			x.ex.drop(res.ans)
			f.stubServed()
			return result{ans: ans}
		}
	}
	f.served.Add(1)
	return res
}

// outCalls pools the state of outgoing calls.
var outCalls = sync.Pool{New: func() any { return new(outCall) }}

// runOutgoing runs an outgoing call through the chain.
func (c *Chain) runOutgoing(ctx context.Context, req Request, ex exchange) result {
	x := outCalls.Get().(*outCall)
	x.req, x.ex = req, ex
	res := c.outgoing().run(ctx, x)
	*x = outCall{}
	outCalls.Put(x)
	return res
}

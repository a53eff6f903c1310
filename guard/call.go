package guard

import (
	"context"
	"errors"

	"google.golang.org/grpc/status"
)

// Classifier says how an outgoing call's error counts for the policies:
// the Outcome a breaker judges and a retry decides on. Outcome.Err counts
// as a failure (and is retried) where the policy's errors key says so;
// a zero Outcome is a success, context.Canceled in Err is ignored.
type Classifier func(err error) Outcome

// ClassifyError is the Classifier a Caller uses by default: no error is a
// success, the caller's cancellation says nothing, a passed deadline is a
// timeout, a gRPC status error is its code, and any other error is a
// failure.
func ClassifyError(err error) Outcome {
	switch {
	case err == nil:
		return Outcome{}
	case errors.Is(err, context.Canceled):
		return Outcome{Err: context.Canceled}
	case errors.Is(err, context.DeadlineExceeded):
		return Outcome{Err: err, Timeout: true}
	}
	if s, ok := status.FromError(err); ok {
		return Outcome{GRPCCode: s.Code()}
	}
	return Outcome{Err: err}
}

// Caller runs calls of any kind — a database query, a cache lookup —
// through a chain: its admission policies, retry (of the errors its
// Classifier and the retry's retry_on make failures), timeout (the call's
// context carries the deadline) and hedge (the function is then called
// twice at once, so it must be safe to). A fallback has nothing to answer
// with here and is passed over: the caller handles the error.
type Caller struct {
	// Chain is the chain calls run through.
	Chain ChainSource
	// Route names the calls for the policies that key on it.
	Route string
	// Classify judges the function's errors; nil is ClassifyError.
	Classify Classifier
}

// Do calls fn under the chain and returns its error, or the chain's: a
// *Rejection (errors.Is ErrOpen, ErrLimited, ErrShed), a *TimeoutError.
func (c *Caller) Do(ctx context.Context, fn func(context.Context) error) error {
	classify := c.Classify
	if classify == nil {
		classify = ClassifyError
	}
	return c.Chain.Chain().runOutgoing(ctx, Request{Route: c.Route}, funcExchange{fn: fn, classify: classify}).err
}

// Call is Caller.Do with the default classifier: it runs fn under the
// chain, as route.
func (c *Chain) Call(ctx context.Context, route string, fn func(context.Context) error) error {
	return c.runOutgoing(ctx, Request{Route: route}, funcExchange{fn: fn, classify: ClassifyError}).err
}

// funcExchange is a Call: a function, with no answer but its error.
type funcExchange struct {
	fn       func(context.Context) error
	classify Classifier
}

func (f funcExchange) send(ctx context.Context, _ *outCall, _ int) (any, Outcome, error) {
	err := f.fn(ctx)
	o := f.classify(err)
	if err != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		o = Outcome{Err: context.Canceled}
	}
	return nil, o, err
}

func (funcExchange) repeatable(*methodSet, int64) bool { return true }
func (funcExchange) retryAfter(any) string             { return "" }
func (funcExchange) drop(any)                          {}
func (funcExchange) hold(_ any, end ender)             { end.end() }
func (funcExchange) fallback(*Fallback) (any, bool)    { return nil, false }
func (funcExchange) concurrent() bool                  { return true }

func (funcExchange) deadline(ctx context.Context, at int64) (context.Context, ender) {
	return withDeadline(ctx, at)
}

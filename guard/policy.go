package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// Policy decides whether one call may go ahead and learns from how it went.
//
// Acquire is called before the call; a nil error admits it and the Permit
// must be handed back to Release exactly once with the call's Outcome. A
// rejection is a *Rejection (errors.Is it against ErrOpen, ErrLimited or
// ErrShed). Acquire does not block, except where a policy says it queues
// (the bulkhead's wait queue), and then it gives up when ctx is done.
//
// The two halves are split, rather than one Do(func()), so that the hot path
// allocates nothing: a Permit is a small value, not a closure.
type Policy interface {
	// Name identifies the policy in metrics, events and rejections.
	Name() string
	Acquire(ctx context.Context, r *Request) (Permit, error)
	Release(p Permit, o Outcome)
}

// Permit is what Acquire hands out and Release takes back: a small value
// whose meaning belongs to the policy that issued it.
type Permit struct {
	gen  uint64 // state generation at admission; a sample's weight
	flag uint32 // the policy's flags, and the chain's timedFlag
}

// Request is what policies key on. It is passed by pointer and never kept,
// so a caller can reuse one.
type Request struct {
	// Route is the route the call belongs to: the HTTP path, or the gRPC
	// full method name.
	Route string
	// Method is the HTTP method, or empty for gRPC.
	Method string
	// Critical marks a call that degradation must not shed (health
	// checks, payments …); the memory policy also reads its own list of
	// critical routes.
	Critical bool
	// Header reads request headers or gRPC metadata, for policies keyed by
	// a header (a tenant, a user). It may be nil.
	Header Header
}

// Header reads one request header. http.Header implements it; so does the
// adapter the gRPC interceptors wrap around incoming metadata.
type Header interface {
	Get(key string) string
}

// Outcome is how an admitted call ended. Policies that count failures
// classify it with their FailureConfig.
type Outcome struct {
	// Duration is how long the call took; the Chain fills it in when the
	// caller leaves it zero and a policy learns from it.
	Duration time.Duration
	// Status is the HTTP status, or 0 for a call that is not HTTP.
	Status int
	// GRPCCode is the gRPC status of a call whose Status is 0.
	GRPCCode codes.Code
	// Err is a transport error (the upstream could not be reached), if any.
	// context.Canceled means the caller gave up: the call is ignored.
	Err error
	// Timeout marks a call that ran out of time.
	Timeout bool
	// Skipped marks a call that never reached the upstream (a later policy
	// in the chain rejected it): policies free its permit without learning
	// from it.
	Skipped bool
}

// Sentinel errors every rejection wraps, so callers can tell why a call was
// refused with errors.Is without knowing the policy.
var (
	// ErrOpen: a breaker is open (or half-open with its probes taken).
	ErrOpen = errors.New("circuit open")
	// ErrLimited: a limit was reached — rate, concurrency, client-side
	// throttling.
	ErrLimited = errors.New("limit reached")
	// ErrShed: load was shed to protect the process (CPU, memory).
	ErrShed = errors.New("load shed")
)

// Rejection is the error a policy returns when it refuses a call. It says,
// in each protocol's own words, how the refusal should be answered.
type Rejection struct {
	// Policy is the name of the policy that refused; Kind its kind.
	Policy string
	Kind   string
	// Reason is a short machine-readable cause: "open", "half_open_full",
	// "rate", "in_flight", "p99", "goroutines", "queue_full",
	// "queue_timeout", "shed", "cpu", "memory_yellow", "memory_red",
	// "noncritical", "throttled", "limit".
	Reason string
	// RetryAfter is when the caller may try again, when the policy knows.
	RetryAfter time.Duration
	// Status is the HTTP status to answer with (503 or 429).
	Status int
	// GRPC is the gRPC status code to answer with (UNAVAILABLE or
	// RESOURCE_EXHAUSTED).
	GRPC codes.Code

	err error
}

func (r *Rejection) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "guard %s %q: %v (%s)", r.Kind, r.Policy, r.err, r.Reason)
	if r.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %v", r.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the sentinel (ErrOpen, ErrLimited or ErrShed).
func (r *Rejection) Unwrap() error { return r.err }

// answer is how a policy's rejections are answered in each protocol.
type answer struct {
	status   int
	grpc     codes.Code
	sentinel error
}

// unavailable answers 503 / UNAVAILABLE: the service cannot take the call
// now.
func unavailable(sentinel error) answer {
	return answer{http.StatusServiceUnavailable, codes.Unavailable, sentinel}
}

// exhausted answers 429 / RESOURCE_EXHAUSTED: the caller is over its share.
func exhausted() answer {
	return answer{http.StatusTooManyRequests, codes.ResourceExhausted, ErrLimited}
}

// Clock tells the time. Policies take one so that tests drive their state
// machines with a fake clock instead of sleeping.
type Clock interface {
	Now() time.Time
}

// Observer hears every state transition of every policy, with its time, so
// a run can record it as an event. It is called synchronously while the
// policy holds its transition lock: it must be quick and must not call back
// into the policy.
type Observer interface {
	Transition(policy, from, to string, at time.Time)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(policy, from, to string, at time.Time)

// Transition implements Observer.
func (f ObserverFunc) Transition(policy, from, to string, at time.Time) { f(policy, from, to, at) }

// Options are what every policy constructor takes besides its Config.
type Options struct {
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Seed makes every random choice (jitter, probabilistic shedding)
	// reproducible. Each policy mixes it with its own name.
	Seed uint64
	// Observer hears state transitions; nil discards them.
	Observer Observer
	// Signals reads the process's memory and CPU for the memory and shed
	// policies; nil reads the Go runtime and the OS.
	Signals Signals
}

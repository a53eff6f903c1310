// Package guard is resctl's resilience engine: the admission policies the
// harness proxy (and a user's own Go service) puts in front of an upstream,
// each in a file of its own behind one small interface, with an injectable
// clock.
//
// A policy kind is a Config (plain data with yaml tags, decoded from a
// scenario and checked by Check, which names each bad field by its YAML
// key) that builds a Policy. NewConfig and Kinds mirror inject.NewSpec:
// breaker, throttle, concurrency_breaker, memory, bulkhead, adaptive_limit,
// shed and rate_limit. A Policy admits a call with Acquire, which returns a
// small Permit value, and learns from it with Release(permit, Outcome):
// two halves rather than a closure, so that an admitted call allocates
// nothing. Refusals are *Rejection errors that wrap ErrOpen, ErrLimited or
// ErrShed and say how to answer in HTTP and gRPC.
//
// A Chain runs policies in order around a call (Do), as HTTP middleware, and
// as gRPC unary and stream interceptors. Every state transition goes to the
// Options' Observer with its time, and a Chain's Collector exports every
// policy's state, transitions, admissions, rejections and limit for the
// caller's Prometheus registry.
//
// The same chains guard a service's outgoing calls: NewTransport is an
// http.RoundTripper for an http.Client, UnaryClientInterceptor and
// StreamClientInterceptor guard a gRPC client, and Caller (or Chain.Call)
// wraps any other call with a Classifier of its errors. Outgoing calls
// compose the chain as the middleware does — admission policies admit,
// retry, timeout and hedge wrap what follows them, a fallback answers for
// the whole chain — and each decision is the policy's own (Retry's one
// judgement, the same budgets, counters and events). Parse and Load read
// a chain from the YAML a scenario's guard: key takes; File keeps one in
// a file and reloads it, keeping the state of unchanged policies.
// Balancer spreads calls over several instances of a dependency (power of
// two choices on latency, passive ejection): the harness proxy's upstreams
// and, through PoolTransport (with PoolConfig's connection limits) and
// GRPCPool, an HTTP or gRPC client's.
//
// Policies start no goroutines: windows evict lazily, and the memory and
// shed policies read runtime/metrics and the process's CPU time on the first
// call after each interval. Only the bulkhead's wait queue blocks, and never
// past its caller's context. An outgoing hedge runs its attempts in
// goroutines it waits for; File.Watch polls its file until its context ends.
//
// guard must stay importable on its own: it imports nothing of resctl's
// except the quantity value types, and never the runner, the harness or the
// scenario model.
package guard

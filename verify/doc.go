// Package verify owns resctl's SLA expression language: parse, check,
// evaluate.
//
// Scenarios state their service-level objectives as small boolean
// expressions over what a run measured, for example
//
//	success_rate >= 99% and p99 < 150ms
//	time_to(error_rate > 5%) < 10s
//	recovery_time(error_rate < 1% and p99 < 200ms, hold: 5s) < 30s
//	last(target:go_goroutines) <= 1.1 * avg(target:go_goroutines during baseline)
//	breaker("payments") == closed
//
// An expression reads load series (requests, p99, …), scraped Prometheus
// series through selectors (source:metric{label="v"}), functions over them
// (rate, avg, histogram_quantile, …), states of breakers and faults, and
// the two recovery primitives time_to and recovery_time, which scan the
// run for the instant a condition starts to hold. docs/sla.md is the
// language reference.
//
// [Parse] turns such a string into an [Expr], rejecting anything that is not
// a well-typed condition with a [SyntaxError] that points at the offending
// column, so a scenario author learns about a typo (p98, 150 ms, rat(…)) or
// a unit mistake (p99 < 150, a _bytes metric against 150ms) when the
// scenario is loaded rather than after a long run. [Expr.CheckNames] then
// checks phase, breaker and fault names against the scenario's, and
// [Expr.Selectors] tells a runner what to scrape. [Expr.Check] evaluates
// the expression against a [RunEnv], which supplies the run's load, scrapes
// and state history, in a [Scope], and reports what was observed in a form
// fit for a human. [Expr.Explain] returns each comparison of the
// expression with what it read, its limit and the steps at which it broke
// it, so a report can say why an SLA failed and draw its limit.
//
// Internally the checker compiles the tree into a compact form over a table
// of leaves (the values an expression reads), so that scanning an hour of
// instants for time_to costs microseconds and allocates nothing per
// instant.
//
// Canonical units are fixed so that literals and values always agree:
// durations are float64 seconds, ratios are fractions (99% is 0.99), counts
// and plain numbers are plain numbers, rates are per second and sizes are
// bytes.
//
// verify is a leaf package: it imports only the standard library and must
// never import anything else from resctl, so that every other part of the
// tool (scenario loading, the runner, reporting) can depend on it without
// creating cycles.
package verify

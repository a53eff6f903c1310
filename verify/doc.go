// Package verify owns resctl's SLA expression language: parse, check,
// evaluate.
//
// Scenarios state their service-level objectives as small boolean
// expressions over named series, for example
//
//	success_rate >= 99% and p99 < 150ms
//
// [Parse] turns such a string into an [Expr], rejecting anything that is not
// a well-typed condition with a [SyntaxError] that points at the offending
// column, so a scenario author learns about a typo (p98, 150 ms, 150mss) or a
// unit mistake (p99 < 150) when the scenario is loaded rather than after a
// long run. [Expr.Eval] then checks the expression against an [Env] that
// supplies one canonical value per series for the window under test, and
// reports what was observed in a form fit for a human.
//
// Canonical units are fixed so that literals and series always agree:
// durations are float64 seconds, ratios are fractions (99% is 0.99), counts
// are plain numbers and rates are per second.
//
// verify is a leaf package: it imports only the standard library and must
// never import anything else from resctl, so that every other part of the
// tool (scenario loading, the runner, reporting) can depend on it without
// creating cycles.
package verify

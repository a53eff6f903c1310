// Package inject is resctl's fault switchboard: the kinds of fault it can
// inject, the registry from a scenario's fault name to its Spec, and the Board
// that switches faults on and off while traffic flows and counts what each
// one actually did.
//
// A fault kind is a Spec (plain configuration data, decoded from a scenario
// and checked by Check) that builds an HTTPFault. The Board wraps an
// http.Handler: for every request it asks each active fault, in activation
// order, whether the request matches and whether the fault's seeded dice say
// to act, and lets the fault delay or answer the request.
//
// inject imports nothing of resctl's except the quantity value types; the
// harness, the runner and the CLI depend on it, never the other way round.
package inject

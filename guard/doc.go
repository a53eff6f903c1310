// Package guard is resctl's resilience engine: the policies the harness
// proxy (and a user's own Go service) puts in front of an upstream — circuit
// breakers, adaptive limits, retries, timeouts, hedging, fallbacks — each in
// a file of its own behind one small interface, with an injectable clock.
//
// guard must stay importable on its own: it imports nothing of resctl's
// except the quantity value types, and never the runner, the harness or the
// scenario model.
package guard

// Package inject is resctl's fault switchboard: the kinds of fault it can
// inject, the registry from a scenario's fault name to its Spec, and the Board
// that switches faults on and off while traffic flows and counts what each
// one actually did.
//
// A fault kind is a Spec (plain configuration data, decoded from a scenario
// and checked by Check). Kinds come in layers: an HTTPSpec builds an
// HTTPFault (which may also wrap the response, a ResponseFault), a ConnSpec
// builds a ConnFault for the tcp proxy's connections. The grpc layer's
// kinds are HTTPSpecs too — a gRPC call is an HTTP/2 request — that select
// calls by method and metadata (GRPCMatch), count length-prefixed
// messages rather than bytes, and end calls with gRPC statuses. The Board wraps an
// http.Handler: for every request it asks each active fault, in activation
// order, whether the request matches and whether the fault's schedule and
// seeded dice say to act (Activation.Draw), and lets the fault delay,
// answer or reshape the exchange. The tcp proxy draws connection faults
// once per connection. Activations may carry a TTL, past which they stop
// acting on their own. Runtime faults inside a service live in
// inject/agent.
//
// ParseSpec builds a Spec from JSON or YAML parameters, for the admin API and
// the CLI, with the same decoder and messages as the scenario file.
//
// inject imports nothing of resctl's except the quantity value types and the
// internal strict YAML decoder (and of gRPC only its codes); the
// harness, the runner and the CLI depend on it, never the other way round.
package inject

// Package harness runs the harness proxy: a reverse proxy on loopback in
// front of the target that carries the fault switchboard (and, as it grows,
// the guard chain) and serves its own Prometheus metrics on a separate admin
// listener, so the target's /metrics stays reachable through the proxy.
// An http proxy forwards HTTP/1.1 upstream itself, over a pool of
// connections each request uses on its own goroutine; the h2c and grpc
// proxies use httputil.ReverseProxy over an http.Transport. gRPC calls
// (ProtocolGRPC) pass through as HTTP/2 streams, and what the proxy says
// itself it says as gRPC statuses.
// Its Balancer spreads requests over several upstreams by power of two
// choices, ejects failing ones for a while, and counts every attempt sent
// upstream.
// A tcp proxy (StartTCP) carries connection faults for any protocol. The
// admin API (Admin) lists proxies and switches faults on and off over
// REST, resctl's own under /api/v1 and Toxiproxy's; it keeps a log of
// events (faults switched, expired, guard transitions, marks) that a
// console polls, and every http proxy keeps its last 900 seconds of
// traffic in one-second buckets for it. Serve runs several proxies behind
// one admin listener for `resctl proxy`.
//
// harness depends on inject; it knows nothing of scenarios, load or reports.
package harness

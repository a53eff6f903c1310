// Package harness runs the harness proxy: a reverse proxy on loopback in
// front of the target that carries the fault switchboard (and, as it grows,
// the guard chain) and serves its own Prometheus metrics on a separate admin
// listener, so the target's /metrics stays reachable through the proxy.
//
// harness depends on inject; it knows nothing of scenarios, load or reports.
package harness

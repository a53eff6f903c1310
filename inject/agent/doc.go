// Package agent injects faults into the Go runtime of a service from the
// inside: goroutine floods, memory pressure, CPU burn and GC pressure, the
// failures a proxy cannot cause. A service mounts an Agent on its debug
// mux; resctl (or anyone with access to the mux) switches faults on over
// HTTP with a Client.
//
// Every fault has a hard TTL enforced inside the service, capped by
// Options.MaxTTL, and size caps, so a controller that dies, or a typo in a
// count, cannot leave the service flooded: the fault ends on its own.
//
// The agent refuses web pages and DNS rebinding as the admin API does
// (internal/localapi): a service's port takes a browser's requests as
// readily as resctl's.
//
// The agent imports nothing of resctl's but the quantity types, the
// strict YAML decoder and those checks, so mounting it costs a service
// little.
package agent

// Package demo is resctl's built-in demo target: a small, self-contained HTTP
// and gRPC service with realistic, seeded log-normal latencies and Prometheus
// metrics.
//
// It is what quickstart scenarios exercise when they say
//
//	target:
//	  builtin: demo
//
// and what `resctl demo-target --listen 127.0.0.1:8080` serves standalone. The
// package's own tests and other packages' tests also use it as a real
// loopback target, so it must stay cheap to start, safe to run several times
// in one process (each [Server] owns its own Prometheus registry and never
// touches the global default registry), and deterministic for a given seed.
//
// Endpoints:
//
//	GET  /api/orders        list of a few orders      (median ≈ 8 ms,  p99 ≈ 25 ms)
//	GET  /api/orders/{id}   one order; 404 if id is not a positive integer
//	                                                  (median ≈ 5 ms,  p99 ≈ 15 ms)
//	POST /api/orders        201 + created order; 400 on bad JSON, 413 over 64 KiB
//	                                                  (median ≈ 12 ms, p99 ≈ 40 ms)
//	GET  /api/users/{id}    one user; 404 if id is not a positive integer
//	                                                  (median ≈ 3 ms,  p99 ≈ 10 ms)
//	GET  /api/slow          deliberately slow         (median ≈ 120 ms, p99 ≈ 400 ms)
//	GET  /healthz           200 "ok", no delay
//	GET  /metrics           Prometheus exposition (Go, process and demo_* metrics)
//
// Anything else gets a JSON 404 (or 405 with an Allow header when the path
// exists under another method). Delays honour request cancellation; a request
// abandoned by its client is counted with code 499. The service is stateless:
// POST echoes the created order but stores nothing, so long load runs do not
// grow memory.
//
// Start and Serve accept both HTTP/1.1 and unencrypted HTTP/2 (h2c, prior
// knowledge) using only the standard library.
//
// The same port serves gRPC: an HTTP/2 request with a gRPC content type goes
// to a grpc.Server (through its ServeHTTP) offering resctl.demo.v1.Orders
// (testdata/protos/demo.proto, generated into demopb) and server reflection:
//
//	GetOrder      unary; NOT_FOUND unless id > 0           (as GET /api/orders/{id})
//	ListOrders    server streaming; limit 0 = 5, ≤ 100     (as GET /api/orders)
//	RecordOrders  client streaming; count and total        (as POST /api/orders)
//	Track         bidirectional; one status per request    (as GET /api/orders/{id}, each)
//
// Each call (each Track request) draws its delay from the profile of the
// matching endpoint, and is counted in demo_grpc_requests_total{method,code}
// and demo_grpc_request_duration_seconds{method}. A call its client abandons
// ends with CANCELLED.
//
// It mounts the runtime-fault agent (inject/agent) at /debug/resctl, as a
// real Go service would, so scenarios can flood its goroutines or pressure
// its heap from the inside.
//
// Ownership: this package is a leaf. Of resctl it imports only inject/agent
// (itself a leaf, the way a service would) and its own demopb; otherwise it
// depends only on the standard library, the Prometheus client and gRPC.
package demo

// Package breakers measures resctl's circuit breaker, and its guarded HTTP
// client (guard.NewTransport with breaker, retry and timeout), against two
// widely used Go libraries in one run — gobreaker, and failsafe-go with its
// HTTP round tripper — so the ratio of their figures is fair. It is a
// module of its own so that the peers never enter resctl's go.mod.
//
//	cd bench/breakers && go test -run '^$' -bench '^Benchmark(Breaker|Gobreaker|Failsafe)_' -benchmem -cpu 1,2 -count 5
//	cd bench/breakers && for i in 1 2 3 4 5; do go test -run '^$' -bench RoundTripper -benchmem -cpu 1,2 -benchtime 200000x -count 1 .; done
package breakers

// Package breakers measures resctl's circuit breaker against two widely used
// Go breakers in one run, so the ratio of their figures is fair. It is a
// module of its own so that the peers never enter resctl's go.mod.
//
//	cd bench/breakers && go test -run '^$' -bench . -benchmem -cpu 1,2 -count 5
package breakers

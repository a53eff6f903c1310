// Package record holds the recording of a run: the one data structure the
// load driver, the phase clock, the fault switchboard and the reports meet
// in. Results are folded into per-second buckets (counts, status codes and an
// HDR latency histogram) and into exact per-phase aggregates as they arrive,
// so memory grows with the run's seconds and phases, never with its requests.
//
// record imports nothing of resctl's; the load driver feeds it and verify and
// report read it.
package record

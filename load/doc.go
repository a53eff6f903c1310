// Package load drives open-loop HTTP load with vegeta as a library: one
// Attack for the whole run, paced by a phased Pacer, so the connection pool
// and the schedule carry across phase boundaries. Every result is folded
// into a record.Recorder as it arrives; nothing per request is kept.
//
// load depends on record and on vegeta; it knows nothing of scenarios,
// proxies or faults.
package load

// Package load drives open-loop load, paced by a phased Pacer: HTTP with
// vegeta as a library (Run: one Attack for the whole run), gRPC with ghz as
// a library (RunGRPC: one Requester for the whole run), so the connections
// and the schedule carry across phase boundaries. Every result is folded
// into a record.Recorder as it arrives; nothing per request is kept.
//
// load depends on record, vegeta and ghz; it knows nothing of scenarios,
// proxies or faults.
package load

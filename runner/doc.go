// Package runner runs a scenario end to end: it starts the target (or checks
// that it is reachable) and the harness proxy, drives the load through the
// proxy while a phase clock switches faults on and off, and turns the
// recording into a report with SLA verdicts.
//
// It is the one package that knows every other: cmd depends on it; it
// depends on scenario, harness, load, record, verify, inject, report and the
// built-in demo target. Nothing depends on it but cmd.
package runner

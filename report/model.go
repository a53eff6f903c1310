package report

import (
	"fmt"
	"time"
)

// Schema names the version of the report.json contract. Later versions of
// resctl extend v1 compatibly (new fields only); a breaking change gets a
// new name.
const Schema = "resctl.report/v1"

// Report is everything a run produced, in the shape every format renders.
type Report struct {
	Schema   string `json:"schema"`
	Scenario string `json:"scenario"`
	// File is the scenario file the run read.
	File    string `json:"file,omitempty"`
	Version string `json:"resctl_version"`
	Seed    uint64 `json:"seed"`
	// Target describes the service under test, e.g. "builtin demo" or a URL.
	Target    string    `json:"target"`
	StartedAt time.Time `json:"started_at"`
	// DurationS is how long the run lasted, in seconds.
	DurationS float64 `json:"duration_s"`
	// Passed is true when the run completed and every SLA passed.
	Passed bool `json:"passed"`
	// Interrupted is true when the run was stopped before its last phase
	// ended; what was recorded until then is reported.
	Interrupted bool `json:"interrupted,omitempty"`
	// Error says why the run failed, if it did.
	Error string `json:"error,omitempty"`
	// Reached says how far a run that stopped early (interrupted, failed)
	// got: a start-up step ("starting service db", "starting the target",
	// …) or "phase NAME", the phase it was in.
	Reached string `json:"reached,omitempty"`
	// Aborted says why a safeguard SLA (steady_state, abort_on_breach)
	// stopped the run early; the verdict is then a failure.
	Aborted string `json:"aborted,omitempty"`
	// Session marks the report of an interactive chaos session (resctl
	// chaos): an exploration with no SLAs of its own, whose verdict is
	// RECORDED, neither passed nor failed.
	Session bool `json:"session,omitempty"`
	// Shard is "i/N" for the report of one shard of a distributed load
	// (resctl load --shard), which covers that shard's requests only.
	Shard string `json:"shard,omitempty"`

	// Warnings are what the run warned about as it went, as printed
	// (a target without /metrics, a fault that did not start, …);
	// run.generator_behind and scrape_errors have fields of their own.
	Warnings []string `json:"warnings,omitempty"`

	Phases []Phase      `json:"phases"`
	Total  Phase        `json:"total"`
	SLAs   []SLA        `json:"slas"`
	Faults []Fault      `json:"faults"`
	Events []Event      `json:"events,omitempty"`
	Series []Second     `json:"series"`
	Run    RunResources `json:"run"`
	// ErrorReasons say why requests failed, grouped: status codes,
	// transport errors (reset, refused, timeout), failed response checks,
	// drops at the in-flight cap; most frequent first within each kind.
	ErrorReasons []ErrorReason `json:"error_reasons,omitempty"`

	// Metrics are the series scraped from Prometheus endpoints during the
	// run (the proxy's, the target's, any others).
	Metrics []MetricSeries `json:"metrics,omitempty"`
	// Panels are the scraped series the scenario chose to chart.
	Panels []Panel `json:"panels,omitempty"`
	// ScrapeErrors are failed scrapes: gaps in Metrics, with the reason.
	ScrapeErrors []ScrapeError `json:"scrape_errors,omitempty"`
	// Processes are the processes resctl started that process faults
	// may act on, with their restarts and readiness.
	Processes []Process `json:"processes,omitempty"`
	// Guards are the run's guard policies with the state each started
	// in: with the transition events, the state of every one at any
	// instant, including one that never changed.
	Guards []GuardState `json:"guards,omitempty"`
}

// GuardState is a guard policy of the run: its kind as SLAs name
// it (breaker("orders") reads kind breaker, name orders) and the state it
// started in.
type GuardState struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Initial string `json:"initial"`
}

// ErrorReason is one reason requests failed, with how many failed for it
// in each phase.
type ErrorReason struct {
	// Kind is status, transport, check or dropped.
	Kind string `json:"kind"`
	// Reason is the detail: a status code, "connection refused", the
	// check that failed ("body does not contain \"id\"").
	Reason string `json:"reason"`
	// Phases counts the failures of each phase, in the order of
	// Report.Phases; Total those of the whole run.
	Phases []uint64 `json:"phases"`
	Total  uint64   `json:"total"`
}

// ReasonKinds are the kinds of ErrorReason, in the order reports list them.
var ReasonKinds = []string{"status", "transport", "check", "dropped"}

// MetricSeries is one scraped time series.
type MetricSeries struct {
	// Source is the endpoint's name in the scenario ("target", "proxy", …).
	Source string            `json:"source"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Type is the metric family's type: counter, gauge, histogram,
	// summary or untyped.
	Type string `json:"type,omitempty"`
	// Points are [offset in seconds from the run's start, value] pairs.
	Points [][2]float64 `json:"points"`
}

// Panel is a chart of scraped series in the HTML report.
type Panel struct {
	Title string `json:"title"`
	// Selector is the SLA selector the panel charts, when the panel is
	// there because an SLA reads it; its title is then the selector too.
	Selector string `json:"selector,omitempty"`
	// Unit tells how to label the axis: "bytes", "seconds", "" (plain).
	Unit   string         `json:"unit,omitempty"`
	Series []MetricSeries `json:"series"`
}

// ScrapeError is a scrape that failed.
type ScrapeError struct {
	Source string  `json:"source"`
	AtS    float64 `json:"at_s"`
	Error  string  `json:"error"`
}

// Phase summarises one phase (or, as Report.Total, the whole run).
type Phase struct {
	Name string `json:"name"`
	// NotRun is true for a phase the run never reached (it was interrupted
	// or failed before); its figures are all zero.
	NotRun bool `json:"not_run,omitempty"`
	// StartS and EndS are offsets from the run's start, in seconds.
	StartS    float64 `json:"start_s"`
	EndS      float64 `json:"end_s"`
	Requests  uint64  `json:"requests"`
	Successes uint64  `json:"successes"`
	Errors    uint64  `json:"errors"`
	// Fallbacks counts the successes a guard's fallback served instead of
	// the target. They are included in Successes (the client got an
	// answer), so the target itself served Successes - Fallbacks.
	Fallbacks uint64 `json:"fallbacks,omitempty"`
	// Dropped counts requests never sent because the in-flight cap was
	// reached; they are included in Errors.
	Dropped     uint64  `json:"dropped,omitempty"`
	SuccessRate float64 `json:"success_rate"`
	RPS         float64 `json:"rps"`
	// LatencyMs is the response time: from when the schedule meant each
	// request to go out to the end of its response, so a generator that
	// fell behind cannot hide a slow target (coordinated omission).
	LatencyMs Latency `json:"latency_ms"`
	// ServiceMs is the service time, from when each request really went
	// out; LagMs is how late the generator sent them. Phases and the
	// total have both.
	ServiceMs *Latency          `json:"service_ms,omitempty"`
	LagMs     *Latency          `json:"lag_ms,omitempty"`
	Codes     map[string]uint64 `json:"codes,omitempty"`
}

// Latency percentiles in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// SLA is the verdict on one expectation.
type SLA struct {
	Name   string `json:"name"`
	Expect string `json:"expect"`
	// During is the phase the SLA was checked over; empty for the whole run.
	During string `json:"during,omitempty"`
	Passed bool   `json:"passed"`
	// NotRun is true for an SLA that was never checked because the run
	// stopped before its phase (or, stopped during start-up, before any
	// phase): neither passed nor failed.
	NotRun bool `json:"not_run,omitempty"`
	// Observed lists the measured value of every series the expression
	// used, e.g. "success_rate=99.82%, p99=121ms".
	Observed string `json:"observed"`
	// Values are the same measurements in canonical units (seconds,
	// fractions, counts).
	Values map[string]float64 `json:"values,omitempty"`
	// Error says why the SLA could not be decided (no data), if so.
	Error string `json:"error,omitempty"`
	// NotEvaluated, when set, says why the SLA was not judged at all: its
	// evidence (scraped metrics, fault or guard states) is not among what
	// the report was made from, as in a merge of load shards' results
	// without the coordinator's report; or an interrupt cut its window
	// (the whole run, a phase) short, and a part of a window decides
	// nothing of the whole: Observed then holds what the part showed.
	// Such an SLA has Passed false but does not fail the run
	// (Report.Passed ignores it).
	NotEvaluated string `json:"not_evaluated,omitempty"`
	// Kind is "check" for a condition over a window, "time_to" or
	// "recovery_time" for timing SLAs.
	Kind string `json:"kind,omitempty"`
	// AtS is, for timing SLAs, the instant (offset in seconds from the
	// run's start) at which detection or recovery happened, so reports can
	// mark it on the timeline; absent when it never happened.
	AtS *float64 `json:"at_s,omitempty"`
	// Checks explain the comparisons the expression makes, in the order
	// written: what each read, its limit, whether it held and when not,
	// so reports can say why an SLA failed and draw each limit on the
	// chart of what it reads.
	Checks []SLACheck `json:"checks,omitempty"`
}

// SLACheck is one comparison of an SLA's expression.
type SLACheck struct {
	// Subject is what is compared, labelled as in Observed: "p99",
	// "last(target:go_goroutines)", "time_to", `breaker("orders")`.
	Subject string `json:"subject"`
	// Op is "<", "<=", ">", ">=", "==" or "!=", read from the subject's
	// side (a limit written first is turned round).
	Op string `json:"op"`
	// Unit is the kind of Value and Limit: ratio, duration (seconds),
	// count, rate (per second), bytes or plain.
	Unit string `json:"unit,omitempty"`
	// Value is the subject over the SLA's window, in canonical units;
	// absent when it had no data, never happened (a timing function) or
	// is read at each instant (Within). ValueState is a state subject's
	// state at the window's end.
	Value      *float64 `json:"value,omitempty"`
	ValueState string   `json:"value_state,omitempty"`
	// Limit is what the subject is held to, in canonical units; absent
	// when it varies over the window. LimitState is the state compared
	// with.
	Limit      *float64 `json:"limit,omitempty"`
	LimitState string   `json:"limit_state,omitempty"`
	Held       bool     `json:"held"`
	// Load names the load series the subject is (p99, success_rate, …),
	// read second by second in the report's series; Selector the scraped
	// selector it reads, and Func the function applied to it (rate, avg,
	// last, …; empty for the bare selector).
	Load     string `json:"load,omitempty"`
	Selector string `json:"selector,omitempty"`
	Func     string `json:"func,omitempty"`
	// Within names the timing function (time_to, recovery_time) whose
	// condition this comparison is part of; it is then read at each
	// instant, and has no Value of its own.
	Within string `json:"within,omitempty"`
	// StateKind and StateName name the stateful thing a state subject
	// reads: breaker("orders") is kind breaker, name orders.
	StateKind string `json:"state_kind,omitempty"`
	StateName string `json:"state_name,omitempty"`
	// SinceS is, for a timing subject, the instant it counted from: the
	// deadline is SinceS + Limit.
	SinceS *float64 `json:"since_s,omitempty"`
	// Breaches are the stretches of the SLA's window, [from_s, to_s],
	// in which a comparison that did not hold broke its limit second by
	// second; given where the subject means the same over a second as
	// over the window (a percentile, a ratio, a gauge's value, a rate).
	Breaches [][2]float64 `json:"breaches,omitempty"`
}

// Fault is what one fault of the scenario did.
type Fault struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Proxy names the proxy the fault acted on: "proxy" for the main one,
	// or a named proxy's name; empty for a runtime fault.
	Proxy string `json:"proxy,omitempty"`
	Phase string `json:"phase"`
	// Config is the fault's parameters as the scenario gave them.
	Config any `json:"config"`
	// Matched counts requests the fault's selector matched; Injected
	// counts those it acted on.
	Matched  uint64 `json:"matched"`
	Injected uint64 `json:"injected"`
	// ConfiguredRate is the share of matched requests the fault was set to
	// act on; EffectiveRate is the share it did act on. Both 0..1.
	ConfiguredRate float64 `json:"configured_rate"`
	EffectiveRate  float64 `json:"effective_rate"`
	// Fired is false for a fault that never acted on anything: a
	// selector that matched no request is the usual cause.
	Fired bool `json:"fired"`
	// NotRun is true for a fault of a phase the run never reached (it was
	// interrupted or aborted before): it had no chance to act, so it is
	// neither fired nor a fault that never fired, and its figures are zero.
	NotRun bool `json:"not_run,omitempty"`
	// Layer is where the fault acted: "http" on requests, "grpc" on
	// calls, "tcp" on connections, "runtime" inside the service through
	// the target's agent (goroutines, memory, cpu, gc), "network" on the
	// packets of a proxy's link to its upstream, "process" on a process
	// resctl started (Matched counts its planned actions, Injected those
	// it took).
	Layer string `json:"layer,omitempty"`
	// Error says why a runtime or network fault did not start, or what
	// went wrong while it was on.
	Error string `json:"error,omitempty"`
	// OnS is how long a fault that came and went within its phase (a
	// flapping network fault) was on, in seconds; 0 otherwise.
	OnS float64 `json:"on_s,omitempty"`
	// StartS and EndS bound the time the fault was on, as offsets in seconds.
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

// Event is an instant of the run worth marking: a fault on or off, a phase
// boundary, a guard transition.
type Event struct {
	AtS    float64 `json:"at_s"`
	Source string  `json:"source"`
	Kind   string  `json:"kind"`
	Detail string  `json:"detail,omitempty"`
	// Name, From and To describe a state transition (Source "guard",
	// Kind "transition"): which policy, and its states before and after.
	Name string `json:"name,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Second is one point of the per-second series.
type Second struct {
	T         int    `json:"t"`
	Requests  uint64 `json:"requests"`
	Successes uint64 `json:"successes"`
	Errors    uint64 `json:"errors"`
	// Fallbacks counts the successes of this second that a fallback
	// served; they are included in Successes, as in Phase.
	Fallbacks uint64 `json:"fallbacks,omitempty"`
	// P50Ms … MaxMs are response-time percentiles of the requests sent in
	// this second: what the client waited, from send to the end of the
	// response. The SLA series p50 … max judge these.
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P95Ms float64 `json:"p95_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// ServiceP50Ms … ServiceP99Ms are service-time percentiles: the time
	// the target spent serving, without the time a request queued before it
	// (in the generator or the proxy). Absent when the load side does not
	// measure them; reports then draw response time only.
	ServiceP50Ms float64 `json:"service_p50_ms,omitempty"`
	ServiceP95Ms float64 `json:"service_p95_ms,omitempty"`
	ServiceP99Ms float64 `json:"service_p99_ms,omitempty"`
	// In a second where some requests failed, SuccessP50Ms … SuccessMaxMs
	// are the response-time percentiles of its successes alone, and
	// ErrorP50Ms … ErrorMaxMs those of its failures, so a failure that
	// comes back fast does not pass for a speed-up; absent in a second
	// without failures (its successes' are P50Ms …).
	SuccessP50Ms float64 `json:"success_p50_ms,omitempty"`
	SuccessP90Ms float64 `json:"success_p90_ms,omitempty"`
	SuccessP95Ms float64 `json:"success_p95_ms,omitempty"`
	SuccessP99Ms float64 `json:"success_p99_ms,omitempty"`
	SuccessMaxMs float64 `json:"success_max_ms,omitempty"`
	ErrorP50Ms   float64 `json:"error_p50_ms,omitempty"`
	ErrorP99Ms   float64 `json:"error_p99_ms,omitempty"`
	ErrorMaxMs   float64 `json:"error_max_ms,omitempty"`
	// ErrorReasons counts the second's failures by reason ("kind:
	// detail", as ErrorReason), its most frequent few only.
	ErrorReasons map[string]uint64 `json:"error_reasons,omitempty"`
}

// SecondReasons is how many reasons a Second keeps.
const SecondReasons = 3

// split says whether the second's latency is split between successes and
// failures.
func (s Second) split() bool { return s.ErrorMaxMs > 0 }

// RunResources is what the run cost the machine resctl ran on.
type RunResources struct {
	// PeakRSSBytes is the resctl process's peak resident memory, where the
	// platform reports it.
	PeakRSSBytes uint64 `json:"peak_rss_bytes,omitempty"`
	// Sent counts requests the load generator sent; Scheduled counts the
	// ones the schedule asked for.
	Sent      uint64 `json:"sent"`
	Scheduled uint64 `json:"scheduled"`
	// Dropped counts requests not sent because the in-flight cap was
	// reached.
	Dropped uint64 `json:"dropped,omitempty"`
	// GeneratorBehind is true when the load was not what the schedule
	// asked for: under 99% of the scheduled requests went out (sent or
	// dropped), requests were dropped at the in-flight cap, or 1% of them
	// went out more than GeneratorLagLimit late. BehindReason says which.
	GeneratorBehind bool   `json:"generator_behind,omitempty"`
	BehindReason    string `json:"behind_reason,omitempty"`
}

// JudgeGenerator sets BehindReason and GeneratorBehind from the counts
// and lagP99, how late the p99 request went out: the load was not what
// the schedule asked for when under 99% of the scheduled requests went
// out (judged only when scheduledFinal: a load still running has
// requests in flight), requests were dropped at the in-flight cap, or the
// p99 went out more than GeneratorLagLimit late.
func (r *RunResources) JudgeGenerator(lagP99 time.Duration, scheduledFinal bool) {
	switch {
	case scheduledFinal && float64(r.Sent+r.Dropped) < 0.99*float64(r.Scheduled):
		r.BehindReason = fmt.Sprintf("sent %d of %d scheduled requests", r.Sent+r.Dropped, r.Scheduled)
	case r.Dropped > 0:
		r.BehindReason = fmt.Sprintf("dropped %d requests at the in-flight cap (load.max_in_flight)", r.Dropped)
	case lagP99 > GeneratorLagLimit:
		r.BehindReason = fmt.Sprintf("1%% of requests went out over %v late (p99 lag %v)", GeneratorLagLimit, lagP99.Round(time.Millisecond))
	default:
		r.BehindReason = ""
	}
	r.GeneratorBehind = r.BehindReason != ""
}

// behind says how the generator fell behind, for people.
func (r RunResources) behind() string {
	if r.BehindReason != "" {
		return r.BehindReason
	}
	return fmt.Sprintf("it sent %d of %d scheduled requests", r.Sent, r.Scheduled)
}

// GeneratorLagLimit is how late the generator's p99 send may be before the
// run is flagged as one whose generator could not keep up.
const GeneratorLagLimit = 50 * time.Millisecond

// Ms converts a duration to milliseconds for the report.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Secs is d in seconds to the microsecond, as report.json gives instants
// and spans: 4.640939, not 4.6409398060000004.
func Secs(d time.Duration) float64 { return float64(d.Microseconds()) / 1e6 }

// Process is a process resctl started for the run (the target, a
// service) that process faults may act on.
type Process struct {
	Name string `json:"name"`
	// Restarts counts the starts after the first.
	Restarts int `json:"restarts"`
	// ReadyS is how long each start took to pass its readiness check,
	// in seconds, the first start's first.
	ReadyS []float64 `json:"ready_s,omitempty"`
	// NotReadyS is how long, during the run, it was not ready: down,
	// paused or starting.
	NotReadyS float64 `json:"not_ready_s"`
	// State is its state as the run ended.
	State string `json:"state"`
}

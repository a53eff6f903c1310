package record

import (
	"maps"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Recording is a run as recorded: per-second and per-phase summaries, where
// the phases lay, and what the faults and guards did.
type Recording struct {
	Start      time.Time   `json:"start"`
	Phases     []PhaseSpan `json:"phases"`
	PhaseStats []Summary   `json:"phase_stats"`
	Seconds    []Summary   `json:"seconds"`
	Total      Summary     `json:"total"`
	Events     []Event     `json:"events,omitempty"`
}

// Event is something that happened at an instant of the run: a fault
// switched on or off, a guard changed state.
type Event struct {
	At     time.Duration `json:"at"`
	Source string        `json:"source"`
	Kind   string        `json:"kind"`
	Detail string        `json:"detail,omitempty"`
	// Name, From and To describe a state transition: which policy, and
	// its states before and after.
	Name string `json:"name,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Latency holds latency percentiles. Values are exact to 0.1%; Min and Max
// are exact to the microsecond.
type Latency struct {
	Min, Mean, P50, P90, P95, P99, P999, Max time.Duration
}

// Summary is what happened over a stretch of the run.
type Summary struct {
	Counts
	// Latency is the response time: from when the schedule meant each
	// request to go out to the end of its response.
	Latency Latency `json:"-"`
	// Service is the service time, from when each request really went
	// out, and Lag how late the generator sent them. A phase's summary
	// and the total have them; a second's does not (zero).
	Service Latency `json:"-"`
	Lag     Latency `json:"-"`
	// SuccessLatency and ErrorLatency split a second's response times
	// between the requests that succeeded and those that failed, so a
	// report can draw the two apart: failures that come back fast (a
	// refused connection) must not look like a speed-up. Only a second
	// with failed requests that were sent has them; in any other second
	// Latency is the successes'.
	SuccessLatency Latency `json:"-"`
	ErrorLatency   Latency `json:"-"`
}

// SuccessRate is the share of requests that succeeded, 0..1; 0 for none.
func (s Summary) SuccessRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Successes) / float64(s.Requests)
}

// FallbackRate is the share of requests a fallback served, 0..1.
func (s Summary) FallbackRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Fallbacks) / float64(s.Requests)
}

// UpstreamSuccessRate is the share of requests that succeeded with an
// answer from the upstream, not a fallback's, 0..1.
func (s Summary) UpstreamSuccessRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Successes-min(s.Fallbacks, s.Successes)) / float64(s.Requests)
}

// ErrorRate is the share of requests that failed, 0..1.
func (s Summary) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

func summarizeHist(c Counts, h *hdrhistogram.Histogram, minUs, maxUs int64) Summary {
	s := Summary{Counts: c}
	s.Codes = maps.Clone(c.Codes)
	s.GRPCCodes = maps.Clone(c.GRPCCodes)
	s.Reasons = maps.Clone(c.Reasons)
	if c.Requests == 0 || h.TotalCount() == 0 {
		return s
	}
	s.Latency = percentiles(h, minUs, maxUs)
	return s
}

// percentiles summarises a histogram of microseconds whose exact least and
// greatest values are minUs and maxUs.
func percentiles(h *hdrhistogram.Histogram, minUs, maxUs int64) Latency {
	// Percentiles are by nearest rank: the smallest value with at least
	// permille/1000 of the values at or below it. HDR rounds p·n to the
	// closest rank instead, which picks the value one rank lower whenever
	// p·n is just above a whole number (p999 of 1713 results would be the
	// 1711th, not the 1712th, value); in a heavy tail that is far more than
	// the histogram's 0.1%. So ask HDR for a percentile whose rounded rank
	// is the nearest rank; the quarter keeps float error off the boundary.
	n := h.TotalCount()
	q := func(permille int64) time.Duration {
		rank := (permille*n + 999) / 1000
		v := h.ValueAtPercentile(100 * (float64(rank) - 0.25) / float64(n))
		v = min(max(v, minUs), maxUs)
		return time.Duration(v) * time.Microsecond
	}
	return Latency{
		Min:  time.Duration(minUs) * time.Microsecond,
		Mean: time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:  q(500),
		P90:  q(900),
		P95:  q(950),
		P99:  q(990),
		P999: q(999),
		Max:  time.Duration(maxUs) * time.Microsecond,
	}
}

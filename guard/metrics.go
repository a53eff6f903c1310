package guard

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descState       = prometheus.NewDesc("resctl_guard_state", "Whether a guard policy is in a state (1) or not (0).", []string{"policy", "kind", "state"}, nil)
	descTransitions = prometheus.NewDesc("resctl_guard_transitions_total", "State transitions of a guard policy.", []string{"policy", "kind", "from", "to"}, nil)
	descAdmitted    = prometheus.NewDesc("resctl_guard_admitted_total", "Calls a guard policy admitted.", []string{"policy", "kind"}, nil)
	descRejected    = prometheus.NewDesc("resctl_guard_rejected_total", "Calls a guard policy rejected, by reason.", []string{"policy", "kind", "reason"}, nil)
	descLimit       = prometheus.NewDesc("resctl_guard_limit", "The current limit of a guard policy: calls in flight, or calls per second for rate limits.", []string{"policy", "kind"}, nil)
	descInFlight    = prometheus.NewDesc("resctl_guard_in_flight", "Calls a guard policy admitted that have not ended.", []string{"policy", "kind"}, nil)
	descProbability = prometheus.NewDesc("resctl_guard_throttle_probability", "The share of calls a throttle rejects now.", []string{"policy", "kind"}, nil)
	descMemory      = prometheus.NewDesc("resctl_guard_memory_bytes", "The smoothed memory signal a memory policy watches.", []string{"policy", "kind"}, nil)
	descCPU         = prometheus.NewDesc("resctl_guard_cpu_usage", "The smoothed CPU usage a shed policy watches, 0..1.", []string{"policy", "kind"}, nil)
)

// Optional gauges, found by type assertion.
type (
	limited     interface{ Limit() float64 }
	inFlighter  interface{ InFlight() int64 }
	probability interface{ Probability() float64 }
	memoryUser  interface{ Bytes() uint64 }
	cpuUser     interface{ CPU() float64 }
	cored       interface{ self() *core }
	// collector is implemented by policies with metrics of their own
	// (the call wrappers' attempts, retries, hedges, fallbacks).
	collector interface {
		collect(ch chan<- prometheus.Metric)
	}
)

// Collector exports the metrics of a set of policies: state, transitions,
// admitted and rejected calls, and the current limit where a policy has
// one. It is an unchecked collector (Describe sends nothing), so several —
// one per chain — can be registered on one registry as long as policy
// names are distinct. Policies of other packages are skipped.
type Collector struct{ policies []Policy }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector over the policies.
func NewCollector(policies ...Policy) *Collector { return &Collector{policies: policies} }

// Collector returns a Collector over the chain's policies, for the
// caller's registry (never the global default one).
func (c *Chain) Collector() *Collector { return NewCollector(c.policies...) }

// Describe implements prometheus.Collector, describing nothing: see
// Collector.
func (*Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range m.policies {
		cp, ok := p.(cored)
		if !ok {
			continue
		}
		c := cp.self()
		name, kind := c.name, c.kind
		st := c.state.Load()
		for i, s := range c.states {
			v := 0.0
			if int32(i) == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, name, kind, s)
		}
		c.mu.Lock()
		for k, n := range c.transitions {
			ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(n), name, kind, c.states[k[0]], c.states[k[1]])
		}
		c.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descAdmitted, prometheus.CounterValue, float64(c.admittedCount()), name, kind)
		for i, r := range c.reasons {
			ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(c.rejected[i].Load()), name, kind, r)
		}
		if l, ok := p.(limited); ok {
			ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, l.Limit(), name, kind)
		}
		if f, ok := p.(inFlighter); ok {
			ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(f.InFlight()), name, kind)
		}
		if t, ok := p.(probability); ok {
			ch <- prometheus.MustNewConstMetric(descProbability, prometheus.GaugeValue, t.Probability(), name, kind)
		}
		if u, ok := p.(memoryUser); ok {
			ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(u.Bytes()), name, kind)
		}
		if u, ok := p.(cpuUser); ok {
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.GaugeValue, u.CPU(), name, kind)
		}
		if x, ok := p.(collector); ok {
			x.collect(ch)
		}
	}
}

package harness

import (
	"github.com/resctl/resctl/guard"
)

// PolicyInfo is a guard policy as the admin API shows it: its state and
// the numbers it keeps cheaply. Fields a policy has no use for are left
// out.
type PolicyInfo struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	// Admitted counts calls the policy let through; Rejected those it
	// refused, by reason.
	Admitted uint64            `json:"admitted"`
	Rejected map[string]uint64 `json:"rejected,omitempty"`
	// Limit is the current limit (calls in flight, or calls per second
	// for a rate limit), InFlight the calls admitted and not yet ended,
	// Probability a throttle's share of calls rejected now.
	Limit       *float64 `json:"limit,omitempty"`
	InFlight    *int64   `json:"in_flight,omitempty"`
	Probability *float64 `json:"probability,omitempty"`
	// Calls is what a retry, hedge or fallback was handed; Retried,
	// Hedged and Fallbacks what it did for them; BudgetExhausted the
	// retries or hedges its budget refused.
	Calls           uint64 `json:"calls,omitempty"`
	Retried         uint64 `json:"retried,omitempty"`
	Hedged          uint64 `json:"hedged,omitempty"`
	Fallbacks       uint64 `json:"fallbacks,omitempty"`
	BudgetExhausted uint64 `json:"budget_exhausted,omitempty"`
}

// guardChained is a Target with guard chains: http, h2c and grpc proxies.
type guardChained interface {
	guardChains() []*guard.Chain
}

// policyInfos describes the policies of the chains, proxy-wide first.
func policyInfos(chains []*guard.Chain) []PolicyInfo {
	var out []PolicyInfo
	for _, c := range chains {
		for _, p := range c.Policies() {
			out = append(out, policyInfo(p))
		}
	}
	return out
}

func policyInfo(p guard.Policy) PolicyInfo {
	info := PolicyInfo{Name: p.Name()}
	if k, ok := p.(interface{ Kind() string }); ok {
		info.Kind = k.Kind()
	}
	if s, ok := p.(interface{ Stats() guard.Stats }); ok {
		st := s.Stats()
		info.State, info.Admitted = st.State, st.Admitted
		if len(st.Rejected) > 0 {
			info.Rejected = st.Rejected
		}
	}
	if l, ok := p.(interface{ Limit() float64 }); ok {
		v := l.Limit()
		info.Limit = &v
	}
	if f, ok := p.(interface{ InFlight() int64 }); ok {
		v := f.InFlight()
		info.InFlight = &v
	}
	if t, ok := p.(interface{ Probability() float64 }); ok {
		v := t.Probability()
		info.Probability = &v
	}
	switch x := p.(type) {
	case *guard.Retry:
		s := x.RetryStats()
		info.Calls, info.Retried, info.BudgetExhausted = s.Calls, s.Retried, s.BudgetExhausted
	case *guard.Hedge:
		s := x.HedgeStats()
		info.Calls, info.Hedged, info.BudgetExhausted = s.Calls, s.Sent, s.BudgetExhausted
	case *guard.Fallback:
		s := x.FallbackStats()
		info.Calls, info.Fallbacks = s.Calls, s.Static+s.LastGood+s.File
	}
	return info
}

package harness

import (
	"github.com/resctl/resctl/guard"
)

// Defaults of BalanceConfig, as a scenario gets them for the keys it
// leaves out (the ejection's are guard's).
const (
	DefaultConsecutiveFailures = guard.DefaultConsecutiveFailures
	DefaultEjectionBaseTime    = guard.DefaultEjectionBaseTime
	DefaultEjectionMaxTime     = guard.DefaultEjectionMaxTime
	DefaultMaxEjectionPercent  = guard.DefaultMaxEjectionPercent
	// DefaultIdleTimeout closes upstream connections idle this long, as
	// the proxy always has.
	DefaultIdleTimeout = guard.DefaultPoolIdleTimeout
)

// The balancer is guard's, so that a service's own clients balance as
// the proxy does; these are its names in the harness.
type (
	// Balancer is guard.Balancer.
	Balancer = guard.Balancer
	// Upstream is guard.Upstream.
	Upstream = guard.Upstream
	// UpstreamStats is guard.UpstreamStats.
	UpstreamStats = guard.UpstreamStats
	// EjectionConfig is guard.EjectionConfig.
	EjectionConfig = guard.EjectionConfig
	// Outcome is guard.UpstreamOutcome.
	Outcome = guard.UpstreamOutcome
)

// Upstream outcomes and states, as guard names them.
const (
	OutcomeSuccess  = guard.UpstreamSuccess
	Outcome5xx      = guard.Upstream5xx
	OutcomeError    = guard.UpstreamError
	OutcomeTimeout  = guard.UpstreamTimeout
	OutcomeCanceled = guard.UpstreamCanceled
	UpstreamHealthy = guard.UpstreamHealthy
	UpstreamEjected = guard.UpstreamEjected
	EWMADecay       = guard.EWMADecay
	FailurePenalty  = guard.FailurePenalty
)

// NewBalancer is guard.NewBalancer.
func NewBalancer(upstreams []string, cfg EjectionConfig, o guard.Options) (*Balancer, error) {
	return guard.NewBalancer(upstreams, cfg, o)
}

// BalanceConfig configures a proxy's upstream connections and, when it has
// several upstreams, how it sets failing ones aside. It is plain data: the
// proxy takes it as given, and DefaultBalanceConfig is what a scenario
// gets for the keys it leaves out.
type BalanceConfig struct {
	Ejection EjectionConfig `yaml:"ejection"`
	Pool     PoolConfig     `yaml:"pool"`
}

// PoolConfig bounds the proxy's connections to each upstream host: the
// pool limits a service's own client has too (guard.PoolConfig).
type PoolConfig = guard.PoolConfig

// DefaultBalanceConfig ejects after 5 failures in a row for 30s, growing to
// 5m, at most half of the upstreams at once; closes idle connections after
// 90s; and caps neither connections nor their lifetime.
func DefaultBalanceConfig() BalanceConfig {
	return BalanceConfig{
		Ejection: guard.DefaultEjectionConfig(),
		Pool:     PoolConfig{IdleTimeout: DefaultIdleTimeout},
	}
}

// Check reports each impossible value by its YAML key, as guard configs do.
func (c *BalanceConfig) Check(problem func(field, msg string)) {
	c.Ejection.Check(func(field, msg string) { problem("ejection."+field, msg) })
	c.Pool.Check(func(field, msg string) { problem("pool."+field, msg) })
}

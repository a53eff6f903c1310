package harness

import (
	"time"

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
	DefaultIdleTimeout = 90 * time.Second
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

// PoolConfig bounds the proxy's connections to each upstream host.
type PoolConfig struct {
	// MaxConns caps the connections to one upstream, in use or idle
	// (http.Transport's MaxConnsPerHost); a request beyond it waits for
	// one to free up. 0 sets no cap.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes a connection idle this long; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxLifetime retires connections older than this, so that traffic
	// follows an upstream that is scaled or moved behind one address. A
	// connection past its lifetime is never reused: the request that
	// would reuse it goes out on it with Connection: close (HTTP/1.1), or
	// marks it not to be reused (HTTP/2), so it closes once that request
	// is done. An idle one past its lifetime closes at IdleTimeout at the
	// latest. 0 sets no lifetime.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

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
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"pool.max_conns", int64(c.Pool.MaxConns)},
		{"pool.idle_timeout", int64(c.Pool.IdleTimeout)},
		{"pool.max_lifetime", int64(c.Pool.MaxLifetime)},
	} {
		if f.v < 0 {
			problem(f.key, "must not be negative (0 means no limit, or the default)")
		}
	}
}

package guard_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/quantity"
)

func TestKinds(t *testing.T) {
	want := []string{"adaptive_limit", "breaker", "bulkhead", "concurrency_breaker", "fallback", "hedge", "memory", "rate_limit", "retry", "shed", "throttle", "timeout"}
	if got := guard.Kinds(); !slices.Equal(got, want) {
		t.Fatalf("Kinds() = %v, want %v", got, want)
	}
	for _, k := range want {
		c, ok := guard.NewConfig(k)
		if !ok || c.Kind() != k {
			t.Errorf("NewConfig(%q) = %v, %v", k, c, ok)
		}
	}
	if _, ok := guard.NewConfig("circuit"); ok {
		t.Error("NewConfig(circuit) found a kind")
	}
}

func TestLookup_UnknownKind(t *testing.T) {
	_, err := guard.Lookup("brekaer")
	var ce *guard.ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Field != "kind" {
		t.Fatalf("Lookup(brekaer) = %v, want a ConfigError on kind", err)
	}
	if !strings.Contains(err.Error(), "breaker") {
		t.Errorf("error %q does not list the known kinds", err)
	}
}

// TestDefaults_Check: every kind's defaults pass Check, except rate_limit,
// whose rate has no default and must be named.
func TestDefaults_Check(t *testing.T) {
	for _, k := range guard.Kinds() {
		c, _ := guard.NewConfig(k)
		ps := problems(c)
		if k == "rate_limit" {
			if len(ps) != 1 || !strings.HasPrefix(ps[0], "rate: ") {
				t.Errorf("rate_limit defaults: problems %q, want only rate", ps)
			}
			continue
		}
		if len(ps) > 0 {
			t.Errorf("%s defaults fail Check: %q", k, ps)
		}
	}
}

// TestConfig_BadInput: impossible configurations are errors that name the
// field, from Check and from Build, never a panic or a clamped value.
func TestConfig_BadInput(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		edit  func(guard.Config)
		field string
	}{
		{"failure rate above 100%", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).FailureRate = 120 }, "failure_rate"},
		{"negative failure rate", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).FailureRate = -1 }, "failure_rate"},
		{"slow-call rate above 100%", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).SlowCall.Rate = 101 }, "slow_call.rate"},
		{"window of zero", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).Window = guard.Window{} }, "window"},
		{"window of a fraction of a second", "breaker", func(c guard.Config) {
			c.(*guard.BreakerConfig).Window = guard.Window{Duration: 1500 * time.Millisecond}
		}, "window"},
		{"min_calls above a count window", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).MinCalls = 500 }, "min_calls"},
		{"half-open probes of zero", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).HalfOpen.Probes = 0 }, "half_open.probes"},
		{"more successes than probes", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).HalfOpen.Successes = 9 }, "half_open.successes"},
		{"open_for of zero", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).OpenFor = 0 }, "open_for"},
		{"backoff multiplier below 1", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).Backoff.Multiplier = 0.5 }, "backoff.multiplier"},
		{"jitter of 100%", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).Backoff.Jitter = 100 }, "backoff.jitter"},
		{"unknown status class", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).Failure.Status = []string{"5xx", "6xx"} }, "failure.status[1]"},
		{"unknown gRPC code", "breaker", func(c guard.Config) { c.(*guard.BreakerConfig).Failure.GRPC = []string{"BROKEN"} }, "failure.grpc[0]"},
		{"negative K", "throttle", func(c guard.Config) { c.(*guard.ThrottleConfig).K = -2 }, "k"},
		{"K below 1", "throttle", func(c guard.Config) { c.(*guard.ThrottleConfig).K = 0.5 }, "k"},
		{"throttle window of zero", "throttle", func(c guard.Config) { c.(*guard.ThrottleConfig).Window = 0 }, "window"},
		{"breaches above samples", "concurrency_breaker", func(c guard.Config) { c.(*guard.ConcurrencyBreakerConfig).P99.Breaches = 9 }, "p99.breaches"},
		{"p99 multiple of 1", "concurrency_breaker", func(c guard.Config) { c.(*guard.ConcurrencyBreakerConfig).P99.Multiple = 1 }, "p99.multiple"},
		{"no trigger at all", "concurrency_breaker", func(c guard.Config) {
			c.(*guard.ConcurrencyBreakerConfig).P99.Multiple = 0
			c.(*guard.ConcurrencyBreakerConfig).MaxInFlight = 0
		}, "max_in_flight"},
		{"recovery probes of zero", "concurrency_breaker", func(c guard.Config) { c.(*guard.ConcurrencyBreakerConfig).Probes = 0 }, "probes"},
		{"yellow limit above red", "memory", func(c guard.Config) { c.(*guard.MemoryConfig).Yellow.Limit = 99 }, "yellow.limit"},
		{"yellow bytes above red", "memory", func(c guard.Config) {
			c.(*guard.MemoryConfig).Yellow.Bytes = 2 << 30
			c.(*guard.MemoryConfig).Red.Bytes = 1 << 30
		}, "yellow.bytes"},
		{"shed above 100%", "memory", func(c guard.Config) { c.(*guard.MemoryConfig).Red.Action.Shed = 150 }, "red.action.shed"},
		{"unknown memory signal", "memory", func(c guard.Config) { c.(*guard.MemoryConfig).Signal = "rss" }, "signal"},
		{"critical route without a slash", "memory", func(c guard.Config) { c.(*guard.MemoryConfig).Critical = []string{"healthz"} }, "critical[0]"},
		{"bulkhead of zero", "bulkhead", func(c guard.Config) { c.(*guard.BulkheadConfig).MaxInFlight = 0 }, "max_in_flight"},
		{"negative queue", "bulkhead", func(c guard.Config) { c.(*guard.BulkheadConfig).Queue = -1 }, "queue"},
		{"unknown limit algorithm", "adaptive_limit", func(c guard.Config) { c.(*guard.AdaptiveLimitConfig).Algorithm = "aimd" }, "algorithm"},
		{"initial limit above max", "adaptive_limit", func(c guard.Config) { c.(*guard.AdaptiveLimitConfig).InitialLimit = 5000 }, "initial_limit"},
		{"vegas beta below alpha", "adaptive_limit", func(c guard.Config) { c.(*guard.AdaptiveLimitConfig).Beta = 2 }, "beta"},
		{"cpu threshold above 100%", "shed", func(c guard.Config) { c.(*guard.ShedConfig).CPUThreshold = 180 }, "cpu_threshold"},
		{"one bucket", "shed", func(c guard.Config) { c.(*guard.ShedConfig).Buckets = 1 }, "buckets"},
		{"rate of zero", "rate_limit", func(c guard.Config) {}, "rate"},
		{"header without per: header", "rate_limit", func(c guard.Config) {
			c.(*guard.RateLimitConfig).Rate = 10
			c.(*guard.RateLimitConfig).Header = "X-Tenant"
		}, "header"},
		{"per: header without a header", "rate_limit", func(c guard.Config) {
			c.(*guard.RateLimitConfig).Rate = 10
			c.(*guard.RateLimitConfig).Per = "header"
		}, "header"},
		{"sliding window under one call", "rate_limit", func(c guard.Config) {
			c.(*guard.RateLimitConfig).Rate = 5
			c.(*guard.RateLimitConfig).Algorithm = "sliding_window"
			c.(*guard.RateLimitConfig).Window = 100 * time.Millisecond
		}, "window"},
		{"redis without a port", "rate_limit", func(c guard.Config) {
			c.(*guard.RateLimitConfig).Rate = 10
			c.(*guard.RateLimitConfig).Redis.Addr = "localhost"
		}, "redis.addr"},
		{"a redis key without redis", "rate_limit", func(c guard.Config) {
			c.(*guard.RateLimitConfig).Rate = 10
			c.(*guard.RateLimitConfig).Redis.Key = "orders"
		}, "redis.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := guard.NewConfig(tt.kind)
			tt.edit(c)
			ps := problems(c)
			if !slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(p, tt.field+": ") }) {
				t.Errorf("Check problems %q do not name %s", ps, tt.field)
			}
			p, err := c.Build("p", guard.Options{Clock: newFakeClock(), Signals: &fakeSignals{limit: 1 << 30}})
			var ce *guard.ConfigError
			if p != nil || !errors.As(err, &ce) {
				t.Fatalf("Build = %v, %v; want a *ConfigError", p, err)
			}
			if !strings.Contains(err.Error(), tt.field+": ") {
				t.Errorf("Build error %q does not name %s", err, tt.field)
			}
		})
	}
}

func TestMemory_BuildNeedsALimitForShares(t *testing.T) {
	c := guard.DefaultMemoryConfig()
	_, err := guard.NewMemory("mem", c, guard.Options{Signals: &fakeSignals{limit: math.MaxInt64}})
	if err == nil || !strings.Contains(err.Error(), "yellow.limit: ") || !strings.Contains(err.Error(), "GOMEMLIMIT") {
		t.Errorf("share of an unset GOMEMLIMIT: %v, want an error naming yellow.limit", err)
	}
	// Levels in bytes need no GOMEMLIMIT, even with the default shares
	// beside them: a share counts only when the process has a limit.
	bytesOnly := guard.DefaultMemoryConfig()
	bytesOnly.Yellow.Bytes, bytesOnly.Red.Bytes = quantity.Bytes(1<<30), quantity.Bytes(2<<30)
	if _, err := guard.NewMemory("mem", bytesOnly, guard.Options{Signals: &fakeSignals{limit: math.MaxInt64}}); err != nil {
		t.Errorf("levels in bytes without GOMEMLIMIT: %v, want none", err)
	}
	c.Yellow = guard.MemoryLevel{Bytes: quantity.Bytes(1000 << 20)}
	_, err = guard.NewMemory("mem", c, guard.Options{Signals: &fakeSignals{limit: 1 << 30}})
	if err == nil || !strings.Contains(err.Error(), "yellow: ") {
		t.Errorf("yellow 1000MiB above red 95%% of 1GiB: %v, want an error naming yellow", err)
	}
}

func TestWindow_Text(t *testing.T) {
	tests := []struct {
		in   string
		want guard.Window
		err  bool
	}{
		{"100", guard.Window{Calls: 100}, false},
		{"50 calls", guard.Window{Calls: 50}, false},
		{"10s", guard.Window{Duration: 10 * time.Second}, false},
		{"1m", guard.Window{Duration: time.Minute}, false},
		{"ten", guard.Window{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var w guard.Window
			err := w.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.err || w != tt.want {
				t.Fatalf("UnmarshalText(%q) = %+v, %v", tt.in, w, err)
			}
			if err != nil {
				return
			}
			b, _ := w.MarshalText()
			var back guard.Window
			if err := back.UnmarshalText(b); err != nil || back != w {
				t.Errorf("round trip through %q = %+v, %v", b, back, err)
			}
		})
	}
}

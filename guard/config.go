package guard

import (
	"fmt"
	"slices"
	"strings"
)

// Config is the configuration of one policy, as written in a scenario under
// the policy's kind name. Configs are plain data; Build turns one into a
// live policy.
type Config interface {
	// Kind is the name the scenario uses for this policy, e.g. "breaker".
	Kind() string
	// Check reports every problem with the configuration, naming the
	// offending field by its YAML key path ("slow_call.rate").
	Check(problem func(field, msg string))
	// Build returns the policy the configuration describes, or a
	// *ConfigError listing every problem Check finds.
	Build(name string, o Options) (Policy, error)
}

// kinds is the registry from a scenario's policy name to a constructor of
// its Config, pre-filled with the kind's defaults.
var kinds = map[string]func() Config{
	"breaker":             func() Config { c := DefaultBreakerConfig(); return &c },
	"throttle":            func() Config { c := DefaultThrottleConfig(); return &c },
	"concurrency_breaker": func() Config { c := DefaultConcurrencyBreakerConfig(); return &c },
	"memory":              func() Config { c := DefaultMemoryConfig(); return &c },
	"bulkhead":            func() Config { c := DefaultBulkheadConfig(); return &c },
	"adaptive_limit":      func() Config { c := DefaultAdaptiveLimitConfig(); return &c },
	"shed":                func() Config { c := DefaultShedConfig(); return &c },
	"rate_limit":          func() Config { c := DefaultRateLimitConfig(); return &c },
	"retry":               func() Config { c := DefaultRetryConfig(); return &c },
	"timeout":             func() Config { c := DefaultTimeoutConfig(); return &c },
	"hedge":               func() Config { c := DefaultHedgeConfig(); return &c },
	"fallback":            func() Config { c := DefaultFallbackConfig(); return &c },
}

// NewConfig returns a Config of the named kind with its defaults filled in,
// ready to be decoded into.
func NewConfig(kind string) (Config, bool) {
	f, ok := kinds[kind]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Kinds lists the policy kind names a scenario may use, sorted.
func Kinds() []string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Lookup is NewConfig for callers that want an error naming the field: an
// unknown kind is a *ConfigError on the field "kind".
func Lookup(kind string) (Config, error) {
	if c, ok := NewConfig(kind); ok {
		return c, nil
	}
	return nil, &ConfigError{Kind: kind, Problems: []Problem{{
		Field: "kind",
		Msg:   fmt.Sprintf("unknown policy kind %q; known kinds: %s", kind, strings.Join(Kinds(), ", ")),
	}}}
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	Field string
	Msg   string
}

// ConfigError lists every problem found in one policy's configuration.
type ConfigError struct {
	Kind, Name string
	Problems   []Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "guard %s", e.Kind)
	if e.Name != "" {
		fmt.Fprintf(&b, " %q", e.Name)
	}
	for i, p := range e.Problems {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s: %s", sep, p.Field, p.Msg)
	}
	return b.String()
}

// validate runs Check and turns what it reports into a *ConfigError.
func validate(c Config, name string) error {
	var ps []Problem
	c.Check(func(field, msg string) { ps = append(ps, Problem{field, msg}) })
	if len(ps) == 0 {
		return nil
	}
	return &ConfigError{Kind: c.Kind(), Name: name, Problems: ps}
}

// prefixed reports problems of a nested struct under its key.
func prefixed(key string, problem func(field, msg string)) func(field, msg string) {
	return func(field, msg string) { problem(key+"."+field, msg) }
}

// build returns a constructor's policy as a Policy, and a nil one on
// error, not a typed nil.
func build[P Policy](p P, err error) (Policy, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

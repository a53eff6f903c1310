package scenario

import (
	"fmt"
	"slices"
	"time"

	"github.com/resctl/resctl/internal/upstream"
	"github.com/resctl/resctl/quantity"
)

// Defaults of a proxy's balance key, for the keys a scenario leaves out.
// They are the harness's own defaults.
const (
	DefaultConsecutiveFailures = 5
	DefaultEjectionBaseTime    = 30 * time.Second
	DefaultEjectionMaxTime     = 5 * time.Minute
	DefaultMaxEjectionPercent  = 50
	DefaultIdleTimeout         = 90 * time.Second
)

// Balance configures a proxy's upstream connections and, with upstreams,
// how it sets failing upstreams aside.
type Balance struct {
	// Ejection takes failing upstreams out of the rotation for a while.
	Ejection Ejection `yaml:"ejection"`
	// Pool bounds the connections to each upstream.
	Pool Pool `yaml:"pool"`
}

// Ejection is passive outlier ejection: an upstream that fails
// ConsecutiveFailures times in a row (a transport error, a timeout, a 5xx)
// gets no requests for BaseTime × n, n its ejections in a row, at most
// MaxTime; at most MaxPercent of the upstreams are out at once.
type Ejection struct {
	// ConsecutiveFailures ejects after this many failures in a row; 0
	// never ejects.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// BaseTime is how long a first ejection lasts; each one in a row lasts
	// once more as long.
	BaseTime time.Duration `yaml:"base_time"`
	// MaxTime is the longest an ejection lasts.
	MaxTime time.Duration `yaml:"max_time"`
	// MaxPercent is the most of the upstreams out at once.
	MaxPercent quantity.Percent `yaml:"max_percent"`
}

// Pool bounds the proxy's connections to each upstream.
type Pool struct {
	// MaxConns caps the connections to one upstream; 0 sets no cap.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes connections idle this long; 0 means the default.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxLifetime retires connections older than this after at most one
	// more request; 0 sets no lifetime.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// UpstreamStateKind is the kind SLAs name an upstream's state by:
// state("upstream", "http://127.0.0.1:9001") == ejected.
const UpstreamStateKind = "upstream"

// UpstreamStates are the names SLAs and events give the proxy's upstreams:
// each address as written, after "NAME:" for a named proxy, like its
// routes' policies. A proxy with upstream rather than upstreams has none.
func (p NamedProxy) UpstreamStates() []string {
	prefix := ""
	if p.Name != MainProxy {
		prefix = p.Name + ":"
	}
	addrs := p.UpstreamAddrs()
	out := make([]string, len(addrs))
	for i, u := range addrs {
		out[i] = prefix + u
	}
	return out
}

// UpstreamAddrs are the proxy's balanced upstreams: its upstreams, then
// each route's, in the order UpstreamStates names them.
func (p NamedProxy) UpstreamAddrs() []string {
	out := slices.Clone(p.Upstreams)
	for _, rt := range p.Routes {
		out = append(out, rt.Upstreams...)
	}
	return out
}

// validateRouteUpstreams checks the upstreams of a proxy's routes: URLs,
// each in one place only — an upstream's metrics and ejection state are
// one upstream's.
func (v *validator) validateRouteUpstreams(path string, p Proxy) {
	seen := map[string]string{}
	for _, up := range p.Upstreams {
		seen[up] = path + ".upstreams"
	}
	if p.Upstream != "" {
		seen[p.Upstream] = path + ".upstream"
	}
	for i, rt := range p.Routes {
		for j, up := range rt.Upstreams {
			at := fmt.Sprintf("%s.routes[%d].upstreams[%d]", path, i, j)
			if err := upstream.Check(false, up); err != nil {
				v.report(at, "%v", err)
			} else if where, dup := seen[up]; dup {
				v.report(at, "%q is already in %s: an upstream belongs to one place", up, where)
			}
			seen[up] = fmt.Sprintf("%s.routes[%d]", path, i)
		}
		if _, set := v.At[fmt.Sprintf("%s.routes[%d].upstreams", path, i)]; set && len(rt.Upstreams) == 0 {
			v.report(fmt.Sprintf("%s.routes[%d].upstreams", path, i), "must list at least one upstream")
		}
	}
}

// validateUpstreams checks a proxy's upstreams and balance key, and fills
// in the balance defaults.
func (v *validator) validateUpstreams(path string, p *Proxy) {
	if _, set := v.At[path+".upstreams"]; set {
		switch {
		case p.Upstream != "":
			v.report(path+".upstreams", "set upstream or upstreams, not both")
		case len(p.Upstreams) == 0:
			v.report(path+".upstreams", "must list at least one upstream, e.g. [http://127.0.0.1:9001, http://127.0.0.1:9002]")
		case p.Protocol == "tcp":
			v.report(path+".upstreams", "upstreams needs an http, h2c or grpc proxy; a tcp proxy forwards to one upstream")
		}
		seen := map[string]bool{}
		for i, up := range p.Upstreams {
			at := fmt.Sprintf("%s.upstreams[%d]", path, i)
			if err := upstream.Check(false, up); err != nil {
				v.report(at, "%v", err)
			} else if seen[up] {
				v.report(at, "%q is listed twice", up)
			}
			seen[up] = true
		}
	}
	if _, set := v.At[path+".balance"]; set && p.Protocol == "tcp" {
		v.report(path+".balance", "balance needs an http, h2c or grpc proxy")
	}
	v.balanceDefaults(path+".balance", &p.Balance)
	b := p.Balance
	if b.Ejection.ConsecutiveFailures < 0 {
		v.report(path+".balance.ejection.consecutive_failures", "must not be negative (0 never ejects)")
	}
	if b.Ejection.ConsecutiveFailures > 0 {
		if b.Ejection.BaseTime <= 0 {
			v.report(path+".balance.ejection.base_time", "must be above zero, e.g. 30s")
		} else if b.Ejection.MaxTime < b.Ejection.BaseTime {
			v.report(path+".balance.ejection.max_time", "%v is below base_time %v", b.Ejection.MaxTime, b.Ejection.BaseTime)
		}
	}
	for _, f := range []struct {
		key  string
		val  int64
		zero string
	}{
		{"pool.max_conns", int64(b.Pool.MaxConns), "0 sets no cap"},
		{"pool.idle_timeout", int64(b.Pool.IdleTimeout), fmt.Sprintf("0 means the default, %v", DefaultIdleTimeout)},
		{"pool.max_lifetime", int64(b.Pool.MaxLifetime), "0 sets no lifetime"},
	} {
		if f.val < 0 {
			v.report(path+".balance."+f.key, "must not be negative (%s)", f.zero)
		}
	}
}

// balanceDefaults gives every key left out, or left empty, its default.
func (v *validator) balanceDefaults(path string, b *Balance) {
	for _, d := range []struct {
		key string
		set func()
	}{
		{"ejection.consecutive_failures", func() { b.Ejection.ConsecutiveFailures = DefaultConsecutiveFailures }},
		{"ejection.base_time", func() { b.Ejection.BaseTime = DefaultEjectionBaseTime }},
		{"ejection.max_time", func() { b.Ejection.MaxTime = DefaultEjectionMaxTime }},
		{"ejection.max_percent", func() { b.Ejection.MaxPercent = DefaultMaxEjectionPercent }},
		{"pool.idle_timeout", func() { b.Pool.IdleTimeout = DefaultIdleTimeout }},
	} {
		if n, ok := v.At[path+"."+d.key]; !ok || n.Tag == "!!null" {
			d.set()
		}
	}
}

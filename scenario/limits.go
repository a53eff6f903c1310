package scenario

import "time"

// ConnLimits bound the connections a proxy's clients hold, so a flood of idle
// connections cannot use up resctl's file descriptors and silence the
// proxies and the admin API. Zero (left out) takes resctl's default; see
// docs/security.md. A tcp proxy takes max_conns only.
type ConnLimits struct {
	// MaxConns caps the open client connections; one more is reset at
	// once and counted. The default shares the file-descriptor limit out
	// among the run's proxies.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes a client connection with no request for this
	// long (default 90s).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ReadHeaderTimeout closes a connection whose request headers take
	// longer (default 10s).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// MaxHeaderBytes bounds a request's headers (default 64 KiB).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
}

// validateLimits reports negative limits, and limits a tcp proxy has no
// use for, at their keys.
func (v *validator) validateLimits(path string, p Proxy) {
	lp := path + ".limits"
	for _, f := range []struct {
		key string
		val int64
	}{
		{"max_conns", int64(p.Limits.MaxConns)},
		{"idle_timeout", int64(p.Limits.IdleTimeout)},
		{"read_header_timeout", int64(p.Limits.ReadHeaderTimeout)},
		{"max_header_bytes", int64(p.Limits.MaxHeaderBytes)},
	} {
		if f.val < 0 {
			v.report(lp+"."+f.key, "must not be negative (0 or left out takes the default)")
		}
		if _, set := v.At[lp+"."+f.key]; set && p.Protocol == "tcp" && f.key != "max_conns" {
			v.report(lp+"."+f.key, "needs an http, h2c or grpc proxy; a tcp proxy takes max_conns only")
		}
	}
}

package inject

import (
	"context"
	"time"
)

// BlackholeSpec is a partition: connections accepted or already open go
// silent, every byte in the fault's direction (both by default) is
// swallowed and the connection stays open, as when a network path drops
// everything without a reset. With a Timeout the connection is closed that
// long after the fault first meets it (Toxiproxy's "timeout" toxic).
type BlackholeSpec struct {
	ConnMatch `yaml:",inline"`
	// Timeout closes the connection this long after the fault meets it;
	// zero keeps it open and silent until the fault is switched off.
	Timeout time.Duration `yaml:"timeout"`
}

var _ ConnSpec = (*BlackholeSpec)(nil)

// Kind implements Spec.
func (*BlackholeSpec) Kind() string { return "blackhole" }

// Check implements Spec.
func (s *BlackholeSpec) Check(problem func(field, msg string)) {
	s.ConnMatch.check(problem)
	if s.Timeout < 0 {
		problem("timeout", "must not be negative")
	}
}

// BuildConn implements ConnSpec.
func (s *BlackholeSpec) BuildConn() ConnFault { return &blackhole{m: s.ConnMatch, timeout: s.Timeout} }

type blackhole struct {
	m       ConnMatch
	timeout time.Duration
}

func (b *blackhole) Stream(dir Direction, c Conn) Stream {
	if !b.m.Acts(dir) {
		return nil
	}
	if b.timeout > 0 {
		c.AfterFunc(b.timeout, c.Close)
	}
	return b
}

// Pass swallows the bytes.
func (*blackhole) Pass(context.Context, []byte, func([]byte) error) error { return nil }

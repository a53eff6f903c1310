package inject

import (
	"context"
	"time"
)

// ResetPeerSpec resets the connections it is drawn for (a TCP RST, which
// clients see as "connection reset by peer"), at once or Timeout after the
// fault first meets each connection.
type ResetPeerSpec struct {
	ConnMatch `yaml:",inline"`
	// Timeout is how long after the fault meets a connection it is reset; 0
	// resets it at once.
	Timeout time.Duration `yaml:"timeout"`
}

var _ ConnSpec = (*ResetPeerSpec)(nil)

// Kind implements Spec.
func (*ResetPeerSpec) Kind() string { return "reset_peer" }

// Check implements Spec.
func (s *ResetPeerSpec) Check(problem func(field, msg string)) {
	s.ConnMatch.check(problem)
	if s.Timeout < 0 {
		problem("timeout", "must not be negative")
	}
}

// BuildConn implements ConnSpec.
func (s *ResetPeerSpec) BuildConn() ConnFault { return &resetPeer{m: s.ConnMatch, timeout: s.Timeout} }

type resetPeer struct {
	m       ConnMatch
	timeout time.Duration
}

func (r *resetPeer) Stream(dir Direction, c Conn) Stream {
	if !r.m.Acts(dir) {
		return nil
	}
	if r.timeout == 0 {
		c.Reset()
	} else {
		c.AfterFunc(r.timeout, c.Reset)
	}
	return passStream{}
}

// passStream hands bytes on untouched.
type passStream struct{}

func (passStream) Pass(_ context.Context, p []byte, next func([]byte) error) error { return next(p) }

package inject

import "time"

// SlowCloseSpec delays the close of the connections it is drawn for: when
// one side closes, the proxy waits Delay before passing the close on, so
// the other side sees a half-dead connection linger.
type SlowCloseSpec struct {
	ConnMatch `yaml:",inline"`
	// Delay is how long a close waits before it is passed on.
	Delay time.Duration `yaml:"delay"`
}

var _ ConnSpec = (*SlowCloseSpec)(nil)

// Kind implements Spec.
func (*SlowCloseSpec) Kind() string { return "slow_close" }

// Check implements Spec.
func (s *SlowCloseSpec) Check(problem func(field, msg string)) {
	s.ConnMatch.check(problem)
	if s.Delay <= 0 {
		problem("delay", "must be above zero, e.g. 1s")
	}
}

// BuildConn implements ConnSpec.
func (s *SlowCloseSpec) BuildConn() ConnFault { return &slowClose{m: s.ConnMatch, delay: s.Delay} }

type slowClose struct {
	m     ConnMatch
	delay time.Duration
}

var _ CloseDelayer = (*slowClose)(nil)

func (*slowClose) Stream(Direction, Conn) Stream { return nil }

// CloseDelay is the delay for closes in the fault's direction.
func (s *slowClose) CloseDelay(dir Direction) time.Duration {
	if !s.m.Acts(dir) {
		return 0
	}
	return s.delay
}

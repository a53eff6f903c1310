package inject

import (
	"context"

	"github.com/resctl/resctl/quantity"
)

// LimitDataSpec closes each connection it is drawn for once Bytes bytes
// have moved in its direction: a peer that hangs up mid-transfer.
type LimitDataSpec struct {
	ConnMatch `yaml:",inline"`
	// Bytes is how much moves before the connection is closed.
	Bytes quantity.Bytes `yaml:"bytes"`
}

var _ ConnSpec = (*LimitDataSpec)(nil)

// Kind implements Spec.
func (*LimitDataSpec) Kind() string { return "limit_data" }

// Check implements Spec.
func (s *LimitDataSpec) Check(problem func(field, msg string)) {
	s.ConnMatch.check(problem)
	if s.Bytes < 0 {
		problem("bytes", "must not be negative")
	}
}

// BuildConn implements ConnSpec.
func (s *LimitDataSpec) BuildConn() ConnFault {
	return &limitData{m: s.ConnMatch, limit: int64(s.Bytes)}
}

type limitData struct {
	m     ConnMatch
	limit int64
}

func (l *limitData) Stream(dir Direction, c Conn) Stream {
	if !l.m.Acts(dir) {
		return nil
	}
	return &limitStream{left: l.limit, c: c}
}

type limitStream struct {
	left int64
	c    Conn
}

func (s *limitStream) Pass(_ context.Context, p []byte, next func([]byte) error) error {
	if int64(len(p)) < s.left {
		s.left -= int64(len(p))
		return next(p)
	}
	err := next(p[:s.left])
	s.left = 0
	s.c.Close()
	if err != nil {
		return err
	}
	return errCut
}

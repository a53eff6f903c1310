package inject

import (
	"context"

	"github.com/resctl/resctl/quantity"
)

// TCPBandwidthSpec limits the bytes moving in its direction to Rate bytes
// per second on each connection it is drawn for.
type TCPBandwidthSpec struct {
	ConnMatch `yaml:",inline"`
	// Rate is in bytes per second, e.g. 64KiB.
	Rate quantity.Bytes `yaml:"rate"`
}

var _ ConnSpec = (*TCPBandwidthSpec)(nil)

// Kind implements Spec.
func (*TCPBandwidthSpec) Kind() string { return "bandwidth" }

// Check implements Spec.
func (s *TCPBandwidthSpec) Check(problem func(field, msg string)) {
	s.ConnMatch.check(problem)
	if s.Rate <= 0 {
		problem("rate", "must be above zero bytes per second, e.g. 64KiB")
	}
}

// BuildConn implements ConnSpec.
func (s *TCPBandwidthSpec) BuildConn() ConnFault {
	return &tcpBandwidth{m: s.ConnMatch, rate: int64(s.Rate)}
}

type tcpBandwidth struct {
	m    ConnMatch
	rate int64
}

func (b *tcpBandwidth) Stream(dir Direction, _ Conn) Stream {
	if !b.m.Acts(dir) {
		return nil
	}
	return &pacedStream{pacer: newPacer(b.rate)}
}

// pacedStream paces one direction of one connection: each has its own
// budget.
type pacedStream struct{ pacer *pacer }

func (s *pacedStream) Pass(ctx context.Context, p []byte, next func([]byte) error) error {
	for len(p) > 0 {
		n := min(len(p), s.pacer.piece())
		if !s.pacer.wait(ctx, n) {
			return ctx.Err()
		}
		if err := next(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

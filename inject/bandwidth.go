package inject

import (
	"context"
	"net/http"
	"time"

	"github.com/resctl/resctl/quantity"
)

// BandwidthSpec slows the body of matching responses to Rate bytes per
// second, as a congested or distant link would: the headers arrive on time,
// the body trickles.
type BandwidthSpec struct {
	Match `yaml:",inline"`
	// Rate is in bytes per second, e.g. 64KiB.
	Rate quantity.Bytes `yaml:"rate"`
}

var _ HTTPSpec = (*BandwidthSpec)(nil)

// Kind implements Spec.
func (*BandwidthSpec) Kind() string { return "bandwidth" }

// Check implements Spec.
func (s *BandwidthSpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	if s.Rate <= 0 {
		problem("rate", "must be above zero bytes per second, e.g. 64KiB")
	}
}

// Build implements HTTPSpec.
func (s *BandwidthSpec) Build() HTTPFault { return &bandwidth{rate: int64(s.Rate)} }

type bandwidth struct{ rate int64 }

var _ ResponseFault = (*bandwidth)(nil)

// Inject lets the request through; the response is slowed.
func (*bandwidth) Inject(http.ResponseWriter, *http.Request) bool { return false }

// WrapResponse paces the body.
func (f *bandwidth) WrapResponse(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	return &pacedWriter{respWriter: respWriter{ResponseWriter: w}, ctx: r.Context(), pacer: newPacer(f.rate)}, func() {}
}

// pacer spreads bytes over time at a rate, in pieces of a tenth of a
// second's worth, so a slow body moves steadily rather than in bursts.
type pacer struct {
	rate  int64
	start time.Time
	sent  int64
}

func newPacer(rate int64) *pacer { return &pacer{rate: rate} }

// piece is how many bytes to send before the next pause.
func (p *pacer) piece() int { return int(max(p.rate/10, 1)) }

// wait waits until the rate has room for n more bytes, that is until the
// time they would have finished arriving over a link of that rate, and
// counts them; false when ctx ended the wait. Waiting before sending, not
// after, makes a body of N bytes take N/rate, as over a real link.
func (p *pacer) wait(ctx context.Context, n int) bool {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.sent += int64(n)
	due := p.start.Add(time.Duration(float64(p.sent) / float64(p.rate) * float64(time.Second)))
	return sleep(ctx, time.Until(due))
}

type pacedWriter struct {
	respWriter
	ctx   context.Context
	pacer *pacer
}

func (w *pacedWriter) Write(p []byte) (int, error) {
	w.header()
	written := 0
	for len(p) > 0 {
		n := min(len(p), w.pacer.piece())
		if !w.pacer.wait(w.ctx, n) {
			return written, w.ctx.Err()
		}
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		w.flush()
		p = p[n:]
	}
	return written, nil
}

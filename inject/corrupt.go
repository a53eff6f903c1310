package inject

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"

	"github.com/resctl/resctl/quantity"
)

// DefaultCorruptRate is the share of body bytes a corrupt fault flips when
// the scenario does not say.
const DefaultCorruptRate = quantity.Percent(1)

// CorruptSpec flips bytes in the body of matching responses, each byte with
// probability Rate; the length stays the same, so only a client that
// checks what it parses notices.
type CorruptSpec struct {
	Match `yaml:",inline"`
	// Rate is the chance of each body byte being flipped; default 1%.
	Rate quantity.Percent `yaml:"rate"`
}

var _ HTTPSpec = (*CorruptSpec)(nil)

// Kind implements Spec.
func (*CorruptSpec) Kind() string { return "corrupt" }

// Check implements Spec.
func (s *CorruptSpec) Check(problem func(field, msg string)) {
	s.Match.check(problem)
	if r := float64(s.Rate); !(r > 0 && r <= 100) {
		problem("rate", fmt.Sprintf("%v is outside the share of bytes above 0%% up to 100%%", r))
	}
}

// Build implements HTTPSpec.
func (s *CorruptSpec) Build() HTTPFault {
	return &corrupt{rate: s.Rate.Fraction(), rng: rand.New(rand.NewPCG(0, 0))}
}

type corrupt struct {
	rate float64

	mu  sync.Mutex
	rng *rand.Rand // reseeded by the Board
}

var (
	_ ResponseFault = (*corrupt)(nil)
	_ seeded        = (*corrupt)(nil)
)

func (c *corrupt) seed(r *rand.Rand) { c.rng = r }

// gap draws how many bytes pass untouched before the next flipped one: a
// geometric draw, so a large body costs one draw per flip, not per byte.
func (c *corrupt) gap() (skip int64, flip byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	flip = byte(1 + c.rng.IntN(255))
	if c.rate >= 1 {
		return 0, flip
	}
	u := 1 - c.rng.Float64()
	return int64(math.Floor(math.Log(u) / math.Log1p(-c.rate))), flip
}

// Inject lets the request through; the response is corrupted.
func (*corrupt) Inject(http.ResponseWriter, *http.Request) bool { return false }

// WrapResponse flips bytes of the body as it passes.
func (c *corrupt) WrapResponse(w http.ResponseWriter, _ *http.Request) (http.ResponseWriter, func()) {
	cw := &corruptWriter{respWriter: respWriter{ResponseWriter: w}, c: c}
	cw.skip, cw.flip = c.gap()
	return cw, func() {}
}

type corruptWriter struct {
	respWriter
	c    *corrupt
	skip int64
	flip byte
	buf  []byte
}

func (w *corruptWriter) Write(p []byte) (int, error) {
	w.header()
	if w.skip >= int64(len(p)) {
		w.skip -= int64(len(p))
		return w.ResponseWriter.Write(p)
	}
	w.buf = append(w.buf[:0], p...) // the caller's buffer is not ours to change
	for i := w.skip; i < int64(len(w.buf)); {
		w.buf[i] ^= w.flip
		var skip int64
		skip, w.flip = w.c.gap()
		i += 1 + skip
		w.skip = i - int64(len(w.buf))
	}
	return w.ResponseWriter.Write(w.buf)
}

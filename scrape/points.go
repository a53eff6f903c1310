package scrape

import (
	"encoding/binary"
	"math"
	"math/bits"
	"time"
)

// points are a series' samples as kept between scrapes: a byte string,
// not 16 bytes a sample, since a run scrapes every second for as long as
// it lasts and most series barely change. A sample is its scrape's index
// among its endpoint's successful scrapes, as the gap from the sample
// before, and its value, as the bits that differ from the sample before:
//
//	uvarint(gap<<1 | same)            same: the value did not change
//	uvarint(reverse(bits ^ previous)) only when it did
//
// The differing bits are reversed because a float's low mantissa bits are
// the ones that stay zero (counts, bytes and goroutines are integers), so
// reversed they make a small number. An unchanged sample takes one byte;
// a counter that moved, four to six.
type points struct {
	enc  []byte
	n    int
	last int    // scrape index of the last sample
	prev uint64 // bits of the last sample's value
}

func (p *points) add(scrape int, v float64) {
	b := math.Float64bits(v)
	gap := uint64(scrape - p.last)
	if p.n == 0 {
		gap = uint64(scrape)
	}
	if diff := b ^ p.prev; diff == 0 {
		p.enc = binary.AppendUvarint(p.enc, gap<<1|1)
	} else {
		p.enc = binary.AppendUvarint(p.enc, gap<<1)
		p.enc = binary.AppendUvarint(p.enc, bits.Reverse64(diff))
	}
	p.n++
	p.last, p.prev = scrape, b
}

// decode returns the samples, with the instants of the endpoint's
// successful scrapes, times, to give each its offset.
func (p *points) decode(times []time.Duration) []Point {
	out := make([]Point, 0, p.n)
	enc := p.enc
	idx, b := 0, uint64(0)
	for len(enc) > 0 {
		h, n := binary.Uvarint(enc)
		enc = enc[n:]
		idx += int(h >> 1)
		if h&1 == 0 {
			d, n := binary.Uvarint(enc)
			enc = enc[n:]
			b ^= bits.Reverse64(d)
		}
		out = append(out, Point{T: times[idx], V: math.Float64frombits(b)})
	}
	return out
}

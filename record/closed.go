package record

import (
	"encoding/binary"
	"maps"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// A closed second — one no more results can arrive for — is kept as a
// record of bytes in an arena rather than as a bucket with maps and a
// histogram: its counts, its latency summary (computed once, when it
// closed) and the non-zero counts of its histogram, all as varints. A
// histogram bucket's index is written as the gap from the one before,
// with its count's being 1 (most are, at a thousand results a second) in
// the gap's lowest bit, so a bucket takes one or two bytes instead of 8,
// and a second at 1,000 results a couple of hundred bytes to a kilobyte,
// where the bucket and its maps took several kilobytes.
//
// Layout: requests, successes, errors, fallbacks, dropped, timed, min and
// max µs; the summary's Min, Mean, P50, P90, P95, P99, P999 and Max in
// ns; the successes' count, min and max µs; the failures' count and, if
// any, their min and max µs and either 0, when every timed result failed
// (the failures' histogram and latency are then the second's), or their
// histogram's count of non-zero buckets plus one, the summary's success
// and error latencies (eight durations each) and those buckets; codes (count, then code and n
// each), gRPC codes and reasons (count, then text and n each), in sorted
// order; then the histogram's buckets to the end of the record.

// arenaChunk is the size of the arena's chunks: big enough that an hour of
// seconds takes tens of allocations, small enough that the unused end of
// the last one does not matter.
const arenaChunk = 64 << 10

// arena holds closed seconds' records back to back in chunks that hold no
// pointers, so the collector never scans them. A record never spans two
// chunks; one larger than a chunk gets a chunk of its own.
type arena struct {
	chunks [][]byte
}

// span is where a record lies in the arena; the zero span is no record.
type span struct {
	chunk, off, n uint32
}

func (a *arena) put(rec []byte) span {
	last := len(a.chunks) - 1
	if last < 0 || cap(a.chunks[last])-len(a.chunks[last]) < len(rec) {
		a.chunks = append(a.chunks, make([]byte, 0, max(arenaChunk, len(rec))))
		last++
	}
	c := a.chunks[last]
	s := span{chunk: uint32(last), off: uint32(len(c)), n: uint32(len(rec))}
	a.chunks[last] = append(c, rec...)
	return s
}

func (a *arena) get(s span) []byte {
	return a.chunks[s.chunk][s.off : s.off+s.n : s.off+s.n]
}

// appendClosed appends the record of the closed second b, whose summary
// is sum, to dst.
func appendClosed(dst []byte, b *bucket, sum Summary) []byte {
	for _, v := range []uint64{b.Requests, b.Successes, b.Errors, b.Fallbacks, b.Dropped, b.timed, uint64(b.minUs), uint64(b.maxUs)} {
		dst = binary.AppendUvarint(dst, v)
	}
	dst = appendLatency(dst, sum.Latency)
	for _, v := range []uint64{b.okN, uint64(b.okMinUs), uint64(b.okMaxUs)} {
		dst = binary.AppendUvarint(dst, v)
	}
	if b.errs == nil || b.errs.n == 0 {
		dst = binary.AppendUvarint(dst, 0)
	} else {
		for _, v := range []uint64{b.errs.n, uint64(b.errs.minUs), uint64(b.errs.maxUs)} {
			dst = binary.AppendUvarint(dst, v)
		}
		if b.okN == 0 {
			// Every timed result failed: the failures' histogram and
			// latency are the second's own (an abort's seconds).
			dst = binary.AppendUvarint(dst, 0)
		} else {
			counts := b.errs.h.Export().Counts
			n := 0
			for _, c := range counts {
				if c != 0 {
					n++
				}
			}
			dst = binary.AppendUvarint(dst, uint64(n)+1)
			dst = appendLatency(dst, sum.SuccessLatency)
			dst = appendLatency(dst, sum.ErrorLatency)
			dst = appendBuckets(dst, counts)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(b.Codes)))
	for _, code := range slices.Sorted(maps.Keys(b.Codes)) {
		dst = binary.AppendVarint(dst, int64(code))
		dst = binary.AppendUvarint(dst, b.Codes[code])
	}
	dst = appendTexts(dst, b.GRPCCodes)
	dst = appendTexts(dst, b.Reasons)
	return appendBuckets(dst, b.live.Export().Counts)
}

func appendLatency(dst []byte, l Latency) []byte {
	for _, d := range []time.Duration{l.Min, l.Mean, l.P50, l.P90, l.P95, l.P99, l.P999, l.Max} {
		dst = binary.AppendUvarint(dst, uint64(d))
	}
	return dst
}

// appendBuckets appends a histogram's non-zero buckets: each index as the
// gap from the one before, its lowest bit set when the count is 1, the
// count following otherwise.
func appendBuckets(dst []byte, counts []int64) []byte {
	prev := -1
	for i, c := range counts {
		if c == 0 {
			continue
		}
		gap := uint64(i-prev-1) << 1
		if c == 1 {
			dst = binary.AppendUvarint(dst, gap|1)
		} else {
			dst = binary.AppendUvarint(dst, gap)
			dst = binary.AppendUvarint(dst, uint64(c))
		}
		prev = i
	}
	return dst
}

func appendTexts(dst []byte, m map[string]uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, m[k])
	}
	return dst
}

// closedSecond is a closed second's record, read back.
type closedSecond struct {
	Counts
	timed        uint64
	minUs, maxUs int64
	latency      Latency
	// The split of its latency: the successes' extremes, the failures'
	// count, extremes and histogram (errHist, errBuckets of them), the
	// summary's two latencies.
	okN                   uint64
	okMinUs, okMaxUs      int64
	errN                  uint64
	errMinUs, errMaxUs    int64
	okLatency, errLatency Latency
	errHist               []byte
	errBuckets            int // -1: the failures' histogram is hist
	// hist is the rest of the record: the histogram's buckets.
	hist []byte
}

// decodeClosed reads a record appendClosed wrote. Records are resctl's
// own, written in the same process, so they are trusted.
func decodeClosed(rec []byte) closedSecond {
	r := reader{b: rec}
	var c closedSecond
	for _, p := range []*uint64{&c.Requests, &c.Successes, &c.Errors, &c.Fallbacks, &c.Dropped, &c.timed} {
		*p = r.uvarint()
	}
	c.minUs, c.maxUs = int64(r.uvarint()), int64(r.uvarint())
	c.latency = r.latency()
	c.okN, c.okMinUs, c.okMaxUs = r.uvarint(), int64(r.uvarint()), int64(r.uvarint())
	if c.errN = r.uvarint(); c.errN > 0 {
		c.errMinUs, c.errMaxUs = int64(r.uvarint()), int64(r.uvarint())
		if k := int(r.uvarint()); k == 0 {
			c.errLatency, c.errBuckets = c.latency, -1 // the second's own
		} else {
			c.okLatency, c.errLatency = r.latency(), r.latency()
			c.errBuckets = k - 1
			rest := r.b
			r.skipBuckets(c.errBuckets)
			c.errHist = rest[:len(rest)-len(r.b)]
		}
	}
	if n := r.uvarint(); n > 0 {
		c.Codes = make(map[int]uint64, n)
		for range n {
			code := int(r.varint())
			c.Codes[code] = r.uvarint()
		}
	}
	c.GRPCCodes = r.texts()
	c.Reasons = r.texts()
	c.hist = r.b
	return c
}

// summary is the second's summary as it was computed when it closed.
func (c closedSecond) summary() Summary {
	return Summary{Counts: c.Counts, Latency: c.latency, SuccessLatency: c.okLatency, ErrorLatency: c.errLatency}
}

// addTo adds the second's histogram counts to m.
func (c closedSecond) addTo(m *merger) {
	addBuckets(m, c.hist, -1)
}

// addBuckets adds n encoded buckets (all of b when n < 0) to m.
func addBuckets(m *merger, b []byte, n int) {
	r := reader{b: b}
	idx := -1
	for i := 0; len(r.b) > 0 && (n < 0 || i < n); i++ {
		v := r.uvarint()
		idx += int(v>>1) + 1
		k := int64(1)
		if v&1 == 0 {
			k = int64(r.uvarint())
		}
		m.snap.Counts[idx] += k
	}
}

// reopen turns the second back into an open bucket, for a result that
// arrived after it closed; newHist gives its histograms.
func (c closedSecond) reopen(newHist func() *hdrhistogram.Histogram) *bucket {
	m := newMerger()
	c.addTo(m)
	live := newHist()
	live.Merge(m.histogram())
	b := &bucket{Counts: c.Counts, timed: c.timed, minUs: c.minUs, maxUs: c.maxUs, live: live,
		okN: c.okN, okMinUs: c.okMinUs, okMaxUs: c.okMaxUs}
	if c.errN > 0 {
		em := newMerger()
		if c.errBuckets < 0 {
			c.addTo(em)
		} else {
			addBuckets(em, c.errHist, c.errBuckets)
		}
		b.errs = &extra{h: newHist(), n: c.errN, minUs: c.errMinUs, maxUs: c.errMaxUs}
		b.errs.h.Merge(em.histogram())
	}
	return b
}

type reader struct{ b []byte }

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	r.b = r.b[n:]
	return v
}

func (r *reader) latency() Latency {
	var l Latency
	for _, p := range []*time.Duration{&l.Min, &l.Mean, &l.P50, &l.P90, &l.P95, &l.P99, &l.P999, &l.Max} {
		*p = time.Duration(r.uvarint())
	}
	return l
}

// skipBuckets reads past n encoded buckets.
func (r *reader) skipBuckets(n int) {
	for range n {
		if r.uvarint()&1 == 0 {
			r.uvarint()
		}
	}
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	r.b = r.b[n:]
	return v
}

func (r *reader) texts() map[string]uint64 {
	n := r.uvarint()
	if n == 0 {
		return nil
	}
	m := make(map[string]uint64, n)
	for range n {
		l := r.uvarint()
		k := string(r.b[:l])
		r.b = r.b[l:]
		m[k] = r.uvarint()
	}
	return m
}

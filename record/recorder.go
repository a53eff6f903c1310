package record

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is the outcome of one request, as the load driver saw it.
type Result struct {
	// Sent is when the request was sent; it decides the second and the
	// phase the result counts in.
	Sent time.Time
	// Latency is the time from Sent to the end of the response.
	Latency time.Duration
	// Code is the response status; 0 when no response arrived.
	Code int
	// Failed is true for a transport error, a timeout or an error status.
	Failed bool
	// Fallback is true for a success a fallback served instead of the
	// upstream: it counts as a success (the user was served) and as a
	// fallback.
	Fallback bool
	// Phase is the 1-based index of the phase the result belongs to, as the
	// load schedule assigned it; 0 attributes it by Sent instead.
	Phase int
}

// Counts are the request counters of a second or a phase.
type Counts struct {
	Requests  uint64         `json:"requests"`
	Successes uint64         `json:"successes"`
	Errors    uint64         `json:"errors"`
	Fallbacks uint64         `json:"fallbacks,omitempty"`
	Codes     map[int]uint64 `json:"codes,omitempty"`
}

func (c *Counts) add(r Result) {
	c.Requests++
	if r.Failed {
		c.Errors++
	} else {
		c.Successes++
		if r.Fallback {
			c.Fallbacks++
		}
	}
	if c.Codes == nil {
		c.Codes = map[int]uint64{}
	}
	c.Codes[r.Code]++
}

func (c *Counts) merge(o Counts) {
	c.Requests += o.Requests
	c.Successes += o.Successes
	c.Errors += o.Errors
	c.Fallbacks += o.Fallbacks
	for k, v := range o.Codes {
		if c.Codes == nil {
			c.Codes = map[int]uint64{}
		}
		c.Codes[k] += v
	}
}

// bucket is one second of the run, or one phase.
type bucket struct {
	Counts
	minUs, maxUs int64
	live         *hdrhistogram.Histogram // while results may still arrive
	closed       sparse
	summary      *Summary // of a closed bucket, computed once when it closed
}

func (b *bucket) add(r Result) {
	b.Counts.add(r)
	us := micros(r.Latency)
	if b.Requests == 1 || us < b.minUs {
		b.minUs = us
	}
	b.maxUs = max(b.maxUs, us)
	_ = b.live.RecordValue(us) // in range by construction
}

// PhaseSpan is where a phase lies in the run, as offsets from its start.
type PhaseSpan struct {
	Name  string        `json:"name"`
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
}

// Recorder folds results into per-second buckets and per-phase aggregates.
// It is safe for concurrent use.
type Recorder struct {
	start   time.Time
	phases  []PhaseSpan
	horizon int // seconds a bucket stays open for late results

	mu      sync.Mutex
	seconds []*bucket
	perPh   []*bucket
	outside bucket // results sent after the last phase ended
	newest  int
	spare   []*hdrhistogram.Histogram
	// compacted is the number of leading seconds known to be closed, so
	// compaction does not rescan the whole run every second.
	compacted int
}

// NewRecorder starts a recording of a run that begins at start and runs
// through phases. Results may arrive up to lateness after they were sent
// (the load's request timeout); buckets older than that are compacted.
func NewRecorder(start time.Time, phases []PhaseSpan, lateness time.Duration) *Recorder {
	r := &Recorder{
		start:   start,
		phases:  slices.Clone(phases),
		horizon: int(lateness/time.Second) + 2,
	}
	for range phases {
		r.perPh = append(r.perPh, &bucket{live: newHistogram()})
	}
	r.outside.live = newHistogram()
	return r
}

// Start is the instant the recording counts from.
func (r *Recorder) Start() time.Time { return r.start }

// Add records one result.
func (r *Recorder) Add(res Result) {
	off := res.Sent.Sub(r.start)
	sec := max(int(off/time.Second), 0)

	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.seconds) <= sec {
		r.seconds = append(r.seconds, &bucket{})
	}
	b := r.seconds[sec]
	if b.live == nil {
		b.live = r.histogram()
		if len(b.closed.index) > 0 { // a very late result reopens its second
			m := newMerger()
			m.add(b.closed)
			b.live.Merge(m.histogram())
			b.closed = sparse{}
			b.summary = nil
			r.compacted = min(r.compacted, sec)
		}
	}
	b.add(res)
	if res.Phase > 0 && res.Phase <= len(r.perPh) {
		r.perPh[res.Phase-1].add(res)
	} else {
		r.phaseBucket(off).add(res)
	}
	if sec > r.newest {
		r.newest = sec
		r.compactBefore(sec - r.horizon)
	}
}

func (r *Recorder) phaseBucket(off time.Duration) *bucket {
	for i, p := range r.phases {
		if off >= p.Start && off < p.End {
			return r.perPh[i]
		}
	}
	if len(r.phases) > 0 && off < r.phases[0].Start {
		return r.perPh[0]
	}
	return &r.outside
}

func (r *Recorder) histogram() *hdrhistogram.Histogram {
	if n := len(r.spare); n > 0 {
		h := r.spare[n-1]
		r.spare = r.spare[:n-1]
		return h
	}
	return newHistogram()
}

func (r *Recorder) compactBefore(limit int) {
	limit = min(limit, len(r.seconds))
	for i := r.compacted; i < limit; i++ {
		if b := r.seconds[i]; b.live != nil {
			sum := summarizeHist(b.Counts, b.live, b.minUs, b.maxUs)
			b.summary = &sum
			b.closed = compact(b.live)
			b.live.Reset()
			r.spare = append(r.spare, b.live)
			b.live = nil
		}
	}
	r.compacted = max(r.compacted, limit)
}

// Snapshot returns the recording as it stands. It may be called while
// results still arrive, for live progress, and once more at the end.
func (r *Recorder) Snapshot() *Recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := &Recording{Start: r.start, Phases: slices.Clone(r.phases)}
	for _, b := range r.seconds {
		rec.Seconds = append(rec.Seconds, summarize(b))
	}
	for _, b := range r.perPh {
		rec.PhaseStats = append(rec.PhaseStats, summarize(b))
	}
	total := &bucket{live: newHistogram()}
	m := newMerger()
	for _, b := range append(slices.Clone(r.perPh), &r.outside) {
		total.Counts.merge(b.Counts)
		if b.Requests > 0 {
			if total.minUs == 0 || b.minUs < total.minUs {
				total.minUs = b.minUs
			}
			total.maxUs = max(total.maxUs, b.maxUs)
			m.addHistogram(b.live)
		}
	}
	rec.Total = summarizeHist(total.Counts, m.histogram(), total.minUs, total.maxUs)
	return rec
}

func summarize(b *bucket) Summary {
	if b.live != nil {
		return summarizeHist(b.Counts, b.live, b.minUs, b.maxUs)
	}
	if b.summary != nil {
		s := *b.summary
		s.Codes = maps.Clone(s.Codes)
		return s
	}
	m := newMerger()
	m.add(b.closed)
	return summarizeHist(b.Counts, m.histogram(), b.minUs, b.maxUs)
}

// Window summarises the results sent in [from, to) at the resolution of
// seconds: a second counts if it starts inside the window. SLAs use it for
// windows that are not a whole phase (the trailing 30 s, one second of a
// recovery scan); a phase's own summary is exact and comes from Snapshot.
func (r *Recorder) Window(from, to time.Duration) Summary {
	first := max(int((from+time.Second-1)/time.Second), 0)
	last := int((to + time.Second - 1) / time.Second) // exclusive

	r.mu.Lock()
	defer r.mu.Unlock()
	var c Counts
	var minUs, maxUs int64
	m := newMerger()
	for i := first; i < min(last, len(r.seconds)); i++ {
		b := r.seconds[i]
		if b.Requests == 0 {
			continue
		}
		if c.Requests == 0 || b.minUs < minUs {
			minUs = b.minUs
		}
		maxUs = max(maxUs, b.maxUs)
		c.merge(b.Counts)
		if b.live != nil {
			m.addHistogram(b.live)
		} else {
			m.add(b.closed)
		}
	}
	return summarizeHist(c, m.histogram(), minUs, maxUs)
}

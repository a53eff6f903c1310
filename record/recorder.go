package record

import (
	"slices"
	"strings"
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
	// GRPCCode is a gRPC call's status code as grpc-go spells it ("OK",
	// "Unavailable"); Code then holds the HTTP status it maps to. Empty
	// for HTTP.
	GRPCCode string
	// Intended is when the schedule meant the request to go out; zero
	// means Sent. A generator that fell behind sent it late, and that wait
	// is part of what a user would have seen: the response time, from
	// Intended to the end of the response, is what the latency
	// percentiles measure; Latency alone is the service time.
	Intended time.Time
	// Dropped is true for a request the generator never sent because its
	// in-flight cap was reached: it counts as a failed request and as
	// dropped, so a target too slow to keep up cannot hide behind a
	// schedule that quietly slowed down.
	Dropped bool
	// Reason says why a failed request failed, as "kind: detail": kind is
	// status, transport, check or dropped, and detail a short text that
	// groups (a status code, "connection refused", the check that failed).
	// Empty for a success.
	Reason string
}

// MaxReasons bounds the distinct failure reasons a second or a phase
// keeps; the reasons beyond are counted as "KIND: other", so a reason
// text that varies per request cannot grow memory with the requests.
const MaxReasons = 32

// ResponseTime is the time from when the request should have been sent
// to the end of its response.
func (r Result) ResponseTime() time.Duration {
	if r.Intended.IsZero() || !r.Sent.After(r.Intended) {
		return r.Latency
	}
	return r.Latency + r.Sent.Sub(r.Intended)
}

// lag is how late the generator sent the request.
func (r Result) lag() time.Duration {
	if r.Intended.IsZero() {
		return 0
	}
	return max(r.Sent.Sub(r.Intended), 0)
}

// Counts are the request counters of a second or a phase.
type Counts struct {
	Requests  uint64         `json:"requests"`
	Successes uint64         `json:"successes"`
	Errors    uint64         `json:"errors"`
	Fallbacks uint64         `json:"fallbacks,omitempty"`
	Dropped   uint64         `json:"dropped,omitempty"`
	Codes     map[int]uint64 `json:"codes,omitempty"`
	// GRPCCodes counts gRPC results by their gRPC status code.
	GRPCCodes map[string]uint64 `json:"grpc_codes,omitempty"`
	// Reasons counts failed requests by Result.Reason.
	Reasons map[string]uint64 `json:"reasons,omitempty"`
}

func (c *Counts) add(r Result) {
	c.Requests++
	if r.Dropped {
		c.Dropped++
	}
	if r.Failed || r.Dropped {
		c.Errors++
		c.addReason(r.Reason, 1)
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
	if r.GRPCCode != "" {
		if c.GRPCCodes == nil {
			c.GRPCCodes = map[string]uint64{}
		}
		c.GRPCCodes[r.GRPCCode]++
	}
}

// addReason counts n failures for reason, within MaxReasons.
func (c *Counts) addReason(reason string, n uint64) {
	if reason == "" {
		return
	}
	if c.Reasons == nil {
		c.Reasons = map[string]uint64{}
	}
	if _, known := c.Reasons[reason]; !known && len(c.Reasons) >= MaxReasons {
		kind, _, _ := strings.Cut(reason, ": ")
		reason = kind + ": other"
	}
	c.Reasons[reason] += n
}

func (c *Counts) merge(o Counts) {
	c.Requests += o.Requests
	c.Successes += o.Successes
	c.Errors += o.Errors
	c.Fallbacks += o.Fallbacks
	c.Dropped += o.Dropped
	for k, v := range o.Codes {
		if c.Codes == nil {
			c.Codes = map[int]uint64{}
		}
		c.Codes[k] += v
	}
	for k, v := range o.Reasons {
		c.addReason(k, v)
	}
	for k, v := range o.GRPCCodes {
		if c.GRPCCodes == nil {
			c.GRPCCodes = map[string]uint64{}
		}
		c.GRPCCodes[k] += v
	}
}

// bucket is one second of the run, or one phase.
type bucket struct {
	Counts
	// timed counts the results with a time: all but the dropped.
	timed        uint64
	minUs, maxUs int64
	live         *hdrhistogram.Histogram
	// A phase also keeps the service times and the generator's lag;
	// seconds do not, to keep the recording small.
	service, lag *extra
	// A second keeps its failures' response times apart too, from its
	// first failure on (errs), and its successes' extremes, to split its
	// latency (Summary.ErrorLatency).
	errs             *extra
	okN              uint64
	okMinUs, okMaxUs int64
}

// addSplit notes a result of a second on its side of the split; errs
// come from the recorder's spare histograms.
func (b *bucket) addSplit(r Result, newHist func() *hdrhistogram.Histogram) {
	if r.Dropped {
		return
	}
	us := micros(r.ResponseTime())
	if !r.Failed {
		if b.okN == 0 || us < b.okMinUs {
			b.okMinUs = us
		}
		b.okN++
		b.okMaxUs = max(b.okMaxUs, us)
		return
	}
	if b.errs == nil {
		b.errs = &extra{}
	}
	if b.errs.h == nil {
		b.errs.h = newHist()
	}
	b.errs.add(r.ResponseTime())
}

// split is a second's latency split between successes and failures, from
// all its response times; zero without failures.
func (b *bucket) split(all *hdrhistogram.Histogram) (ok, failed Latency) {
	if b.errs == nil || b.errs.n == 0 {
		return Latency{}, Latency{}
	}
	errs := *b.errs
	failed = errs.latency()
	snap := all.Export()
	for i, c := range errs.h.Export().Counts {
		snap.Counts[i] = max(snap.Counts[i]-c, 0)
	}
	if h := hdrhistogram.Import(snap); b.okN > 0 && h.TotalCount() > 0 {
		ok = percentiles(h, b.okMinUs, b.okMaxUs)
	}
	return ok, failed
}

// extra is a histogram of something besides response times.
type extra struct {
	h            *hdrhistogram.Histogram
	n            uint64
	minUs, maxUs int64
}

func newExtra() *extra { return &extra{h: newHistogram()} }

func (x *extra) add(d time.Duration) {
	us := micros(d)
	x.n++
	if x.n == 1 || us < x.minUs {
		x.minUs = us
	}
	x.maxUs = max(x.maxUs, us)
	_ = x.h.RecordValue(us)
}

func (x *extra) merge(o *extra) {
	if o == nil || o.n == 0 {
		return
	}
	if x.n == 0 || o.minUs < x.minUs {
		x.minUs = o.minUs
	}
	x.maxUs = max(x.maxUs, o.maxUs)
	x.n += o.n
	x.h.Merge(o.h)
}

func (x *extra) latency() Latency {
	if x == nil || x.n == 0 {
		return Latency{}
	}
	return percentiles(x.h, x.minUs, x.maxUs)
}

func (b *bucket) add(r Result) {
	b.Counts.add(r)
	if r.Dropped {
		return // never sent: no time to record
	}
	us := micros(r.ResponseTime())
	if b.timed == 0 || us < b.minUs {
		b.minUs = us
	}
	b.timed++
	b.maxUs = max(b.maxUs, us)
	_ = b.live.RecordValue(us) // in range by construction
	if b.service != nil {
		b.service.add(r.Latency)
		b.lag.add(r.lag())
	}
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
	seconds []second
	// closed holds the records of closed seconds (see closed.go); scratch
	// is where the next one is written before it is put there.
	closed  arena
	scratch []byte
	perPh   []*bucket
	outside bucket // results sent after the last phase ended
	newest  int
	spare   []*hdrhistogram.Histogram
	// compacted is the number of leading seconds known to be closed, so
	// compaction does not rescan the whole run every second.
	compacted int
}

// second is one second of the run: open while results may still arrive
// for it, then closed, a record in the Recorder's arena. A second no result
// was sent in is neither.
type second struct {
	open   *bucket
	closed span
	// slices count the second's results by the tenth of it they were due
	// in, so a condition on rates and ratios can be timed to a tenth of a
	// second (Recorder.Slice).
	slices [SlicesPerSecond]slice
}

// SlicesPerSecond is how many slices a second is cut into: a Slice's
// window is aligned to SliceStep.
const (
	SlicesPerSecond = 10
	SliceStep       = time.Second / SlicesPerSecond
)

// slice is one tenth of a second: what Slice sums.
type slice struct {
	requests, errors, fallbacks uint32
}

// SliceCounts are the counts of the results due in a window of slices.
type SliceCounts struct {
	Requests, Errors, Fallbacks uint64
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
		r.perPh = append(r.perPh, &bucket{live: newHistogram(), service: newExtra(), lag: newExtra()})
	}
	r.outside = bucket{live: newHistogram(), service: newExtra(), lag: newExtra()}
	return r
}

// Start is the instant the recording counts from.
func (r *Recorder) Start() time.Time { return r.start }

// Add records one result.
func (r *Recorder) Add(res Result) {
	at := res.Sent
	if !res.Intended.IsZero() {
		at = res.Intended // the second the schedule put it in
	}
	off := at.Sub(r.start)
	sec := max(int(off/time.Second), 0)

	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.seconds) <= sec {
		r.seconds = append(r.seconds, second{})
	}
	s := &r.seconds[sec]
	switch {
	case s.open != nil:
	case s.closed.n > 0: // a very late result reopens its second
		s.open = decodeClosed(r.closed.get(s.closed)).reopen(r.histogram)
		s.closed = span{} // its old record stays in the arena, unused
		r.compacted = min(r.compacted, sec)
	default:
		s.open = &bucket{live: r.histogram()}
	}
	s.open.add(res)
	s.open.addSplit(res, r.histogram)
	sl := &s.slices[max(off%time.Second, 0)/SliceStep]
	sl.requests++
	switch {
	case res.Failed || res.Dropped:
		sl.errors++
	case res.Fallback:
		sl.fallbacks++
	}
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
		s := &r.seconds[i]
		if b := s.open; b != nil {
			sum := summarizeHist(b.Counts, b.live, b.minUs, b.maxUs)
			sum.SuccessLatency, sum.ErrorLatency = b.split(b.live)
			r.scratch = appendClosed(r.scratch[:0], b, sum)
			s.closed = r.closed.put(r.scratch)
			if b.errs != nil && b.errs.h != nil {
				b.errs.h.Reset()
				r.spare = append(r.spare, b.errs.h)
				b.errs.h = nil
			}
			b.live.Reset()
			r.spare = append(r.spare, b.live)
			s.open = nil
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
	rec.Seconds = make([]Summary, 0, len(r.seconds))
	for _, s := range r.seconds {
		switch {
		case s.open != nil:
			sum := summarize(s.open)
			sum.SuccessLatency, sum.ErrorLatency = s.open.split(s.open.live)
			rec.Seconds = append(rec.Seconds, sum)
		case s.closed.n > 0:
			rec.Seconds = append(rec.Seconds, decodeClosed(r.closed.get(s.closed)).summary())
		default:
			rec.Seconds = append(rec.Seconds, Summary{})
		}
	}
	for _, b := range r.perPh {
		rec.PhaseStats = append(rec.PhaseStats, summarize(b))
	}
	total := &bucket{live: newHistogram()}
	service, lag := newExtra(), newExtra()
	m := newMerger()
	for _, b := range append(slices.Clone(r.perPh), &r.outside) {
		total.Counts.merge(b.Counts)
		service.merge(b.service)
		lag.merge(b.lag)
		if b.timed > 0 {
			if total.timed == 0 || b.minUs < total.minUs {
				total.minUs = b.minUs
			}
			total.timed += b.timed
			total.maxUs = max(total.maxUs, b.maxUs)
			m.addHistogram(b.live)
		}
	}
	rec.Total = summarizeHist(total.Counts, m.histogram(), total.minUs, total.maxUs)
	rec.Total.Service, rec.Total.Lag = service.latency(), lag.latency()
	return rec
}

func summarize(b *bucket) Summary {
	s := summarizeHist(b.Counts, b.live, b.minUs, b.maxUs)
	s.Service, s.Lag = b.service.latency(), b.lag.latency()
	return s
}

// Slice returns the counts of the results due in [from, to), a window
// both of whose ends are multiples of SliceStep (others are rounded down
// to one): finer than the seconds Window reads, for counts only.
func (r *Recorder) Slice(from, to time.Duration) SliceCounts {
	first, last := max(int(from/SliceStep), 0), int(to/SliceStep)
	r.mu.Lock()
	defer r.mu.Unlock()
	var c SliceCounts
	for i := first; i < last && i/SlicesPerSecond < len(r.seconds); i++ {
		sl := r.seconds[i/SlicesPerSecond].slices[i%SlicesPerSecond]
		c.Requests += uint64(sl.requests)
		c.Errors += uint64(sl.errors)
		c.Fallbacks += uint64(sl.fallbacks)
	}
	return c
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
	var timed uint64
	m := newMerger()
	add := func(sc Counts, sTimed uint64, sMin, sMax int64) {
		if sTimed > 0 && (timed == 0 || sMin < minUs) {
			minUs = sMin
		}
		timed += sTimed
		maxUs = max(maxUs, sMax)
		c.merge(sc)
	}
	for i := first; i < min(last, len(r.seconds)); i++ {
		switch s := r.seconds[i]; {
		case s.open != nil:
			b := s.open
			add(b.Counts, b.timed, b.minUs, b.maxUs)
			m.addHistogram(b.live)
		case s.closed.n > 0:
			cs := decodeClosed(r.closed.get(s.closed))
			add(cs.Counts, cs.timed, cs.minUs, cs.maxUs)
			cs.addTo(m)
		}
	}
	return summarizeHist(c, m.histogram(), minUs, maxUs)
}

package harness

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// TrafficSeconds is how many one-second buckets of its traffic a proxy
// keeps: the last quarter of an hour, for a console's sparklines.
const TrafficSeconds = 900

// Latencies of the traffic buckets are in microseconds, from 1 µs to an
// hour, with two significant digits: a percentile is off by at most 1%,
// and a bucket's histogram stays small.
const (
	trafficHighestMicros = int64(time.Hour / time.Microsecond)
	trafficSigFigs       = 2
)

// TrafficSecond is what a proxy answered in one second.
type TrafficSecond struct {
	// S is the second, counted from TrafficPage.Start.
	S int64 `json:"s"`
	// Requests counts requests (gRPC calls) answered in the second;
	// Errors those answered with a status of 500 or more, that failed in
	// transport (the response was cut), or gRPC calls that ended with a
	// grpc-status other than OK, or none.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Codes counts requests by HTTP status, GRPC gRPC calls by the name
	// of their status ("OK", "Unavailable"; "none" for a call that ended
	// without one).
	Codes map[string]uint64 `json:"codes,omitempty"`
	GRPC  map[string]uint64 `json:"grpc,omitempty"`
	// Latency percentiles and the slowest request, in milliseconds, from
	// a request's arrival to the end of its response.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// Hist is the latency histogram, sparse: [upper bound in µs
	// (inclusive), count] for each bucket that is not empty, in
	// ascending order. Every proxy's buckets have the same bounds, so
	// seconds merge by adding the counts of equal bounds.
	Hist [][2]int64 `json:"hist,omitempty"`
}

// TrafficPage is GET /api/v1/proxies/{name}/traffic: the completed
// seconds after the one a client saw last.
type TrafficPage struct {
	// Start is the instant second 0 begins at: the proxy's start,
	// rounded down to the second.
	Start time.Time `json:"start,omitzero"`
	// Now is the second under way, not yet in Seconds.
	Now int64 `json:"now"`
	// Seconds are the completed seconds asked for, oldest first; seconds
	// without requests are left out. A tcp proxy has none.
	Seconds []TrafficSecond `json:"seconds"`
}

// traffic keeps a proxy's last TrafficSeconds seconds of requests. The
// second under way is filled under a mutex and closed into the ring by
// the first request (or read) of a later second.
type traffic struct {
	now   func() time.Time
	start time.Time

	mu     sync.Mutex
	cur    int64 // the second being filled
	n      TrafficSecond
	codes  map[int]uint64
	grpc   map[string]uint64
	hist   *hdrhistogram.Histogram
	maxUs  int64
	closed [TrafficSeconds]TrafficSecond // by S % TrafficSeconds; Requests 0: empty
}

func newTraffic(now func() time.Time) *traffic {
	if now == nil {
		now = time.Now
	}
	return &traffic{now: now, start: now().Truncate(time.Second), codes: map[int]uint64{}, grpc: map[string]uint64{},
		hist: hdrhistogram.New(1, trafficHighestMicros, trafficSigFigs)}
}

func (t *traffic) second(at time.Time) int64 { return int64(at.Sub(t.start) / time.Second) }

// record counts one request that ended now: its HTTP status, its gRPC
// status name ("" when it is not a gRPC call), whether it failed, and how
// long it took.
func (t *traffic) record(code int, grpcCode string, failed bool, d time.Duration) {
	s := t.second(t.now())
	us := min(max(d.Microseconds(), 1), trafficHighestMicros)
	t.mu.Lock()
	defer t.mu.Unlock()
	if s > t.cur {
		t.rollLocked(s)
	}
	t.n.Requests++
	if failed {
		t.n.Errors++
	}
	t.codes[code]++
	if grpcCode != "" {
		t.grpc[grpcCode]++
	}
	_ = t.hist.RecordValue(us)
	t.maxUs = max(t.maxUs, us)
}

// rollLocked closes the second under way into the ring and starts second
// s. t.mu is held.
func (t *traffic) rollLocked(s int64) {
	if t.n.Requests > 0 {
		done := t.n
		done.S = t.cur
		done.Codes = make(map[string]uint64, len(t.codes))
		for c, n := range t.codes {
			done.Codes[strconv.Itoa(c)] = n
		}
		if len(t.grpc) > 0 {
			done.GRPC = make(map[string]uint64, len(t.grpc))
			for c, n := range t.grpc {
				done.GRPC[c] = n
			}
		}
		ms := func(us int64) float64 { return float64(us) / 1000 }
		done.P50Ms, done.P99Ms, done.MaxMs = ms(t.hist.ValueAtQuantile(50)), ms(t.hist.ValueAtQuantile(99)), ms(t.maxUs)
		for _, b := range t.hist.Distribution() {
			if b.Count > 0 {
				done.Hist = append(done.Hist, [2]int64{b.To, b.Count})
			}
		}
		t.closed[t.cur%TrafficSeconds] = done
		clear(t.codes)
		clear(t.grpc)
		t.hist.Reset()
		t.maxUs = 0
	}
	t.n = TrafficSecond{}
	t.cur = s
}

// page returns the completed seconds after the second after, oldest
// first.
func (t *traffic) page(after int64) TrafficPage {
	s := t.second(t.now())
	t.mu.Lock()
	defer t.mu.Unlock()
	if s > t.cur {
		t.rollLocked(s)
	}
	p := TrafficPage{Start: t.start, Now: s, Seconds: []TrafficSecond{}}
	for i := max(after+1, s-TrafficSeconds, 0); i < s; i++ {
		if b := t.closed[i%TrafficSeconds]; b.Requests > 0 && b.S == i {
			p.Seconds = append(p.Seconds, b)
		}
	}
	return p
}

// Traffic returns the proxy's completed seconds after the second after
// (-1 for all it keeps), as GET /api/v1/proxies/{name}/traffic answers.
func (p *Proxy) Traffic(after int64) TrafficPage { return p.traffic.page(after) }

func (a *Admin) traffic(w http.ResponseWriter, r *http.Request) {
	after := int64(-1)
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after=%q: want the last second seen, -1 for all", s), nil)
			return
		}
		after = n
	}
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	t := m.target
	a.mu.Unlock()
	page := TrafficPage{Seconds: []TrafficSecond{}}
	if tp, ok := t.(interface{ Traffic(int64) TrafficPage }); ok {
		page = tp.Traffic(after)
	}
	writeJSON(w, http.StatusOK, page)
}

package record

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// t0 is a fixed run start: nothing in record reads the wall clock, so tests
// never need to.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// sample is one result as the test generated it, kept to compute the exact
// answer the recorder's summaries are checked against.
type sample struct {
	off time.Duration // Sent − start
	us  int64         // latency in whole microseconds
	res Result
}

// genSamples draws n results spread uniformly over span, with latencies
// from a mix: 95% log-normal around 20ms, 5% log-normal around 400ms (a slow
// tail, as a fault phase produces). Every 17th result fails with a 503.
func genSamples(seed uint64, n int, span time.Duration) []sample {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	out := make([]sample, n)
	for i := range out {
		mu, sigma := math.Log(20_000), 0.6
		if rng.Float64() < 0.05 {
			mu, sigma = math.Log(400_000), 0.4
		}
		us := max(int64(math.Exp(mu+sigma*rng.NormFloat64())), 1)
		off := time.Duration(rng.Int64N(int64(span)))
		res := Result{Sent: t0.Add(off), Latency: time.Duration(us) * time.Microsecond, Code: 200}
		if i%17 == 0 {
			res.Code, res.Failed = 503, true
		}
		out[i] = sample{off: off, us: us, res: res}
	}
	return out
}

// nearestRank is the exact percentile of sorted by the nearest-rank method:
// the smallest value with at least permille/1000 of the values at or below
// it. Integer arithmetic keeps the rank exact (99.9/100*20000 is not 19980
// in floating point).
func nearestRank(sorted []int64, permille int) int64 {
	rank := (permille*len(sorted) + 999) / 1000
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// wantSummary is the exact summary of samples: counts, and latencies by
// nearest rank.
type wantSummary struct {
	counts Counts
	us     []int64 // sorted latencies
}

func exactSummary(samples []sample) wantSummary {
	var w wantSummary
	for _, s := range samples {
		w.counts.add(s.res)
		w.us = append(w.us, s.us)
	}
	slices.Sort(w.us)
	return w
}

// checkSummary compares got with the exact answer: counts exactly, Min and
// Max to the microsecond, the mean and the percentiles within 1%.
func checkSummary(t *testing.T, where string, got Summary, want wantSummary) {
	t.Helper()
	if !reflect.DeepEqual(got.Counts, want.counts) {
		t.Errorf("%s: counts = %+v, want %+v", where, got.Counts, want.counts)
	}
	if len(want.us) == 0 {
		if got.Latency != (Latency{}) {
			t.Errorf("%s: latency of no requests = %+v, want zero", where, got.Latency)
		}
		return
	}
	us := func(d time.Duration) int64 { return d.Microseconds() }
	if g, w := us(got.Latency.Min), want.us[0]; g != w {
		t.Errorf("%s: min = %dµs, want %dµs", where, g, w)
	}
	if g, w := us(got.Latency.Max), want.us[len(want.us)-1]; g != w {
		t.Errorf("%s: max = %dµs, want %dµs", where, g, w)
	}
	var sum float64
	for _, v := range want.us {
		sum += float64(v)
	}
	within := func(name string, g, w float64) {
		if math.Abs(g-w) > 0.01*w {
			t.Errorf("%s: %s = %.0fµs, want %.0fµs ±1%% (n=%d)", where, name, g, w, len(want.us))
		}
	}
	within("mean", float64(got.Latency.Mean)/float64(time.Microsecond), sum/float64(len(want.us)))
	for _, q := range []struct {
		name     string
		permille int
		got      time.Duration
	}{
		{"p50", 500, got.Latency.P50},
		{"p90", 900, got.Latency.P90},
		{"p95", 950, got.Latency.P95},
		{"p99", 990, got.Latency.P99},
		{"p999", 999, got.Latency.P999},
	} {
		within(q.name, float64(us(q.got)), float64(nearestRank(want.us, q.permille)))
	}
}

func TestRecorder_Percentiles(t *testing.T) {
	const (
		seconds = 12
		n       = 20_000
	)
	phases := []PhaseSpan{
		{Name: "baseline", Start: 0, End: 5 * time.Second},
		{Name: "fault", Start: 5 * time.Second, End: 10 * time.Second},
	}
	tests := []struct {
		name     string
		seed     uint64
		lateness time.Duration
	}{
		{"all seconds open", 1, time.Minute},
		{"seconds compacted", 2, 0},
		{"another seed", 3, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := genSamples(tt.seed, n, seconds*time.Second)
			rec := NewRecorder(t0, phases, tt.lateness)
			// Results arrive roughly in order, as from a load run.
			slices.SortStableFunc(samples, func(a, b sample) int { return int(a.off - b.off) })
			for _, s := range samples {
				rec.Add(s.res)
			}
			got := rec.Snapshot()

			bySec := make([][]sample, seconds)
			byPhase := make([][]sample, len(phases))
			for _, s := range samples {
				sec := int(s.off / time.Second)
				bySec[sec] = append(bySec[sec], s)
				if ph := int(s.off / (5 * time.Second)); ph < len(phases) {
					byPhase[ph] = append(byPhase[ph], s)
				}
			}
			if len(got.Seconds) != seconds {
				t.Fatalf("%d seconds recorded, want %d", len(got.Seconds), seconds)
			}
			for i, ss := range bySec {
				checkSummary(t, fmt.Sprintf("second %d", i), got.Seconds[i], exactSummary(ss))
			}
			if len(got.PhaseStats) != len(phases) {
				t.Fatalf("%d phase summaries, want %d", len(got.PhaseStats), len(phases))
			}
			for i, ss := range byPhase {
				checkSummary(t, "phase "+phases[i].Name, got.PhaseStats[i], exactSummary(ss))
			}
			checkSummary(t, "total", got.Total, exactSummary(samples))
		})
	}
}

func TestRecorder_PhaseAttribution(t *testing.T) {
	phases := []PhaseSpan{
		{Name: "baseline", Start: time.Second, End: 3 * time.Second},
		{Name: "fault", Start: 3 * time.Second, End: 5 * time.Second},
	}
	type counts struct{ baseline, fault, total uint64 }
	tests := []struct {
		name  string
		off   time.Duration
		phase int // Result.Phase: 0 attributes by Sent
		want  counts
	}{
		{"sent before the run started", -500 * time.Millisecond, 0, counts{1, 0, 1}},
		{"before the first phase", 999 * time.Millisecond, 0, counts{1, 0, 1}},
		{"first phase starts inclusive", time.Second, 0, counts{1, 0, 1}},
		{"inside the first phase", 2 * time.Second, 0, counts{1, 0, 1}},
		{"first phase ends exclusive", 3*time.Second - time.Nanosecond, 0, counts{1, 0, 1}},
		{"second phase starts inclusive", 3 * time.Second, 0, counts{0, 1, 1}},
		{"last nanosecond of the last phase", 5*time.Second - time.Nanosecond, 0, counts{0, 1, 1}},
		{"at the end of the last phase", 5 * time.Second, 0, counts{0, 0, 1}},
		{"long after the last phase", time.Minute, 0, counts{0, 0, 1}},
		{"phase given by the schedule wins over Sent", 2 * time.Second, 2, counts{0, 1, 1}},
		{"phase given after the last phase ended", 5 * time.Second, 1, counts{1, 0, 1}},
		{"unknown phase falls back to Sent", 4 * time.Second, 3, counts{0, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder(t0, phases, time.Second)
			rec.Add(Result{Sent: t0.Add(tt.off), Latency: time.Millisecond, Code: 200, Phase: tt.phase})
			got := rec.Snapshot()
			gotCounts := counts{got.PhaseStats[0].Requests, got.PhaseStats[1].Requests, got.Total.Requests}
			if gotCounts != tt.want {
				t.Errorf("requests (baseline, fault, total) = %v, want %v", gotCounts, tt.want)
			}
			wantSec := max(int(tt.off/time.Second), 0)
			if len(got.Seconds) != wantSec+1 || got.Seconds[wantSec].Requests != 1 {
				t.Errorf("result not in second %d: %d seconds recorded", wantSec, len(got.Seconds))
			}
		})
	}
}

func TestRecorder_Counts(t *testing.T) {
	phases := []PhaseSpan{
		{Name: "a", Start: 0, End: time.Second},
		{Name: "b", Start: time.Second, End: 2 * time.Second},
	}
	rec := NewRecorder(t0, phases, time.Second)
	add := func(off time.Duration, code int, failed bool, times int) {
		for range times {
			rec.Add(Result{Sent: t0.Add(off), Latency: time.Millisecond, Code: code, Failed: failed})
		}
	}
	add(100*time.Millisecond, 200, false, 7)
	add(200*time.Millisecond, 503, true, 2)
	add(1500*time.Millisecond, 200, false, 3)
	add(1600*time.Millisecond, 0, true, 4) // transport errors: no response
	add(1700*time.Millisecond, 302, false, 1)
	add(2500*time.Millisecond, 500, true, 5) // after the last phase

	got := rec.Snapshot()
	tests := []struct {
		name string
		got  Summary
		want Counts
	}{
		{"phase a", got.PhaseStats[0], Counts{Requests: 9, Successes: 7, Errors: 2, Codes: map[int]uint64{200: 7, 503: 2}}},
		{"phase b", got.PhaseStats[1], Counts{Requests: 8, Successes: 4, Errors: 4, Codes: map[int]uint64{200: 3, 0: 4, 302: 1}}},
		{"second 0", got.Seconds[0], Counts{Requests: 9, Successes: 7, Errors: 2, Codes: map[int]uint64{200: 7, 503: 2}}},
		{"second 1", got.Seconds[1], Counts{Requests: 8, Successes: 4, Errors: 4, Codes: map[int]uint64{200: 3, 0: 4, 302: 1}}},
		{"second 2", got.Seconds[2], Counts{Requests: 5, Errors: 5, Codes: map[int]uint64{500: 5}}},
		{"total", got.Total, Counts{Requests: 22, Successes: 11, Errors: 11, Codes: map[int]uint64{200: 10, 503: 2, 0: 4, 302: 1, 500: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got.Counts, tt.want) {
				t.Errorf("counts = %+v, want %+v", tt.got.Counts, tt.want)
			}
		})
	}

	// A snapshot is the caller's: changing its code maps must not reach the
	// recorder.
	got.Total.Codes[200] = 1e6
	got.Seconds[0].Codes[200] = 1e6
	again := rec.Snapshot()
	if again.Total.Codes[200] != 10 || again.Seconds[0].Codes[200] != 7 {
		t.Errorf("snapshot shares its code maps with the recorder: total %v, second 0 %v", again.Total.Codes, again.Seconds[0].Codes)
	}
}

func TestSummary_Rates(t *testing.T) {
	tests := []struct {
		name              string
		counts            Counts
		success, errRatio float64
	}{
		{"no requests", Counts{}, 0, 0},
		{"all succeed", Counts{Requests: 4, Successes: 4}, 1, 0},
		{"a quarter fails", Counts{Requests: 4, Successes: 3, Errors: 1}, 0.75, 0.25},
		{"all fail", Counts{Requests: 2, Errors: 2}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summary{Counts: tt.counts}
			if got := s.SuccessRate(); got != tt.success {
				t.Errorf("SuccessRate() = %v, want %v", got, tt.success)
			}
			if got := s.ErrorRate(); got != tt.errRatio {
				t.Errorf("ErrorRate() = %v, want %v", got, tt.errRatio)
			}
		})
	}
}

func TestRecorder_LateResults(t *testing.T) {
	phases := []PhaseSpan{
		{Name: "baseline", Start: 0, End: 10 * time.Second},
		{Name: "fault", Start: 10 * time.Second, End: 30 * time.Second},
	}
	// Seconds 0..20 in order, twenty results each, then results that
	// arrive long after their second was compacted.
	var inOrder []Result
	rng := rand.New(rand.NewPCG(7, 7))
	for sec := range 21 {
		for i := range 20 {
			off := time.Duration(sec)*time.Second + time.Duration(i)*50*time.Millisecond
			lat := time.Duration(1+rng.IntN(200_000)) * time.Microsecond
			inOrder = append(inOrder, Result{Sent: t0.Add(off), Latency: lat, Code: 200})
		}
	}
	late := []Result{
		{Sent: t0.Add(2*time.Second + 10*time.Millisecond), Latency: 9 * time.Second, Code: 504, Failed: true},
		{Sent: t0.Add(2*time.Second + 20*time.Millisecond), Latency: 3 * time.Microsecond, Code: 200},
	}
	after := Result{Sent: t0.Add(25 * time.Second), Latency: time.Millisecond, Code: 200}

	tests := []struct {
		name    string
		results [][]Result // fed in order; a snapshot is checked after each
	}{
		{"very late result reopens its second", [][]Result{inOrder, late[:1]}},
		{"reopened second is compacted again", [][]Result{inOrder, late[:1], {after}, late[1:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder(t0, phases, time.Second)
			ref := NewRecorder(t0, phases, time.Hour) // never compacts
			for i, batch := range tt.results {
				if i > 0 && batch[0].Sent.Sub(t0)/time.Second == 2 && rec.seconds[2].open != nil {
					t.Fatalf("second 2 not compacted before batch %d: the test does not reach the reopen path", i)
				}
				for _, r := range batch {
					rec.Add(r)
					ref.Add(r)
				}
				got, want := rec.Snapshot(), ref.Snapshot()
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("after batch %d: compacted recording differs from an uncompacted one:\n got %+v\nwant %+v", i, got.Seconds[2], want.Seconds[2])
				}
			}
			var all []sample
			for _, batch := range tt.results {
				for _, r := range batch {
					if r.Sent.Sub(t0)/time.Second == 2 {
						all = append(all, sample{us: r.Latency.Microseconds(), res: r})
					}
				}
			}
			checkSummary(t, "second 2", rec.Snapshot().Seconds[2], exactSummary(all))
		})
	}
}

func TestRecorder_SnapshotWhileAdding(t *testing.T) {
	const (
		writers   = 4
		perWriter = 1_000
	)
	phases := []PhaseSpan{{Name: "only", Start: 0, End: 10 * time.Second}}
	rec := NewRecorder(t0, phases, time.Second)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range perWriter {
				off := time.Duration(i) * 10 * time.Second / perWriter
				rec.Add(Result{Sent: t0.Add(off), Latency: time.Duration(1+rng.IntN(1e6)) * time.Microsecond, Code: 200})
			}
		})
	}
	// A bounded number of snapshots, each checked for consistency, while
	// the writers run; -race checks the rest.
	const maxSnaps = 50
	done := make(chan struct{})
	var snaps int
	var readers sync.WaitGroup
	readers.Go(func() {
		var last uint64
		for snaps < maxSnaps {
			s := rec.Snapshot()
			snaps++
			if s.Total.Requests < last {
				t.Errorf("total went down from %d to %d", last, s.Total.Requests)
			}
			last = s.Total.Requests
			var perSec uint64
			for _, sec := range s.Seconds {
				perSec += sec.Requests
			}
			if perSec != s.Total.Requests {
				t.Errorf("seconds add up to %d requests, total says %d", perSec, s.Total.Requests)
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	wg.Wait()
	close(done)
	readers.Wait()

	if got := rec.Snapshot().Total.Requests; got != writers*perWriter {
		t.Errorf("total = %d requests, want %d", got, writers*perWriter)
	}
	t.Logf("%d snapshots taken while adding", snaps)
}

func TestRecorder_BoundedLiveHistograms(t *testing.T) {
	tests := []struct {
		name     string
		lateness time.Duration
		seconds  int
	}{
		{"no lateness", 0, 100},
		{"one second", time.Second, 100},
		{"ten seconds", 10 * time.Second, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phases := []PhaseSpan{{Name: "run", Start: 0, End: time.Duration(tt.seconds) * time.Second}}
			rec := NewRecorder(t0, phases, tt.lateness)
			maxLive, maxSpare := 0, 0
			for sec := range tt.seconds {
				for i := range 5 {
					off := time.Duration(sec)*time.Second + time.Duration(i)*200*time.Millisecond
					rec.Add(Result{Sent: t0.Add(off), Latency: time.Duration(sec+i+1) * time.Millisecond, Code: 200})
				}
				live := 0
				for _, s := range rec.seconds {
					if s.open != nil {
						live++
					}
				}
				maxLive = max(maxLive, live)
				maxSpare = max(maxSpare, len(rec.spare))
			}
			// The newest second and the horizon behind it stay open; every
			// older one is compacted and its histogram reused.
			if limit := rec.horizon + 1; maxLive > limit {
				t.Errorf("up to %d live second histograms, want at most %d (horizon %d)", maxLive, limit, rec.horizon)
			}
			if maxSpare > 1 {
				t.Errorf("up to %d spare histograms pooled, want at most 1", maxSpare)
			}
			got := rec.Snapshot()
			if len(got.Seconds) != tt.seconds || got.Total.Requests != uint64(5*tt.seconds) {
				t.Errorf("recorded %d seconds and %d requests, want %d and %d", len(got.Seconds), got.Total.Requests, tt.seconds, 5*tt.seconds)
			}
			if want := time.Duration(tt.seconds+4) * time.Millisecond; got.Total.Latency.Max != want {
				t.Errorf("total max = %v, want %v", got.Total.Latency.Max, want)
			}
		})
	}
}

func TestRecorder_Clamps(t *testing.T) {
	tests := []struct {
		name     string
		latency  time.Duration
		wantMin  time.Duration
		wantCode int
	}{
		{"zero latency counts as 1µs", 0, time.Microsecond, 200},
		{"sub-microsecond counts as 1µs", 400 * time.Nanosecond, time.Microsecond, 200},
		{"beyond the histogram's range is capped", time.Hour, 10 * time.Minute, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder(t0, nil, time.Second)
			rec.Add(Result{Sent: t0, Latency: tt.latency, Code: tt.wantCode})
			got := rec.Snapshot().Total
			if got.Latency.Min != tt.wantMin || got.Latency.Max != tt.wantMin || got.Latency.P99 != tt.wantMin {
				t.Errorf("latency = %+v, want min = max = p99 = %v", got.Latency, tt.wantMin)
			}
			if !maps.Equal(got.Codes, map[int]uint64{tt.wantCode: 1}) {
				t.Errorf("codes = %v", got.Codes)
			}
		})
	}
}

func BenchmarkRecorder_Add(b *testing.B) {
	phases := []PhaseSpan{
		{Name: "baseline", Start: 0, End: 30 * time.Second},
		{Name: "fault", Start: 30 * time.Second, End: time.Hour},
	}
	samples := genSamples(1, 1<<16, time.Second)
	rec := NewRecorder(t0, phases, time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := samples[i%len(samples)]
		// 1000 results a second: the run moves on to a new second (and
		// compacts an old one) every thousand results.
		r := s.res
		r.Sent = t0.Add(time.Duration(i) * time.Millisecond)
		rec.Add(r)
		i++
	}
}

// BenchmarkRecorder_Snapshot is the cost of one live-progress snapshot of a
// ten-minute run, most of whose seconds are compacted.
func BenchmarkRecorder_Snapshot(b *testing.B) {
	const seconds = 600
	phases := []PhaseSpan{{Name: "run", Start: 0, End: seconds * time.Second}}
	samples := genSamples(1, 100*seconds, seconds*time.Second)
	slices.SortStableFunc(samples, func(a, b sample) int { return int(a.off - b.off) })
	rec := NewRecorder(t0, phases, time.Second)
	for _, s := range samples {
		rec.Add(s.res)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec.Snapshot()
	}
}

func TestRecorder_Window(t *testing.T) {
	start := time.Unix(0, 0)
	r := NewRecorder(start, []PhaseSpan{{Name: "all", Start: 0, End: time.Minute}}, time.Second)
	// Second i gets i+1 results of (i+1) ms; second 3 gets one failure.
	for i := range 10 {
		for range i + 1 {
			r.Add(Result{Sent: start.Add(time.Duration(i)*time.Second + time.Millisecond), Latency: time.Duration(i+1) * time.Millisecond, Code: 200})
		}
	}
	r.Add(Result{Sent: start.Add(3 * time.Second), Latency: time.Millisecond, Code: 503, Failed: true})

	tests := []struct {
		name             string
		from, to         time.Duration
		requests, errors uint64
		min, max         time.Duration
	}{
		{"one second", 2 * time.Second, 3 * time.Second, 3, 0, 3 * time.Millisecond, 3 * time.Millisecond},
		{"three seconds with the failure", 2 * time.Second, 5 * time.Second, 3 + 5 + 5, 1, time.Millisecond, 5 * time.Millisecond},
		{"unaligned edges count whole seconds starting inside", 1500 * time.Millisecond, 3500 * time.Millisecond, 3 + 5, 1, time.Millisecond, 4 * time.Millisecond},
		{"past the end", 8 * time.Second, time.Hour, 9 + 10, 0, 9 * time.Millisecond, 10 * time.Millisecond},
		{"empty", 20 * time.Second, 30 * time.Second, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := r.Window(tt.from, tt.to)
			if s.Requests != tt.requests || s.Errors != tt.errors || s.Latency.Min != tt.min || s.Latency.Max != tt.max {
				t.Errorf("Window(%v, %v) = %d requests, %d errors, min %v, max %v; want %d, %d, %v, %v",
					tt.from, tt.to, s.Requests, s.Errors, s.Latency.Min, s.Latency.Max, tt.requests, tt.errors, tt.min, tt.max)
			}
		})
	}
	// After compaction the answers are the same.
	r.Add(Result{Sent: start.Add(30 * time.Second), Latency: time.Millisecond, Code: 200})
	// p50 is the 7th of 13 values, 4 ms, within the histogram's 0.1%.
	if s := r.Window(2*time.Second, 5*time.Second); s.Requests != 13 || s.Latency.P50 < 4*time.Millisecond || s.Latency.P50 > 4004*time.Microsecond {
		t.Errorf("after compaction: %d requests, p50 %v; want 13, 4ms", s.Requests, s.Latency.P50)
	}
}

// Slice counts results by the tenth of a second they were due in, not
// sent in, and keeps them once the second is compacted and reopened.
func TestRecorder_Slice(t *testing.T) {
	start := time.Unix(0, 0)
	r := NewRecorder(start, []PhaseSpan{{Name: "all", Start: 0, End: time.Minute}}, time.Second)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	// Second 2: one success at .05, a fallback at .35, failures at .35
	// and .99 — the last sent a second late, counted where it was due.
	r.Add(Result{Sent: at(2050 * time.Millisecond), Latency: time.Millisecond, Code: 200})
	r.Add(Result{Sent: at(2350 * time.Millisecond), Latency: time.Millisecond, Code: 200, Fallback: true})
	r.Add(Result{Sent: at(2360 * time.Millisecond), Latency: time.Millisecond, Code: 503, Failed: true})
	r.Add(Result{Sent: at(3990 * time.Millisecond), Intended: at(2990 * time.Millisecond), Latency: time.Millisecond, Failed: true, Dropped: true})

	tests := []struct {
		name     string
		from, to time.Duration
		want     SliceCounts
	}{
		{"first tenth", 2 * time.Second, 2100 * time.Millisecond, SliceCounts{Requests: 1}},
		{"an empty tenth", 2100 * time.Millisecond, 2300 * time.Millisecond, SliceCounts{}},
		{"fourth tenth", 2300 * time.Millisecond, 2400 * time.Millisecond, SliceCounts{Requests: 2, Errors: 1, Fallbacks: 1}},
		{"last tenth, by when it was due", 2900 * time.Millisecond, 3 * time.Second, SliceCounts{Requests: 1, Errors: 1}},
		{"the whole second", 2 * time.Second, 3 * time.Second, SliceCounts{Requests: 4, Errors: 2, Fallbacks: 1}},
		{"unaligned ends round down", 2050 * time.Millisecond, 2390 * time.Millisecond, SliceCounts{Requests: 1}},
		{"past the end", 50 * time.Second, time.Hour, SliceCounts{}},
	}
	check := func(when string) {
		for _, tt := range tests {
			if got := r.Slice(tt.from, tt.to); got != tt.want {
				t.Errorf("%s: %s: Slice(%v, %v) = %+v, want %+v", when, tt.name, tt.from, tt.to, got, tt.want)
			}
		}
	}
	check("open")
	r.Add(Result{Sent: at(30 * time.Second), Latency: time.Millisecond, Code: 200}) // compacts second 2
	tests[len(tests)-1].want = SliceCounts{}
	check("compacted")
	r.Add(Result{Sent: at(2050 * time.Millisecond), Latency: time.Millisecond, Code: 200}) // reopens it
	tests[0].want.Requests, tests[4].want.Requests, tests[5].want.Requests = 2, 5, 2
	check("reopened")
}

// A generator that falls behind sends late; the response time counts the
// wait from the intended send, the service time does not, and a dropped
// request is a failure with no time at all.
func TestRecorder_CoordinatedOmission(t *testing.T) {
	phases := []PhaseSpan{{Name: "only", Start: 0, End: 10 * time.Second}}
	rec := NewRecorder(t0, phases, time.Second)
	for i := range 100 {
		intended := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		late := time.Duration(0)
		if i >= 50 {
			late = 200 * time.Millisecond // the second half went out 200 ms late
		}
		rec.Add(Result{Intended: intended, Sent: intended.Add(late), Latency: 10 * time.Millisecond, Code: 200, Phase: 1})
	}
	rec.Add(Result{Intended: t0.Add(time.Second), Sent: t0.Add(time.Second), Dropped: true, Phase: 1})
	snap := rec.Snapshot()
	for name, s := range map[string]Summary{"phase": snap.PhaseStats[0], "total": snap.Total} {
		if s.Requests != 101 || s.Errors != 1 || s.Dropped != 1 {
			t.Errorf("%s: requests %d errors %d dropped %d, want 101, 1, 1", name, s.Requests, s.Errors, s.Dropped)
		}
		if s.Latency.P50 < 9990*time.Microsecond || s.Latency.P50 > 10010*time.Microsecond || s.Latency.P99 < 209*time.Millisecond || s.Latency.P99 > 211*time.Millisecond {
			t.Errorf("%s: response time p50 %v p99 %v, want 10ms and 210ms", name, s.Latency.P50, s.Latency.P99)
		}
		if s.Service.P99 < 9990*time.Microsecond || s.Service.P99 > 10010*time.Microsecond {
			t.Errorf("%s: service time p99 %v, want 10ms", name, s.Service.P99)
		}
		if s.Lag.Max < 199*time.Millisecond || s.Lag.Max > 201*time.Millisecond || s.Lag.P50 > time.Millisecond {
			t.Errorf("%s: lag p50 %v max %v, want 0 and 200ms", name, s.Lag.P50, s.Lag.Max)
		}
	}
	// Results count in the second the schedule put them in.
	if got := snap.Seconds[0].Requests; got != 100 {
		t.Errorf("second 0 holds %d results, want the 100 scheduled in it", got)
	}
}

func TestRecorder_SuccessErrorSplit(t *testing.T) {
	phases := []PhaseSpan{{Name: "only", Start: 0, End: 10 * time.Second}}
	for _, lateness := range []time.Duration{time.Second, time.Hour} {
		rec := NewRecorder(t0, phases, lateness)
		// Second 0: slow successes and fast failures (a refused
		// connection); second 1: successes only.
		for i := range 10 {
			rec.Add(Result{Sent: t0.Add(time.Duration(i) * time.Millisecond), Latency: 200 * time.Millisecond, Code: 200})
			rec.Add(Result{Sent: t0.Add(time.Duration(i) * time.Millisecond), Latency: time.Millisecond, Failed: true, Reason: "transport: connection refused"})
			rec.Add(Result{Sent: t0.Add(time.Second + time.Duration(i)*time.Millisecond), Latency: 50 * time.Millisecond, Code: 200})
		}
		// Later results close the first seconds with a short lateness.
		rec.Add(Result{Sent: t0.Add(8 * time.Second), Latency: time.Millisecond, Code: 200})
		snap := rec.Snapshot()
		s0, s1 := snap.Seconds[0], snap.Seconds[1]
		if s0.SuccessLatency.P50 != 200*time.Millisecond || s0.ErrorLatency.P50 != time.Millisecond {
			t.Errorf("lateness %v: second 0 split %v / %v, want successes at 200ms, failures at 1ms", lateness, s0.SuccessLatency.P50, s0.ErrorLatency.P50)
		}
		if s0.Latency.P50 != time.Millisecond {
			t.Errorf("lateness %v: second 0 p50 of all = %v, want 1ms", lateness, s0.Latency.P50)
		}
		if s1.SuccessLatency != (Latency{}) || s1.ErrorLatency != (Latency{}) {
			t.Errorf("lateness %v: second 1 has no failures but a split: %+v", lateness, s1)
		}
	}
}

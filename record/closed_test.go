package record

import (
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"
)

// soakSecond returns the results of second sec of a run shaped like
// bench/soak.sh: 1,000 a second, and one-minute phases taking turns
// between a baseline (log-normal around 7 ms), a 200 ms latency fault and
// a 503 abort (log-normal around 1 ms), with a baseline between faults.
func soakSecond(rng *rand.Rand, sec int) []Result {
	out := make([]Result, 1000)
	for i := range out {
		sent := t0.Add(time.Duration(sec)*time.Second + time.Duration(i)*time.Millisecond)
		res := Result{Sent: sent, Intended: sent, Code: 200}
		switch (sec / 60) % 4 {
		case 1:
			res.Latency = 200*time.Millisecond + logNormal(rng, 1500, 0.5)
		case 3:
			res.Latency = logNormal(rng, 1000, 0.5)
			res.Code, res.Failed, res.Reason = 503, true, "status: 503"
		default:
			res.Latency = logNormal(rng, 7000, 0.3)
		}
		out[i] = res
	}
	return out
}

// logNormal draws a duration log-normally distributed around medianUs
// microseconds.
func logNormal(rng *rand.Rand, medianUs, sigma float64) time.Duration {
	return time.Duration(medianUs*math.Exp(sigma*rng.NormFloat64())) * time.Microsecond
}

// BenchmarkRecorder_ClosedSecond records b.N seconds of the soak's traffic
// after a minute of warm-up and reports what each second closed in between
// added to the heap (B/closed-s): how a long run's memory grows with its
// seconds. The open seconds' histograms, reused, cost the same at both
// readings. Use a fixed count, -benchtime=600x, to measure ten minutes.
func BenchmarkRecorder_ClosedSecond(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	phases := []PhaseSpan{{Name: "run", Start: 0, End: 24 * time.Hour}}
	rec := NewRecorder(t0, phases, 5*time.Second)
	sec := 0
	record := func() {
		for _, r := range soakSecond(rng, sec) {
			rec.Add(r)
		}
		sec++
	}
	for range 60 {
		record()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b.Loop() {
		record()
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "B/closed-s")
	runtime.KeepAlive(rec)
}

func TestClosedSecond_RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name    string
		results []Result
	}{
		{"soak baseline", soakSecond(rng, 0)},
		{"soak latency fault", soakSecond(rng, 60)},
		{"soak abort, with reasons", soakSecond(rng, 180)},
		{"one result", []Result{{Sent: t0, Latency: 3 * time.Millisecond, Code: 200}}},
		{"many in one histogram bucket", func() []Result {
			out := make([]Result, 300)
			for i := range out {
				out[i] = Result{Sent: t0, Latency: time.Duration(i%3) * time.Microsecond, Code: 200}
			}
			return out
		}()},
		{"the histogram's ends", []Result{
			{Sent: t0, Latency: 0, Code: 200},
			{Sent: t0, Latency: time.Hour, Code: 0, Failed: true, Reason: "transport: timeout"},
		}},
		{"gRPC codes, fallbacks, drops", []Result{
			{Sent: t0, Latency: time.Millisecond, Code: 200, GRPCCode: "OK"},
			{Sent: t0, Latency: 2 * time.Millisecond, Code: 200, GRPCCode: "OK", Fallback: true},
			{Sent: t0, Latency: 9 * time.Millisecond, Code: 503, GRPCCode: "Unavailable", Failed: true, Reason: "status: Unavailable"},
			{Sent: t0, Code: 0, Dropped: true, Reason: "dropped: in-flight cap"},
		}},
		{"only drops", []Result{
			{Sent: t0, Dropped: true, Reason: "dropped: in-flight cap"},
			{Sent: t0, Dropped: true, Reason: "dropped: in-flight cap"},
		}},
		{"code zero", []Result{
			{Sent: t0, Latency: time.Second, Code: 0, Failed: true},
			{Sent: t0, Latency: time.Second, Code: 599, Failed: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &bucket{live: newHistogram()}
			for _, r := range tt.results {
				b.add(r)
				b.addSplit(r, newHistogram)
			}
			sum := summarizeHist(b.Counts, b.live, b.minUs, b.maxUs)
			sum.SuccessLatency, sum.ErrorLatency = b.split(b.live)
			c := decodeClosed(appendClosed(nil, b, sum))
			if got := c.summary(); !reflect.DeepEqual(got, sum) {
				t.Errorf("summary = %+v, want %+v", got, sum)
			}
			m := newMerger()
			c.addTo(m)
			if got, want := m.snap.Counts, b.live.Export().Counts; !slices.Equal(got, want) {
				t.Errorf("histogram counts differ from the original's")
			}
			reopened := c.reopen(newHistogram)
			if ok, failed := reopened.split(reopened.live); ok != sum.SuccessLatency || failed != sum.ErrorLatency {
				t.Errorf("reopened split %+v / %+v, want %+v / %+v", ok, failed, sum.SuccessLatency, sum.ErrorLatency)
			}
			if !reflect.DeepEqual(reopened.Counts, b.Counts) || reopened.timed != b.timed || reopened.minUs != b.minUs || reopened.maxUs != b.maxUs {
				t.Errorf("reopened = %+v timed %d min %d max %d, want %+v timed %d min %d max %d",
					reopened.Counts, reopened.timed, reopened.minUs, reopened.maxUs, b.Counts, b.timed, b.minUs, b.maxUs)
			}
			if !slices.Equal(reopened.live.Export().Counts, b.live.Export().Counts) {
				t.Errorf("reopened histogram differs from the original")
			}
		})
	}
}

func TestArena_PutGet(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
	}{
		{"small records fill a chunk and start the next", slices.Repeat([]int{1000}, 3*arenaChunk/1000)},
		{"a record larger than a chunk gets its own", []int{10, arenaChunk + 5, 10, 2 * arenaChunk, 1}},
		{"a record exactly a chunk", []int{arenaChunk, arenaChunk, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a arena
			var spans []span
			var want [][]byte
			for i, n := range tt.sizes {
				rec := make([]byte, n)
				for j := range rec {
					rec[j] = byte(i + j)
				}
				spans = append(spans, a.put(rec))
				want = append(want, rec)
			}
			for i, s := range spans {
				if got := a.get(s); !slices.Equal(got, want[i]) {
					t.Errorf("record %d (%d bytes) read back differs", i, len(want[i]))
				}
			}
		})
	}
}

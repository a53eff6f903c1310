package record

import (
	"math"
	"math/rand/v2"
	"runtime"
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

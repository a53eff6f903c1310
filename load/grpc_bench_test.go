package load_test

import (
	"testing"
	"time"

	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
)

// BenchmarkRunGRPC measures what a call costs the generator: b.N unary
// calls to the demo target, scheduled at 5,000/s (the demo answers in
// milliseconds, so calls overlap as they would under real load).
func BenchmarkRunGRPC(b *testing.B) {
	r, err := demo.Start("127.0.0.1:0", demo.Options{Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	const rate = 5000
	steps := []load.Step{{Name: "only", Duration: time.Duration(float64(b.N) / rate * float64(time.Second)), Rate: rate}}
	rec := record.NewRecorder(time.Now(), spans(steps), 10*time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	st, err := load.RunGRPC(b.Context(), load.GRPCOptions{
		Target: r.Addr(), Call: "resctl.demo.v1.Orders/GetOrder", Data: `{"id": 7}`,
		Pacer: load.NewPacer(steps), Recorder: rec,
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if got := rec.Snapshot().Total; got.Successes != st.Sent {
		b.Fatalf("sent %d, %d successes", st.Sent, got.Successes)
	}
	b.ReportMetric(float64(st.Sent)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(st.Dropped), "dropped")
}

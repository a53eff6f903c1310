package harness

import (
	"testing"
	"time"
)

// BenchmarkTraffic_Record is the per-request cost of the traffic buckets,
// from every core at once: one clock read and one mutex.
func BenchmarkTraffic_Record(b *testing.B) {
	t := newTraffic(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t.record(200, "", false, 3*time.Millisecond)
		}
	})
}

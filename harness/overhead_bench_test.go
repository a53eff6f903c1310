package harness_test

import (
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/resctl/resctl/harness"
)

// BenchmarkProxy_AddedLatencyAt1000rps sends requests at 1,000 per second,
// alternating between the upstream directly and the http proxy with no
// fault active, and reports the p50 of each and the p50 the proxy adds.
// Run it with a fixed count: -benchtime 5000x.
func BenchmarkProxy_AddedLatencyAt1000rps(b *testing.B) {
	up := serve(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"orders":[]}`)
	}), false)
	p := startProxy(b, harness.Options{Upstream: up.URL})
	c := newClient(b, false)
	get := func(url string) time.Duration {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	get(up.URL + "/")
	get(p.URL() + "/")
	var direct, proxied []time.Duration
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	i := 0
	for b.Loop() {
		<-tick.C
		if i%2 == 0 {
			direct = append(direct, get(up.URL+"/api/orders"))
		} else {
			proxied = append(proxied, get(p.URL()+"/api/orders"))
		}
		i++
	}
	p50 := func(ds []time.Duration) float64 {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds())
	}
	b.ReportMetric(p50(direct), "direct_p50_µs")
	b.ReportMetric(p50(proxied), "proxy_p50_µs")
	b.ReportMetric(p50(proxied)-p50(direct), "added_p50_µs")
}

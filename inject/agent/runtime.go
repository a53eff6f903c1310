package agent

import (
	"bufio"
	"net/http"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// runtimeMetrics serves every scalar reading of runtime/metrics in the
// Prometheus text format: richer runtime signals than a service's usual
// Go collector exposes (scheduler latencies aside: histograms are left
// out), read without stopping the world. A run scrapes it as the source
// "runtime" of a target that mounts the agent, so SLAs can say
// last(runtime:go_sched_goroutines_goroutines) < 100.
type runtimeMetrics struct {
	once    sync.Once
	samples []metrics.Sample
	names   []string
	types   []string

	mu sync.Mutex // one reader of samples at a time
}

func (m *runtimeMetrics) init() {
	for _, d := range metrics.All() {
		if d.Kind != metrics.KindUint64 && d.Kind != metrics.KindFloat64 {
			continue
		}
		m.samples = append(m.samples, metrics.Sample{Name: d.Name})
		m.names = append(m.names, promName(d.Name))
		typ := "gauge"
		if d.Cumulative {
			typ = "counter"
		}
		m.types = append(m.types, typ)
	}
}

// promName turns "/gc/heap/allocs:bytes" into "go_gc_heap_allocs_bytes",
// the convention client_golang's Go collector uses.
func promName(name string) string {
	var b strings.Builder
	b.WriteString("go")
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return strings.ReplaceAll(b.String(), "__", "_")
}

func (m *runtimeMetrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	m.once.Do(m.init)
	m.mu.Lock()
	defer m.mu.Unlock()
	metrics.Read(m.samples)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	for i, s := range m.samples {
		var v string
		switch s.Value.Kind() {
		case metrics.KindUint64:
			v = strconv.FormatUint(s.Value.Uint64(), 10)
		case metrics.KindFloat64:
			v = strconv.FormatFloat(s.Value.Float64(), 'g', -1, 64)
		default:
			continue // not supported by this Go version
		}
		bw.WriteString("# TYPE " + m.names[i] + " " + m.types[i] + "\n")
		bw.WriteString(m.names[i] + " " + v + "\n")
	}
	_ = bw.Flush()
}

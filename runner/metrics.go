package runner

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/scrape"
	"github.com/resctl/resctl/verify"
)

// scrapeEndpoints resolves the scenario's endpoints to URLs. Without any,
// every proxy's own metrics (under its name) and the target's are read,
// the target's as optional: many services serve no /metrics.
func scrapeEndpoints(s *scenario.Scenario, proxies *proxySet, targetURL, agentURL string) []scrape.Endpoint {
	eps := s.Scrape.Endpoints
	implicit := len(eps) == 0
	if implicit {
		eps = map[string]string{"target": scenario.EndpointTarget}
		for _, pr := range proxies.list {
			eps[pr.Name] = scenario.EndpointProxy + pr.Name
		}
		// A target that mounts resctl's agent also serves its
		// runtime/metrics readings there.
		if agentURL != "" {
			eps[scenario.SourceRuntime] = strings.TrimSuffix(agentURL, "/") + "/metrics"
		}
	}
	var out []scrape.Endpoint
	for _, name := range slices.Sorted(maps.Keys(eps)) {
		ep := scrape.Endpoint{Name: name, URL: eps[name]}
		switch eps[name] {
		case scenario.EndpointSelf:
			ep.URL = proxies.metricsURL(scenario.MainProxy)
		case scenario.EndpointTarget:
			ep.URL = strings.TrimSuffix(targetURL, "/") + "/metrics"
			// A target without /metrics is only worth a warning, unless
			// an SLA reads it: then its failures are gaps like any other.
			ep.Optional = implicit && !readsSource(s, name)
		default:
			if pname, ok := strings.CutPrefix(eps[name], scenario.EndpointProxy); ok {
				ep.URL = proxies.metricsURL(pname)
				break
			}
			ep.Optional = implicit && !readsSource(s, name)
		}
		out = append(out, ep)
	}
	return out
}

// keptMetrics are the scraped series every report keeps, whatever SLAs and
// panels ask for: the runtime signals of Go processes and the proxy's,
// faults', upstreams' and guard policies' own (keptPrefix), and those an
// SLA reads (readBySLA). Everything else scraped is dropped, so report.json
// stays small on long runs.
var keptMetrics = map[string]bool{
	"go_goroutines":                               true,
	"go_memstats_heap_inuse_bytes":                true,
	"process_resident_memory_bytes":               true,
	"process_cpu_seconds_total":                   true,
	"resctl_proxy_requests_total":                 true,
	"resctl_proxy_in_flight_requests":             true,
	"resctl_fault_injected_total":                 true,
	"resctl_fault_matched_total":                  true,
	"resctl_proxy_request_duration_seconds_count": true,
	"resctl_proxy_grpc_calls_total":               true,
	"resctl_proxy_upstream_requests_total":        true,
	"resctl_proxy_upstream_ejected":               true,
}

// keptPrefix keeps every guard policy's series but histogram buckets, a
// handful per policy.
const keptPrefix = "resctl_guard_"

func kept(name string) bool {
	return keptMetrics[name] || (strings.HasPrefix(name, keptPrefix) && !strings.HasSuffix(name, "_bucket"))
}

// defaultPanels chart the target's goroutines and heap.
var defaultPanels = []string{"target:go_goroutines", "target:go_memstats_heap_inuse_bytes"}

// panelsOf are the panels a scenario's report charts.
func panelsOf(s *scenario.Scenario) []string {
	if len(s.Scrape.Panels) == 0 {
		return defaultPanels
	}
	return s.Scrape.Panels
}

// keepSeries is scrape.Options.Keep for a run: the series its report keeps
// (kept, readBySLA) and those its panels chart. The scraper drops the
// rest as it parses them, so a long run does not hold, second by second,
// series nothing will read.
func keepSeries(s *scenario.Scenario) func(source, name string) bool {
	read := readBySLA(s)
	charted := map[[2]string]bool{}
	for _, p := range panelsOf(s) {
		source, metric, _ := strings.Cut(p, ":")
		charted[[2]string{source, metric}] = true
	}
	return func(source, name string) bool {
		return kept(name) || charted[[2]string{source, name}] || read(scrape.Series{Source: source, Name: name})
	}
}

func toReportSeries(s scrape.Series) report.MetricSeries {
	ms := report.MetricSeries{Source: s.Source, Name: s.Name, Labels: s.Labels, Type: s.Type, Points: make([][2]float64, len(s.Points))}
	for i, p := range s.Points {
		ms.Points[i] = [2]float64{p.T.Seconds(), p.V}
	}
	return ms
}

// metricsReport fills the report's scraped series and panels — one for
// every selector an SLA reads, then the scenario's chosen panels (or the
// default ones) — and the scrape errors, and warns once about optional
// endpoints that never answered.
func metricsReport(r *report.Report, sc *scrape.Scraper, s *scenario.Scenario, progress io.Writer) {
	all := sc.Series()
	keep := readBySLA(s)
	for _, sr := range all {
		if kept(sr.Name) || keep(sr) {
			r.Metrics = append(r.Metrics, toReportSeries(sr))
		}
	}
	for _, sel := range slaSelectors(s) {
		panel := report.Panel{Title: sel.String(), Selector: sel.String(), Unit: unitOf(sel.Metric)}
		for _, sr := range all {
			if sel.Matches(sr.Source, sr.Name, sr.Labels) {
				panel.Series = append(panel.Series, toReportSeries(sr))
			}
		}
		r.Panels = append(r.Panels, panel)
	}
	for _, p := range panelsOf(s) {
		source, metric, _ := strings.Cut(p, ":")
		panel := report.Panel{Title: p, Unit: unitOf(metric)}
		for _, sr := range all {
			if sr.Source == source && sr.Name == metric {
				panel.Series = append(panel.Series, toReportSeries(sr))
			}
		}
		if len(panel.Series) > 0 && !charted(r.Panels, panel) {
			r.Panels = append(r.Panels, panel)
		}
	}
	warned := map[string]bool{}
	for _, f := range sc.Failures() {
		if f.Optional {
			if sc.Succeeded(f.Source) == 0 && !warned[f.Source] {
				warned[f.Source] = true
				fmt.Fprintf(progress, "resctl: warning: no metrics from %s (%s); SLAs on %s:… cannot be checked\n", f.Source, f.Err, f.Source)
			}
			continue
		}
		r.ScrapeErrors = append(r.ScrapeErrors, report.ScrapeError{Source: f.Source, AtS: report.Secs(f.At), Error: f.Err})
	}
}

// slaSelectors are the selectors the SLAs read, each once, in the order
// the SLAs name them; a histogram's buckets are left out, as a chart of
// them says nothing a reader could use.
func slaSelectors(s *scenario.Scenario) []verify.Selector {
	var out []verify.Selector
	seen := map[string]bool{}
	for _, sla := range s.SLAs {
		if sla.Expr == nil {
			continue
		}
		for _, sel := range sla.Expr.Selectors() {
			if k := sel.String(); !seen[k] && !strings.HasSuffix(sel.Metric, "_bucket") {
				seen[k] = true
				out = append(out, sel)
			}
		}
	}
	return out
}

// charted says whether a panel of the same series is already there.
func charted(panels []report.Panel, p report.Panel) bool {
	for _, q := range panels {
		if len(q.Series) != len(p.Series) {
			continue
		}
		same := true
		for i := range q.Series {
			a, b := q.Series[i], p.Series[i]
			if a.Source != b.Source || a.Name != b.Name || !maps.Equal(a.Labels, b.Labels) {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

func unitOf(metric string) string {
	switch {
	case strings.HasSuffix(metric, "_bytes"):
		return "bytes"
	case strings.HasSuffix(metric, "_seconds"):
		return "seconds"
	}
	return ""
}

// readBySLA says whether an SLA reads a series (its source and metric):
// the report keeps those too, so that report merge --coordinator can judge
// the SLA from it as this run did.
func readBySLA(s *scenario.Scenario) func(scrape.Series) bool {
	read := map[[2]string]bool{}
	for _, sla := range s.SLAs {
		if sla.Expr == nil {
			continue
		}
		for _, sel := range sla.Expr.Selectors() {
			read[[2]string{sel.Source, sel.Metric}] = true
		}
	}
	return func(sr scrape.Series) bool { return read[[2]string{sr.Source, sr.Name}] }
}

// readsSource reports whether any SLA reads a scraped series of source.
func readsSource(s *scenario.Scenario, source string) bool {
	for _, sla := range s.SLAs {
		if sla.Expr == nil {
			continue
		}
		for _, sel := range sla.Expr.Selectors() {
			if sel.Source == source {
				return true
			}
		}
	}
	return false
}

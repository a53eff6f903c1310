// Package scrape reads Prometheus endpoints on an interval into time
// series: the harness proxy's own metrics, the target's, and any other
// endpoint a scenario names. Text exposition and OpenMetrics are parsed with
// prometheus/common's expfmt; counters, gauges, histograms (as _bucket,
// _sum and _count series) and summaries (quantile, _sum, _count series) are
// kept as points with offsets from the run's start. A failed scrape is
// recorded as a gap with its error, never a crash. Series a run will not
// read are dropped as they are parsed (Options.Keep), and those kept hold
// their samples encoded, a byte or a few each, so a long run's memory grows
// little with its seconds.
//
// scrape imports nothing of resctl's; the runner feeds its series to the
// SLA evaluator and the reports.
package scrape

package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The HTML report is one self-contained file: the charts are SVG drawn
// here, the styles and the few lines of tooltip script are inline, and
// nothing refers to anything outside the file, so it opens offline, from a
// CI artifact or an e-mail attachment, years later.

//go:embed html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// WriteHTML writes the recovery report: the verdict, the timeline of
// throughput and latency with phases, faults and SLA instants marked, the
// guard policies' states, the scraped panels, and the SLA, phase and fault
// tables.
func WriteHTML(w io.Writer, r *Report) error {
	v, err := newHTMLView(r)
	if err != nil {
		return err
	}
	return htmlTemplate.Execute(w, v)
}

// htmlView is the report as the template draws it: every number already
// formatted, so the template only lays out.
type htmlView struct {
	Title        string
	Verdict      string
	VerdictClass string
	Scenario     string
	Meta         []metaItem
	Error        string
	Warnings     []string
	Failures     []failure
	SLAs         []slaRow
	Phases       []phaseRow
	HasFallbacks bool
	PhaseNames   []string
	ErrorReasons []ErrorReason
	Faults       []faultRow
	Strip        svgLanes
	Charts       []svgChart
	Guards       *svgLanes
	Processes    *svgLanes
	Panels       []svgChart
	ScrapeErrors []scrapeErrorRow
	TipJSON      template.JS
	Schema       string
	Version      string
}

type metaItem struct{ Key, Value string }

type slaRow struct {
	N        int
	Name     string
	Expect   string
	Scope    string
	Observed string
	Error    string
	Outcome  string // PASS, FAIL, NOT RUN, NOT EVALUATED
	Class    string // pass, fail, skip
	At       string // for timing SLAs: when detection or recovery happened
}

type phaseRow struct {
	Name, Time, Requests, RPS, Success, Errors, Fallbacks string
	P50, P90, P95, P99, Max, ServiceP99, Codes            string
	Total                                                 bool
}

type faultRow struct {
	ID, Kind, Phase, Window, Config string
	Matched, Injected               string
	Configured, Effective           string
	// Off says the effective rate is far from the configured one.
	Off bool
}

type scrapeErrorRow struct{ Source, At, Error string }

func newHTMLView(r *Report) (*htmlView, error) {
	verdict := r.Verdict()
	v := &htmlView{
		Title:        fmt.Sprintf("resctl · %s · %s", r.Scenario, verdict),
		Verdict:      string(verdict),
		VerdictClass: strings.ToLower(string(verdict)),
		Scenario:     r.Scenario,
		Error:        r.Error,
		Schema:       r.Schema,
		Version:      r.Version,
	}
	v.Meta = []metaItem{
		{"target", r.Target},
		{"duration", fmtSeconds(r.DurationS)},
		{"seed", strconv.FormatUint(r.Seed, 10)},
		{"started", r.StartedAt.UTC().Format(time.RFC3339)},
		{"requests sent", strconv.FormatUint(r.Run.Sent, 10)},
		{"resctl", r.Version},
	}
	if r.File != "" {
		v.Meta = append(v.Meta, metaItem{"scenario file", r.File})
	}
	if r.Aborted != "" {
		v.Warnings = append(v.Warnings, "Aborted: "+r.Aborted)
	}
	if r.Interrupted {
		v.Warnings = append(v.Warnings, "The run was interrupted before its last phase ended; the report holds what was recorded until then.")
	}
	if r.Reached != "" {
		v.Warnings = append(v.Warnings, "It stopped while "+r.Reached+".")
	}
	v.Warnings = append(v.Warnings, r.Warnings...)
	if r.Run.GeneratorBehind {
		v.Warnings = append(v.Warnings, "The load generator fell behind ("+r.Run.behind()+"), so the target saw a gentler load than the scenario asks for; latencies are response times, measured from when each request was due.")
	}
	if len(r.ScrapeErrors) > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d scrape(s) failed; the scraped panels have gaps (listed at the end).", len(r.ScrapeErrors)))
	}

	v.Failures = failures(r)
	for i, s := range r.SLAs {
		row := slaRow{N: i + 1, Name: s.Name, Expect: s.Expect, Scope: "whole run", Observed: s.Observed, Error: s.Error, Outcome: s.Outcome(), Class: "pass"}
		switch {
		case s.NotRun:
			row.Class, row.Observed = "skip", notRunText(s)
		case s.NotEvaluated != "":
			row.Class, row.Observed = "skip", s.NotEvaluated
		case !s.Passed:
			row.Class = "fail"
		}
		if s.During != "" {
			row.Scope = s.During
		}
		if s.AtS != nil {
			row.At = timingWord(s) + " at " + fmtSeconds(*s.AtS)
		} else if s.Kind == "time_to" || s.Kind == "recovery_time" {
			row.At = "never " + timingWord(s)
		}
		v.SLAs = append(v.SLAs, row)
	}

	for _, p := range r.Phases {
		v.HasFallbacks = v.HasFallbacks || p.Fallbacks > 0
		v.PhaseNames = append(v.PhaseNames, p.Name)
	}
	v.ErrorReasons = r.ErrorReasons
	for _, p := range append(append([]Phase{}, r.Phases...), r.Total) {
		v.Phases = append(v.Phases, newPhaseRow(p, p.Name == ""))
	}
	v.Phases[len(v.Phases)-1].Name = "total"

	for _, f := range r.Faults {
		start, end := faultWindow(r, f)
		cfg, err := json.Marshal(f.Config)
		if err != nil {
			return nil, fmt.Errorf("render fault %s config: %w", f.ID, err)
		}
		if f.NotRun {
			v.Faults = append(v.Faults, faultRow{ID: f.ID, Kind: f.Kind, Phase: f.Phase, Window: "not run", Config: string(cfg),
				Matched: "–", Injected: "–", Configured: "–", Effective: "–"})
			continue
		}
		v.Faults = append(v.Faults, faultRow{
			ID: f.ID, Kind: f.Kind, Phase: f.Phase, Window: fmtSeconds(start) + " – " + fmtSeconds(end), Config: string(cfg),
			Matched: strconv.FormatUint(f.Matched, 10), Injected: strconv.FormatUint(f.Injected, 10),
			Configured: pctText(f.ConfiguredRate), Effective: pctText(f.EffectiveRate),
			Off: f.Matched >= 100 && math.Abs(f.EffectiveRate-f.ConfiguredRate) > 0.1,
		})
	}

	tl := newTimeline(r)
	tips := &tipData{W: chartW, X0: plotX0, PW: plotW, End: tl.ax.end, Charts: map[string]*tipChart{}}
	v.Strip = tl.stripLanes(r)
	v.Charts = []svgChart{tl.throughputChart(r, tips)}
	if c := tl.ratioChart(r, tips); c != nil {
		v.Charts = append(v.Charts, *c)
	}
	v.Charts = append(v.Charts, tl.latencyChart(r, tips))
	v.Guards = tl.stateLanes(r, "guard")
	v.Processes = tl.stateLanes(r, "process")
	panels := r.Panels
	if len(panels) == 0 {
		panels = DefaultPanels(r.Metrics)
	}
	for i, p := range panels {
		v.Panels = append(v.Panels, tl.panelChart(r, p, "panel"+strconv.Itoa(i), tips))
	}
	for _, e := range r.ScrapeErrors {
		v.ScrapeErrors = append(v.ScrapeErrors, scrapeErrorRow{Source: e.Source, At: fmtSeconds(e.AtS), Error: e.Error})
	}
	tj, err := json.Marshal(tips)
	if err != nil {
		return nil, fmt.Errorf("render chart data: %w", err)
	}
	// json.Marshal escapes <, > and &, so the data cannot close its script
	// element.
	v.TipJSON = template.JS(tj)
	return v, nil
}

func newPhaseRow(p Phase, total bool) phaseRow {
	if p.NotRun {
		return phaseRow{Name: p.Name, Time: "not run"}
	}
	row := phaseRow{
		Name: p.Name, Time: fmtOffsetRange(p.StartS, p.EndS), Requests: strconv.FormatUint(p.Requests, 10),
		RPS: strconv.FormatFloat(p.RPS, 'f', 1, 64), Success: pct(p.SuccessRate, p.Requests),
		Errors: strconv.FormatUint(p.Errors, 10), Fallbacks: strconv.FormatUint(p.Fallbacks, 10),
		P50: ms(p.LatencyMs.P50, p.Requests), P90: ms(p.LatencyMs.P90, p.Requests), P95: ms(p.LatencyMs.P95, p.Requests),
		P99: ms(p.LatencyMs.P99, p.Requests), Max: ms(p.LatencyMs.Max, p.Requests), ServiceP99: serviceP99(p), Total: total,
	}
	codes := make([]string, 0, len(p.Codes))
	for c := range p.Codes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for i, c := range codes {
		codes[i] = c + "×" + strconv.FormatUint(p.Codes[c], 10)
	}
	row.Codes = strings.Join(codes, " ")
	return row
}

func fmtOffsetRange(a, b float64) string {
	return trimZeros(strconv.FormatFloat(a, 'f', 1, 64)) + "–" + trimZeros(strconv.FormatFloat(b, 'f', 1, 64)) + "s"
}

// pctText writes a rate of 0..1 as a percentage with up to one decimal.
func pctText(v float64) string {
	return trimZeros(strconv.FormatFloat(v*100, 'f', 1, 64)) + "%"
}

// serviceP99 is a phase's service-time p99, or a dash where the report
// has none (a report from before resctl kept it).
func serviceP99(p Phase) string {
	if p.ServiceMs == nil {
		return "–"
	}
	return ms(p.ServiceMs.P99, p.Requests)
}

package session

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/internal/sysinfo"
	"github.com/resctl/resctl/internal/version"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/runner"
)

// BuildReport is the session so far as a recovery report: the stretch
// that `save` keeps, cut into the same phases, with the session load's
// results, the faults with what they did, and the event log. It has no
// SLAs: a session proposes them in the scenario it saves. What a run's
// report has and a session has not — a scenario file, SLAs, scraped
// metrics, processes, guard states an SLA reads — stays empty.
func (s *Session) BuildReport() (*report.Report, error) {
	window, cuts, err := s.timeline()
	if err != nil {
		return nil, err
	}
	w0 := window[0]
	snap := s.rec.Snapshot()
	rec := &record.Recording{Start: s.start.Add(w0), Total: s.rec.Window(window[0], window[1])}
	for _, c := range cuts {
		rec.Phases = append(rec.Phases, record.PhaseSpan{Name: c.Name, Start: c.From - w0, End: c.To - w0})
		rec.PhaseStats = append(rec.PhaseStats, s.rec.Window(c.From, c.To))
	}
	from, to := int(w0/time.Second), int(window[1]/time.Second)
	for i := from; i < to; i++ {
		if i < len(snap.Seconds) {
			rec.Seconds = append(rec.Seconds, snap.Seconds[i])
		} else {
			rec.Seconds = append(rec.Seconds, record.Summary{})
		}
	}
	span := window[1] - w0
	r := runner.RecordingReport(rec, span)
	r.Scenario = "chaos session"
	r.Session = true
	r.Target = s.opts.Target
	if r.Target == "" {
		for _, p := range s.Proxies() {
			if p.Name == s.opts.Front {
				r.Target = p.Upstream
			}
		}
	}
	r.Seed = s.opts.Seed
	r.Version = version.String()
	r.DurationS = span.Seconds()
	r.Run = s.runResources(window, snap.Total.Lag.P99)
	layers := map[string]string{}
	for _, p := range s.Proxies() {
		layers[p.Name] = string(inject.LayerOfProtocol(p.Protocol))
	}
	for _, f := range s.Faults() {
		off := f.Off
		if f.Active() {
			off = window[1]
		}
		if off <= w0 || f.On >= window[1] {
			continue
		}
		phase := ""
		for _, c := range cuts {
			if slices.ContainsFunc(c.Faults, func(x FaultSpan) bool { return x.Proxy == f.Proxy && x.ID == f.ID && x.On == f.On }) {
				phase = c.Name
				break
			}
		}
		out := report.Fault{
			ID: f.ID, Kind: f.Kind, Proxy: f.Proxy, Phase: phase, Config: cleanParams(f.Params),
			Matched: f.Matched, Injected: f.Injected, ConfiguredRate: f.ConfiguredRate,
			Fired: f.Injected > 0, Layer: layers[f.Proxy],
			StartS: report.Secs(max(f.On-w0, 0)), EndS: report.Secs(min(off, window[1]) - w0),
		}
		if f.Matched > 0 {
			out.EffectiveRate = float64(f.Injected) / float64(f.Matched)
		}
		if f.Runtime {
			// As in a run: a runtime fault acts on the whole process,
			// and one the agent started did.
			out.Proxy, out.Layer, out.Fired = "", "runtime", true
			out.ConfiguredRate, out.EffectiveRate = 1, 1
		}
		r.Faults = append(r.Faults, out)
	}
	s.mu.Lock()
	for _, e := range s.events {
		at := time.Duration(e.AtS*float64(time.Second)) - w0
		if at < 0 || at > span {
			continue
		}
		e.AtS = report.Secs(at)
		r.Events = append(r.Events, e)
	}
	s.mu.Unlock()
	return r, nil
}

// runResources is what the session's load did over the report's window,
// as a run's report gives it: the load generator's counts, less the
// requests the recording holds outside the window (cut at whole
// seconds), so that what was sent is what the phases count; and whether
// the generator fell behind, by a run's rules. lagP99 is how late the
// session's requests went out.
func (s *Session) runResources(window [2]time.Duration, lagP99 time.Duration) report.RunResources {
	s.mu.Lock()
	now := s.elapsed()
	var run report.RunResources
	running := false
	for _, l := range s.loads {
		if l.Done {
			run.Sent += l.Sent
			run.Dropped += l.Dropped
			run.Scheduled += l.Scheduled
			continue
		}
		// A running load gives its counts when it ends: so far, what
		// the recording holds of it and what its schedule asked for.
		running = true
		so := s.rec.Window(l.On.Truncate(time.Second), MaxDuration)
		run.Sent += so.Requests - so.Dropped
		run.Dropped += so.Dropped
		run.Scheduled += uint64(math.Ceil(l.Rate * min(now-l.On, l.Planned).Seconds()))
	}
	s.mu.Unlock()
	for _, out := range []record.Summary{s.rec.Window(0, window[0]), s.rec.Window(window[1], MaxDuration)} {
		run.Sent -= min(out.Requests-out.Dropped, run.Sent)
		run.Dropped -= min(out.Dropped, run.Dropped)
		run.Scheduled -= min(out.Requests, run.Scheduled)
	}
	run.PeakRSSBytes = sysinfo.PeakRSS()
	// A running load's requests in flight are not counted yet.
	run.JudgeGenerator(lagP99, !running)
	return run
}

// Report writes the session's report to path; the format follows the
// extension: .html, .json, .md or .xml (JUnit).
func (s *Session) Report(path string) error {
	f, err := formatOf(path)
	if err != nil {
		return err
	}
	r, err := s.BuildReport()
	if err != nil {
		return err
	}
	return report.WriteFile(path, f, r)
}

func formatOf(path string) (report.Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		return report.FormatHTML, nil
	case ".json":
		return report.FormatJSON, nil
	case ".md":
		return report.FormatMarkdown, nil
	case ".xml":
		return report.FormatJUnit, nil
	}
	return "", &ParseError{Msg: fmt.Sprintf("report %s: name the file .html, .json, .md or .xml", path)}
}

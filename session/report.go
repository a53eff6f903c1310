package session

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/runner"
)

// BuildReport is the session so far as a recovery report: the stretch
// that `save` keeps, cut into the same phases, with the session load's
// results, the faults with what they did, and the event log. It has no
// SLAs: a session proposes them in the scenario it saves.
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
	r.DurationS = span.Seconds()
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
		layer := ""
		if f.Runtime {
			layer = "runtime"
		}
		r.Faults = append(r.Faults, report.Fault{
			ID: f.ID, Kind: f.Kind, Proxy: f.Proxy, Phase: phase, Config: cleanParams(f.Params),
			Matched: f.Matched, Injected: f.Injected, Fired: f.Injected > 0 || f.Runtime, Layer: layer,
			StartS: report.Secs(max(f.On-w0, 0)), EndS: report.Secs(min(off, window[1]) - w0),
		})
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

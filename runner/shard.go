package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/resctl/resctl/internal/sysinfo"
	"github.com/resctl/resctl/internal/version"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/scrape"
)

// Shard is one of N machines sharing a scenario's load: shard Index of
// Count sends every Count-th request of the schedule, so the shards
// together send it exactly, interleaved.
type Shard struct{ Index, Count int }

// ParseShard reads "i/N", 1 ≤ i ≤ N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want i/N with 1 ≤ i ≤ N, e.g. 2/4", s)
	}
	return Shard{i, n}, nil
}

// LoadOptions configure a load-only run, one shard of a distributed one.
type LoadOptions struct {
	Shard Shard
	// StartAt, when set, is the shared instant every shard starts its
	// schedule at, so the phases line up across machines.
	StartAt time.Time
	// Target is where the load goes; default the scenario's target.url.
	Target string
	// Results is the file every result is streamed to (required: it is
	// what `resctl report merge` combines).
	Results  string
	Progress io.Writer
}

// RunLoad sends one shard's part of the scenario's load to the target and
// saves its results. It starts nothing and injects nothing: the target,
// its proxy and the faults are run elsewhere (one `resctl run`, or
// `resctl proxy` with `resctl inject`), and the shards' results are
// combined afterwards with Merge. The report covers this shard only.
func RunLoad(ctx context.Context, s *scenario.Scenario, opts LoadOptions) (*report.Report, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	target := opts.Target
	if target == "" {
		target = s.Target.URL
	}
	if s.Load.GRPC != nil && !strings.Contains(target, "://") {
		target = "http://" + target // gRPC load takes host:port as well
	}
	if u, err := url.Parse(target); err != nil || u.Host == "" {
		return nil, fmt.Errorf("load: give --target URL: the scenario's target %q is not a URL a shard can reach", target)
	}
	if opts.Results == "" {
		return nil, errors.New("load: give --save-results FILE: the shards' results are what resctl report merge combines")
	}
	n := max(opts.Shard.Count, 1)
	results, err := load.CreateResultsFile(opts.Results)
	if err != nil {
		return nil, err
	}
	defer results.Close()

	plan := newPlan(s)
	pacer := load.NewPacer(plan.steps).Shard(opts.Shard.Index, n)
	if !opts.StartAt.IsZero() {
		wait := time.Until(opts.StartAt)
		fmt.Fprintf(progress, "resctl: shard %d/%d: starting at %s (in %s)\n", opts.Shard.Index, n, opts.StartAt.Format(time.RFC3339), wait.Round(time.Second))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("shard %d/%d before its start: %w", opts.Shard.Index, n, ErrInterrupted)
		}
	}
	// The schedule counts from the shared start, so a shard that got
	// going late sends late — and its lag shows it — rather than shifting
	// its phases against the others'.
	start := time.Now()
	if !opts.StartAt.IsZero() {
		if late := start.Sub(opts.StartAt); late > time.Second {
			fmt.Fprintf(progress, "resctl: warning: shard %d/%d started %s after --start-at; its first requests go out late\n", opts.Shard.Index, n, late.Round(time.Millisecond))
		}
		start = opts.StartAt
	}
	rec := record.NewRecorder(start, plan.spans, s.Load.Timeout)
	part := "all of the load"
	if n > 1 {
		part = "every " + ordinal(n) + " request of the load"
	}
	fmt.Fprintf(progress, "resctl: shard %d/%d of %s: %s to %s for %s\n", opts.Shard.Index, n, s.Name, part, target, s.Duration())
	stats, loadErr := sendLoad(ctx, s, target, pacer, start, rec, results, nil)
	if refusedLoad(loadErr) {
		return nil, loadErr // no report, as for Run
	}
	closeErr := results.Close()
	elapsed := time.Since(start)
	snap := rec.Snapshot()
	r := loadReport(s, target, rec, snap, plan.spans, min(elapsed, s.Duration()), evidence{missing: shardMissing})
	r.Shard = fmt.Sprintf("%d/%d", opts.Shard.Index, n)
	if n > 1 {
		// A rate, a count or a latency over one shard's share is not the
		// scenario's: its SLAs are judged once, over every shard's load.
		for i, sla := range r.SLAs {
			if !sla.NotRun && sla.NotEvaluated == "" {
				r.SLAs[i] = report.SLA{Name: sla.Name, Expect: sla.Expect, During: sla.During, Kind: sla.Kind,
					NotEvaluated: fmt.Sprintf(shardShare, n)}
			}
		}
		r.Passed = true
	}
	r.DurationS = elapsed.Seconds()
	r.Run = report.RunResources{Sent: stats.Sent, Dropped: stats.Dropped, Scheduled: stats.Scheduled, PeakRSSBytes: sysinfo.PeakRSS()}
	r.Run.JudgeGenerator(snap.Total.Lag.P99, true)
	switch {
	case loadErr != nil:
		r.Passed, r.Error = false, loadErr.Error()
		return r, loadErr
	case stats.Interrupted:
		r.Passed, r.Interrupted = false, true
		return r, fmt.Errorf("shard %d/%d after %.1fs: %w", opts.Shard.Index, n, elapsed.Seconds(), ErrInterrupted)
	case closeErr != nil:
		return r, closeErr
	}
	return r, nil
}

// ErrOtherScenario is returned (wrapped) by Merge for a coordinator report
// of another scenario than the one merged.
var ErrOtherScenario = errors.New("the coordinator's report is of another scenario")

// ErrSameShard is returned (wrapped) by Merge for two files of one
// shard's results: the same file twice, or a copy of it.
var ErrSameShard = errors.New("one shard's results given twice")

// Why SLAs over scraped metrics and states are not evaluated in reports of
// load results alone.
const (
	shardMissing = "a shard's report holds its own load only; the coordinating run judges scraped metrics and fault and guard states (or resctl report merge --coordinator)"
	shardShare   = "a shard sends 1/%d of the load; resctl report merge judges every SLA over all the shards' results"
	mergeMissing = "results files hold the load only: give resctl report merge --coordinator with the report.json of the run that scraped the metrics and ran the faults"
)

// Merge combines the results files of a distributed run's shards into one
// report, with the scenario's phases and its SLAs over the load series.
// start is the shards' shared start; zero takes the earliest result's.
// coord, if set, is the report of the coordinating run
// (resctl run), whose scraped series and fault and guard states join the
// shards' load, so that every SLA is judged on the combined evidence;
// without it, SLAs that read them are not evaluated. A coordinator report
// of another scenario is ErrOtherScenario.
func Merge(s *scenario.Scenario, files []string, start time.Time, coord *report.Report) (*report.Report, error) {
	ev := evidence{missing: mergeMissing}
	if coord != nil {
		if coord.Scenario != s.Name {
			return nil, fmt.Errorf("merge: %w: it ran %q, the results are of %q", ErrOtherScenario, coord.Scenario, s.Name)
		}
	}
	var all []vegeta.Result
	var due []time.Time // when each result was due, where its file says
	// A shard's file given twice, or a copy of it beside it (a stale
	// shard-*.bin), would count its requests twice. No two shards send
	// the same hit, so two files whose first results are one hit are one
	// shard.
	firsts := map[string]string{}
	for _, f := range files {
		rs, err := load.ReadResults(f)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if len(rs) == 0 {
			continue // a shard stopped before its first request
		}
		ds := load.DueTimes(rs)
		first := fmt.Sprintf("%d %s %s", rs[0].Seq, rs[0].Timestamp.UTC().Format(time.RFC3339Nano), ds[0].UTC().Format(time.RFC3339Nano))
		if other, ok := firsts[first]; ok {
			return nil, fmt.Errorf("merge: %w: %s and %s hold the same shard's results", ErrSameShard, other, f)
		}
		firsts[first] = f
		all = append(all, rs...)
		due = append(due, ds...)
	}
	if len(all) == 0 {
		return nil, errors.New("merge: the results files hold no results")
	}
	if start.IsZero() {
		start = all[0].Timestamp
		for _, r := range all {
			if r.Timestamp.Before(start) {
				start = r.Timestamp
			}
		}
	}
	if coord != nil {
		ev = coordinatorEvidence(s, coord, start)
	}
	plan := newPlan(s)
	// Results may have arrived up to the load timeout after their send;
	// the recorder keeps buckets open that long only when told.
	rec := record.NewRecorder(start, plan.spans, s.Load.Timeout+s.Duration())
	var end, last time.Duration
	for i, r := range all {
		rec.Add(record.Result{
			Sent:     r.Timestamp,
			Intended: due[i],
			Latency:  r.Latency,
			Code:     int(r.Code),
			Failed:   r.Error != "",
			Reason:   load.ReasonOf(int(r.Code), r.Error),
			Dropped:  load.IsDropped(r.Error),
			Fallback: r.Error == "" && r.Headers.Get(load.FallbackHeader) != "",
		})
		end = max(end, r.Timestamp.Sub(start))
		last = max(last, r.End().Sub(start))
	}
	snap := rec.Snapshot()
	r := loadReport(s, "merged from "+strconv.Itoa(len(files))+" results files", rec, snap, plan.spans, min(s.Duration(), end+time.Second), ev)
	if coord != nil {
		r.Guards = coord.Guards
	}
	r.Run = report.RunResources{Sent: uint64(len(all))}
	// From the start to the end of the last response.
	r.DurationS = last.Seconds()
	return r, nil
}

// evidence is what SLAs read besides the load: scraped series and the
// states of faults and guards, or why there are none.
type evidence struct {
	series  []scrape.Series
	states  map[stateKey][]stateChange
	initial map[stateKey]string
	missing string
}

// coordinatorEvidence takes the scraped series and the fault and guard
// states of the coordinating run's report, timed from start.
func coordinatorEvidence(s *scenario.Scenario, c *report.Report, start time.Time) evidence {
	shift := c.StartedAt.Sub(start)
	at := func(sec float64) time.Duration { return time.Duration(sec*float64(time.Second)) + shift }
	ev := evidence{states: map[stateKey][]stateChange{}, initial: map[stateKey]string{}}
	for _, m := range c.Metrics {
		sr := scrape.Series{Source: m.Source, Name: m.Name, Labels: m.Labels, Type: m.Type}
		for _, p := range m.Points {
			sr.Points = append(sr.Points, scrape.Point{T: at(p[0]), V: p[1]})
		}
		ev.series = append(ev.series, sr)
	}
	// Every fault of the scenario is a state, off until the coordinator
	// switched it on.
	for _, ph := range s.Phases {
		for _, f := range ph.Faults {
			ev.states[stateKey{"fault", f.ID}] = nil
		}
	}
	for _, f := range c.Faults {
		k := stateKey{"fault", f.ID}
		if f.EndS > f.StartS {
			ev.states[k] = append(ev.states[k], stateChange{at(f.StartS), "on"}, stateChange{at(f.EndS), "off"})
		}
	}
	// Every guard policy is a state; the coordinator's events say how it
	// changed, and its guards (or, from an older resctl, its first
	// change) what it was before.
	for _, np := range s.AllProxies() {
		chain := slices.Clone(np.Guard)
		for _, rt := range np.Routes {
			chain = append(chain, rt.Guard...)
		}
		for _, p := range chain {
			ev.states[stateKey{p.Kind(), p.Name}] = nil
		}
	}
	for _, g := range c.Guards {
		ev.initial[stateKey{g.Kind, g.Name}] = g.Initial
	}
	for _, e := range c.Events {
		if e.Source != "guard" || e.Kind != "transition" {
			continue
		}
		kind, _, _ := strings.Cut(e.Detail, " ")
		k := stateKey{kind, e.Name}
		if len(ev.states[k]) == 0 && e.From != "" {
			ev.initial[k] = e.From
		}
		ev.states[k] = append(ev.states[k], stateChange{at(e.AtS), e.To})
	}
	return ev
}

// loadReport is a report of the load, with what evidence there is besides:
// phases, series and the SLAs, evaluated over what was recorded.
func loadReport(s *scenario.Scenario, target string, rec *record.Recorder, snap *record.Recording, spans []record.PhaseSpan, runEnd time.Duration, ev evidence) *report.Report {
	if ev.states == nil {
		ev.states = map[stateKey][]stateChange{}
	}
	env := newRunEnv(rec, snap, spans, runEnd, ev.series, ev.states)
	env.initial, env.missing = ev.initial, ev.missing
	r := buildReport(s, target, snap, env, &proxySet{}, nil, runEnd)
	r.Version = version.String()
	return r
}

// ordinal is "2nd", "3rd", "4th"… for a shard count above one.
func ordinal(n int) string {
	switch {
	case n%10 == 2 && n%100 != 12:
		return fmt.Sprintf("%dnd", n)
	case n%10 == 3 && n%100 != 13:
		return fmt.Sprintf("%drd", n)
	}
	return fmt.Sprintf("%dth", n)
}

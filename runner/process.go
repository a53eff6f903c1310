package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject/process"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/service"
	"github.com/resctl/resctl/verify"
)

// processSet is every process the run started that process faults may
// act on, by name, with the history of their states.
type processSet struct {
	mu    sync.Mutex
	names []string // in the order they were started
	inst  map[string]*service.Instance
	// start is the run's time zero, once the load begins; states before
	// it make a process's initial state.
	start   time.Time
	state   map[string]service.State
	initial map[string]string
	changes map[string][]stateChange
	events  []record.Event
	// groups are the services with replicas, each with its instances'
	// names; cursor is where the next pick among them starts.
	groups map[string][]string
	cursor map[string]int
}

func newProcessSet() *processSet {
	return &processSet{inst: map[string]*service.Instance{}, state: map[string]service.State{},
		initial: map[string]string{}, changes: map[string][]stateChange{}, groups: map[string][]string{}, cursor: map[string]int{}}
}

// add makes a started process one that faults may name, and follows its
// states.
func (ps *processSet) add(name string, in *service.Instance) {
	ps.mu.Lock()
	ps.names = append(ps.names, name)
	ps.inst[name] = in
	ps.state[name] = in.State()
	ps.mu.Unlock()
	in.OnState(func(s service.State) { ps.changed(name, s) })
}

func (ps *processSet) changed(name string, s service.State) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	from := ps.state[name]
	ps.state[name] = s
	if ps.start.IsZero() {
		return
	}
	at := time.Since(ps.start)
	ps.changes[name] = append(ps.changes[name], stateChange{at, string(s)})
	ps.events = append(ps.events, record.Event{At: at, Source: "process", Kind: "transition", Name: name, From: string(from), To: string(s)})
}

// begin marks the run's time zero: each process's state then is its
// initial one.
func (ps *processSet) begin(start time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.start = start
	for name, s := range ps.state {
		ps.initial[name] = string(s)
	}
}

// group makes name stand for several instances: a service's replicas.
func (ps *processSet) group(name string, instances []string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.groups[name] = instances
}

// namedInstance is a process with its name.
type namedInstance struct {
	name string
	in   *service.Instance
}

// pick chooses the processes one action of a fault on name takes: the
// one it names, or the share of a service's instances its schedule says.
// Kill and pause take instances that are ready, the next ones each time;
// a rolling restart (all) takes every instance in order.
func (ps *processSet) pick(name string, w process.Schedule, all bool) []namedInstance {
	// An instance's state is read without ps.mu: an instance tells its
	// changes to ps with its own lock held.
	ps.mu.Lock()
	members, ok := ps.groups[name]
	if !ok {
		members = []string{name}
	}
	from := ps.cursor[name]
	var candidates []namedInstance
	for i := range members {
		m := members[(from+i)%len(members)]
		if in := ps.inst[m]; in != nil {
			candidates = append(candidates, namedInstance{m, in})
		}
	}
	k := w.Instances(len(members), all)
	ps.cursor[name] += k
	ps.mu.Unlock()
	if !ok {
		return candidates
	}
	var out []namedInstance
	for _, c := range candidates {
		if len(out) == k {
			break
		}
		if all || c.in.State() == service.StateReady {
			out = append(out, c)
		}
	}
	return out
}

// has says whether name is a process or a service with replicas, and
// whether it (or one of its instances) is ready.
func (ps *processSet) has(name string) (known, ready bool) {
	ps.mu.Lock()
	members, ok := ps.groups[name]
	if !ok {
		members = []string{name}
	}
	var ins []*service.Instance
	for _, m := range members {
		if in := ps.inst[m]; in != nil {
			ins = append(ins, in)
		}
	}
	ps.mu.Unlock()
	for _, in := range ins {
		ready = ready || in.State() == service.StateReady
	}
	return len(ins) > 0, ready
}

// all names every process, in the order they started.
func (ps *processSet) all() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Clone(ps.names)
}

// list describes every process for the admin API.
func (ps *processSet) list() []harness.ProcessInfo {
	ps.mu.Lock()
	names, inst := slices.Clone(ps.names), maps.Clone(ps.inst)
	ps.mu.Unlock()
	out := make([]harness.ProcessInfo, len(names))
	for i, name := range names {
		in := inst[name]
		out[i] = harness.ProcessInfo{Name: name, State: string(in.State()), Restarts: in.Restarts()}
		if p := in.Process(); p != nil {
			out[i].Pid = p.Pid()
		}
	}
	return out
}

// rollback continues every paused process: run when the run ends,
// however it ends, before the processes are stopped.
func (ps *processSet) rollback() {
	ps.mu.Lock()
	all := slices.Collect(maps.Values(ps.inst))
	ps.mu.Unlock()
	for _, in := range all {
		_ = in.Continue()
	}
}

// snapshot returns the processes' transitions as events and states.
func (ps *processSet) snapshot() ([]record.Event, map[stateKey][]stateChange, map[stateKey]string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	states := map[stateKey][]stateChange{}
	initial := map[stateKey]string{}
	for _, name := range ps.names {
		k := stateKey{scenario.ProcessStateKind, name}
		states[k] = slices.Clone(ps.changes[name])
		initial[k] = ps.initial[name]
	}
	return slices.Clone(ps.events), states, initial
}

// report describes each process for the report: its restarts, how long
// each start took to be ready, how long it was not ready during the run.
func (ps *processSet) report() []report.Process {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []report.Process
	for _, name := range ps.names {
		in := ps.inst[name]
		p := report.Process{Name: name, Restarts: in.Restarts(), State: string(ps.state[name])}
		for _, d := range in.ReadyTimes() {
			p.ReadyS = append(p.ReadyS, report.Secs(d))
		}
		// Time not ready, from the run's transitions.
		state, since := ps.initial[name], time.Duration(0)
		var notReady time.Duration
		for _, c := range ps.changes[name] {
			if state != string(service.StateReady) {
				notReady += c.at - since
			}
			state, since = c.state, c.at
		}
		if state != string(service.StateReady) && !ps.start.IsZero() {
			notReady += time.Since(ps.start) - since
		}
		p.NotReadyS = report.Secs(notReady)
		out = append(out, p)
	}
	return out
}

// needsProcess says whether a process fault of the scenario names name.
func needsProcess(s *scenario.Scenario, name string) bool {
	for _, ph := range s.Phases {
		for _, f := range ph.Faults {
			if f.Process != nil && f.Process.Target() == name {
				return true
			}
		}
	}
	return false
}

// processFault is a process fault the clock carried out, for the report.
type processFault struct {
	phase    string
	kind     string
	params   map[string]any
	actions  uint64 // signals sent: kills, pauses, restarts
	planned  uint64
	errs     []string
	from, to time.Duration
	// down are the instances it killed and left down, to start again at
	// its phase's end.
	down []namedInstance
	// manual: sent through the admin API, not the scenario's.
	manual bool
	// first, if set, hears how the first action went: nil once it took
	// effect. Its one buffered slot keeps the first word; later ones
	// find it full and are dropped.
	first chan error
}

// tell reports how an action went to pf.first, if it is listening.
func (pf *processFault) tell(err error) {
	select {
	case pf.first <- err:
	default:
	}
}

// processActor carries out process faults, the scenario's on the
// clock's timeline and those sent through the admin API, each beside
// whatever sent it, since a kill waits for the process to exit and a
// restart for it to be ready. It implements harness.Processes.
type processActor struct {
	set      *processSet
	start    time.Time
	progress io.Writer
	event    func(source, kind, detail string)
	// ctx ends the actions' waits (stop, at the run's end); wg holds
	// them.
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	faults map[string]*processFault // by fault id
	manual int                      // actions sent through the API
	closed bool                     // settled: the API's actions are refused
}

func newProcessActor(ctx context.Context, set *processSet, start time.Time, progress io.Writer, event func(source, kind, detail string)) *processActor {
	a := &processActor{set: set, start: start, progress: progress, event: event, faults: map[string]*processFault{}}
	a.ctx, a.stop = context.WithCancel(ctx)
	return a
}

// schedule lays out a scenario's process fault's actions on the clock's
// timeline.
func (c *processActor) schedule(f plannedFault, span record.PhaseSpan) []action {
	pf := &processFault{phase: span.Name, kind: f.process.Kind(), params: f.params}
	c.mu.Lock()
	c.faults[f.id] = pf
	c.mu.Unlock()
	var acts []action
	for _, off := range f.process.When().Offsets(span.End - span.Start) {
		pf.planned++
		acts = append(acts, action{span.Start + off, func() {
			c.wg.Go(func() { c.act(f, pf) })
		}})
	}
	return acts
}

var _ harness.Processes = (*processActor)(nil)

// ProcessList implements harness.Processes.
func (c *processActor) ProcessList() []harness.ProcessInfo { return c.set.list() }

// Act implements harness.Processes: a process fault sent through the
// admin API, carried out as a scenario's is. A kill without restart
// leaves the process down until a restart through the API, or the end.
func (c *processActor) Act(spec process.Spec) error {
	_, rolling := spec.(*process.Restart)
	known, ready := c.set.has(spec.Target())
	switch {
	case !known:
		return fmt.Errorf("%w: %q; this run started %s", harness.ErrNoProcess, spec.Target(), strings.Join(c.set.all(), ", "))
	case !rolling && !ready:
		return fmt.Errorf("process %s is not ready: a %s needs it running", spec.Target(), spec.Kind())
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("the run is ending: its processes take no more faults")
	}
	c.manual++
	id := fmt.Sprintf("api/%s#%d", spec.Kind(), c.manual)
	// The answer waits for the action to take effect (the process down
	// or paused) or fail; what follows goes on beside.
	pf := &processFault{kind: spec.Kind(), planned: 1, manual: true, first: make(chan error, 1)}
	c.faults[id] = pf
	if k, ok := spec.(*process.Kill); ok && !k.Restart {
		k.StayDown = true
	}
	done := make(chan struct{})
	c.wg.Go(func() {
		defer close(done)
		c.act(plannedFault{id: id, process: spec}, pf)
	})
	c.mu.Unlock()
	if rolling {
		// A restart answers once the process is back, as a deploy's
		// tool does.
		select {
		case <-done:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(pf.errs) > 0 {
			return errors.New(pf.errs[0])
		}
		return nil
	}
	select {
	case err := <-pf.first:
		return err
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// processAct carries out one action of a process fault: on the process
// it names, or on some of a service's instances (percent) — killed or
// paused side by side, restarted one at a time, each ready before the
// next stops.
func (c *processActor) act(f plannedFault, pf *processFault) {
	fail := func(err error) {
		pf.tell(err)
		c.mu.Lock()
		pf.errs = append(pf.errs, err.Error())
		c.mu.Unlock()
		c.event("fault", "error", fmt.Sprintf("%s: %v", f.id, err))
		fmt.Fprintf(c.progress, "resctl: warning: %s: %v\n", f.id, err)
	}
	_, rolling := f.process.(*process.Restart)
	targets := c.set.pick(f.process.Target(), f.process.When(), rolling)
	if len(targets) == 0 {
		fail(fmt.Errorf("no instance of %q to act on (all down?)", f.process.Target()))
		return
	}
	// took marks the action taken, once, as its first process is down or
	// paused.
	var once sync.Once
	took := func() {
		pf.tell(nil)
		once.Do(func() {
			c.mu.Lock()
			pf.actions++
			if pf.actions == 1 {
				pf.from = time.Since(c.start)
			}
			pf.to = time.Since(c.start)
			c.mu.Unlock()
		})
	}
	say := func(kind, what string) {
		c.event("process", kind, what)
		fmt.Fprintf(c.progress, "resctl: %s: %s\n", f.id, what)
	}
	// over marks the end of an effect: a process continued, or ready
	// again.
	over := func(what string) {
		c.mu.Lock()
		pf.to = time.Since(c.start)
		c.mu.Unlock()
		c.event("process", "start", what)
	}
	ctx := c.ctx
	if rolling {
		spec := f.process.(*process.Restart)
		for _, t := range targets {
			// A process that is down (killed earlier) is only started;
			// one starting already is left to it.
			what := fmt.Sprintf("restarting %s: sent %s", t.name, spec.SignalName())
			switch t.in.State() {
			case service.StateStarting:
				fail(fmt.Errorf("%s is starting already: restart it once it is ready", t.name))
				return
			case service.StateDown:
				what = "starting " + t.name + ", which was down"
			default:
				if err := t.in.Kill(signals[spec.SignalName()], spec.GraceOrDefault()); err != nil {
					fail(err)
					return
				}
			}
			took()
			say("restart", what)
			if err := t.in.Start(ctx); err != nil {
				fail(fmt.Errorf("start %s again: %w", t.name, err))
				return // the next stays up: a deploy stops on a failed instance
			}
			over(t.name + ": started again (pid " + pidOf(t.in) + ")")
		}
		return
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			switch spec := f.process.(type) {
			case *process.Kill:
				pid := pidOf(t.in)
				if err := t.in.Kill(signals[spec.SignalName()], spec.GraceOrDefault()); err != nil {
					fail(err)
					return
				}
				took()
				say("kill", fmt.Sprintf("sent %s to %s (pid %s)", spec.SignalName(), t.name, pid))
				if !spec.Restart {
					if !spec.StayDown {
						c.mu.Lock()
						pf.down = append(pf.down, t)
						c.mu.Unlock()
					}
					return
				}
				if !sleepCtx(ctx, spec.RestartAfter) {
					return
				}
				if err := t.in.Start(ctx); err != nil {
					fail(fmt.Errorf("start %s again: %w", t.name, err))
					return
				}
				over(t.name + ": started again (pid " + pidOf(t.in) + ")")
			case *process.Pause:
				if err := t.in.Pause(); err != nil {
					fail(err)
					return
				}
				took()
				say("pause", fmt.Sprintf("paused %s (pid %s) for %s", t.name, pidOf(t.in), spec.Duration))
				sleepCtx(ctx, spec.Duration)
				if err := t.in.Continue(); err != nil {
					fail(err)
					return
				}
				over(t.name + ": continued")
			}
		})
	}
	wg.Wait()
}

// endProcessFault rolls a process fault back at its phase's end: what it
// killed and left down is started again (unless stay_down), beside the
// clock. A pause ends by itself within its phase.
func (c *processActor) end(f plannedFault) {
	c.mu.Lock()
	pf := c.faults[f.id]
	var down []namedInstance
	if pf != nil {
		down, pf.down = pf.down, nil
	}
	c.mu.Unlock()
	for _, t := range down {
		c.wg.Go(func() {
			if err := t.in.Start(c.ctx); err != nil && !errors.Is(err, context.Canceled) {
				c.event("fault", "error", fmt.Sprintf("%s: start %s again: %v", f.id, t.name, err))
				return
			}
			c.mu.Lock()
			pf.to = time.Since(c.start)
			c.mu.Unlock()
			c.event("process", "start", t.name+": started again as its phase ended")
		})
	}
}

// settle ends the process faults' actions: it cuts their waits short
// and waits for them, so none acts after the run.
func (c *processActor) settle() {
	c.mu.Lock()
	c.closed = true // no action is added while wg is waited on
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
}

// processWindows are the windows SLAs may name by a process fault's id:
// from its first action to the end of its effect (the process ready
// again, or continued), for faults that acted.
func processWindows(pfs map[string]processFault) map[string]verify.Window {
	out := map[string]verify.Window{}
	for id, pf := range pfs {
		if pf.actions > 0 && !pf.manual {
			out[id] = verify.Window{From: pf.from, To: max(pf.to, pf.from)}
		}
	}
	return out
}

// processFaults returns the process faults laid out, by id.
func (c *processActor) processFaults() map[string]processFault {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]processFault, len(c.faults))
	for id, pf := range c.faults {
		out[id] = *pf
	}
	return out
}

// addProcessFaults puts the process faults of phases the run reached in
// the report; require_faults_fired counts one that never acted.
func addProcessFaults(r *report.Report, s *scenario.Scenario, pfs map[string]processFault) {
	for _, ph := range s.Phases {
		for _, f := range ph.Faults {
			pf, ok := pfs[f.ID]
			if f.Process == nil || !ok || !reached(r, ph.Name) {
				continue
			}
			out := report.Fault{ID: f.ID, Kind: pf.kind, Phase: pf.phase, Layer: "process", Config: pf.params,
				Matched: pf.planned, Injected: pf.actions, Fired: pf.actions > 0, ConfiguredRate: 1,
				StartS: report.Secs(pf.from), EndS: report.Secs(pf.to), Error: strings.Join(pf.errs, "; ")}
			if pf.planned > 0 {
				out.EffectiveRate = float64(pf.actions) / float64(pf.planned)
			}
			r.Faults = append(r.Faults, out)
			if s.RequireFaultsFired && pf.actions == 0 {
				failNotFired(r, f.ID, "never acted", out.Error)
			}
		}
	}
}

// reached says whether the run got into the named phase.
func reached(r *report.Report, phase string) bool {
	for _, p := range r.Phases {
		if p.Name == phase {
			return !p.NotRun
		}
	}
	return false
}

func pidOf(in *service.Instance) string {
	if p := in.Process(); p != nil {
		return strconv.Itoa(p.Pid())
	}
	return "-"
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

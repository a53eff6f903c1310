package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/inject/process"
	"github.com/resctl/resctl/internal/demo"
	"github.com/resctl/resctl/internal/sysinfo"
	"github.com/resctl/resctl/internal/version"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/scrape"
	"github.com/resctl/resctl/service"
)

// ErrUnreachable is returned (wrapped) when the target does not accept
// connections before the run starts — the load's own sentinel, so a gRPC
// target the load could not reach is the same error.
var ErrUnreachable = load.ErrUnreachable

// ErrInterrupted is returned (wrapped) when the run was cancelled before its
// last phase ended. The report it comes with holds what was recorded.
var ErrInterrupted = errors.New("run interrupted")

// ErrCannotInject is returned (wrapped) when the scenario asks for a fault
// this machine cannot inject (a network fault without root) and has not
// marked it optional: the run refuses before anything starts, rather than
// run the whole experiment to fail on require_faults_fired.
var ErrCannotInject = errors.New("this machine cannot inject the scenario's faults")

// DialTimeout bounds the reachability check of a target given by URL.
const DialTimeout = 3 * time.Second

// Options configure a run beyond what the scenario says.
type Options struct {
	// Progress receives one line per phase as the run goes; nil is quiet.
	Progress io.Writer
	// Live, when set, is a terminal that shows a status line redrawn
	// every LiveInterval — phase, elapsed time, the faults on, the last
	// second's rate, p99 and errors, each guard policy's state — with the
	// progress lines scrolling above it. Usually the same as Progress.
	// Without it, Progress gets the same status as a line of its own
	// every ProgressInterval.
	Live io.Writer
	// LiveWidth, when set, is the width of Live's terminal in columns,
	// read at every redraw so that the line follows a resize; without
	// it the line fits DefaultLiveWidth.
	LiveWidth func() int
	// Results, when set, is a file every result is streamed to in
	// vegeta's encoding (resctl run --save-results).
	Results string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// DemoCommand, when set, runs the built-in demo target as a process of
	// its own (e.g. {"/path/to/resctl", "demo-target"}), so its runtime
	// metrics — goroutines, heap — are its own and not resctl's, and
	// runtime faults injected into it cannot touch resctl. Empty runs it
	// inside resctl's process.
	DemoCommand []string
	// LogDir receives the stdout and stderr of processes resctl starts.
	LogDir string
	// Supervisor, when set, is the command line that runs
	// service.Supervise (e.g. {"/path/to/resctl", "__supervise"}): every
	// process the run starts is started through it, so that if resctl dies,
	// even by SIGKILL, the process's own children die too. Empty starts
	// them directly; they still die with resctl, their children may not.
	Supervisor []string
	// NetworkSupported says whether network faults can be injected here
	// and if not why; nil is netem.Supported. Tests give their own.
	NetworkSupported func() error
	// AdminAllowedHosts are the names, beyond loopback, that requests to
	// the proxies' admin API may carry in their Host header.
	AdminAllowedHosts []string
}

// Run executes the scenario. It always returns a report when the run got as
// far as sending load, even with an error (interrupted, failed part-way), so
// what was recorded is never lost; the error is nil when the run completed,
// whatever its SLA verdicts.
func Run(ctx context.Context, s *scenario.Scenario, opts Options) (*report.Report, error) {
	began := time.Now()
	at := &stage{name: "starting"}
	if opts.NetworkSupported == nil {
		opts.NetworkSupported = netem.Supported
	}
	if err := checkFaults(s, opts.NetworkSupported); err != nil {
		return nil, err
	}
	r, err := run(ctx, s, opts, at)
	if r != nil || err == nil || errors.Is(err, load.ErrInvalid) {
		return r, err
	}
	// Stopped before the load began: a report all the same, with every
	// phase and SLA not run and how far the start-up got.
	r = notStartedReport(s, began, at.name)
	if ctx.Err() != nil {
		r.Interrupted = true
		return r, fmt.Errorf("run %q while %s: %w", s.Name, at.name, ErrInterrupted)
	}
	r.Error = err.Error()
	return r, err
}

// stage is the step of start-up a run is at, for the report of a run that
// stops there.
type stage struct{ name string }

func run(ctx context.Context, s *scenario.Scenario, opts Options, at *stage) (*report.Report, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	warnings := &warningLog{}
	progress = warnings.to(progress)

	// The results file is created first: a path that cannot be written
	// fails the run before anything starts.
	var results *load.ResultsFile
	if opts.Results != "" {
		var err error
		if results, err = load.CreateResultsFile(opts.Results); err != nil {
			return nil, err
		}
		defer results.Close()
	}

	// Processes an earlier run recorded and left behind, killed with its
	// supervisors, would hold the ports this one needs.
	if stale, err := service.CleanupStale(service.DefaultStateDir()); len(stale) > 0 || err != nil {
		fmt.Fprintf(progress, "resctl: stopped %d process(es) left by earlier runs: %s (%v)\n", len(stale), strings.Join(stale, ", "), err)
	}

	// In the guarded-proxy topology a proxy fronts the target and the
	// load goes through it. In the dependency topology proxies front the
	// target's dependencies (proxy.upstream, proxies), the target is
	// started with their addresses, and the load goes straight to it.
	// Things start in the order they need each other: services, proxies
	// in front of them, the target, the proxy in front of it.
	procs := newProcessSet()
	// Whatever ends the run, a paused process is continued first, so
	// that it can stop.
	defer procs.rollback()
	for _, svc := range s.Services {
		at.name = "starting service " + svc.Name
		started, err := startService(ctx, svc, opts)
		for _, t := range started {
			defer t.in.Stop()
			procs.add(t.name, t.in)
		}
		if err != nil {
			return nil, err
		}
		if svc.Replicas > 1 {
			procs.group(svc.Name, svc.Instances())
			fmt.Fprintf(progress, "resctl: started service %s (%d replicas)\n", svc.Name, svc.Replicas)
			continue
		}
		fmt.Fprintf(progress, "resctl: started service %s\n", svc.Name)
	}

	at.name = "starting the proxies"
	gd, err := buildGuards(s, time.Now())
	if err != nil {
		return nil, err
	}
	defer gd.close()

	// Every proxy's admin listener also serves the admin API, so faults
	// can be added by hand or by a Toxiproxy client while a run goes on.
	// What is done through it (marks, faults by hand) joins the run's events.
	api := &apiEvents{}
	admin := harness.NewAdmin(harness.AdminOptions{Token: os.Getenv("RESCTL_ADMIN_TOKEN"), Version: version.String(), Seed: s.Seed, Logger: logger, AllowedHosts: opts.AdminAllowedHosts, OnEvent: api.add})
	gd.recordTo(admin.Record)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = admin.Close(cctx)
	}()
	proxies := newProxySet(s, admin, gd, logger)
	defer proxies.close()
	// Faults are switched off whatever happens from here on: phase end,
	// interrupt, error or panic.
	defer proxies.clear()
	proxies.openLinks(ctx, s, opts.NetworkSupported, progress)
	if err := proxies.startDependencies(); err != nil {
		return nil, err
	}
	at.name = "starting the target"
	tg, err := startTarget(ctx, s, opts, proxies.templateData())
	if err != nil {
		return nil, err
	}
	defer tg.stop()
	if tg.instance != nil {
		procs.add(scenario.TargetProcess, tg.instance)
	} else if needsProcess(s, scenario.TargetProcess) {
		return nil, fmt.Errorf("run %q: process faults act on the target, but it runs inside resctl (the demo in resctl's own process)", s.Name)
	}
	upstream, targetDesc := tg.upstream, tg.desc
	// The links go before the target stops, whatever ends the run: a
	// target stopping gracefully would wait on the relays' connections.
	defer proxies.closeLinks()
	at.name = "starting the proxy in front of the target"
	loadURL := upstream
	if front := proxies.front(); front != nil {
		if err := proxies.start(front, upstream); err != nil {
			return nil, err
		}
		loadURL = front.p.URL()
		fmt.Fprintf(progress, "resctl: %s: target %s, proxy %s (admin API and metrics %s)\n", s.Name, targetDesc, front.p.URL(), front.p.AdminURL())
	} else {
		fmt.Fprintf(progress, "resctl: %s: target %s, load straight to it\n", s.Name, targetDesc)
	}
	proxies.describe(progress)

	at.name = "starting the load"
	plan := newPlan(s)
	start := time.Now()
	gd.setStart(start)
	rec := record.NewRecorder(start, plan.spans, s.Load.Timeout)
	var lv *live
	var ticks *time.Ticker
	switch {
	case opts.Live != nil:
		// Progress lines scroll above the live status line.
		lv = newLive(opts.Live, true, plan, rec, start)
		lv.width = opts.LiveWidth
		ticks = time.NewTicker(LiveInterval)
	case opts.Progress != nil:
		lv = newLive(opts.Progress, false, plan, rec, start)
		ticks = time.NewTicker(ProgressInterval)
	}
	if lv != nil {
		defer ticks.Stop()
		lv.guards = gd.current
		progress = warnings.to(lv)
	}
	procs.begin(start)
	clock := &phaseClock{plan: plan, proxies: proxies, start: start, progress: progress, runtime: map[string]runtimeFault{}, network: map[string]networkFault{}}
	clock.procs = newProcessActor(ctx, procs, start, progress, clock.event)
	defer clock.procs.settle()
	// Process faults may come through the admin API too, while the run
	// goes on.
	admin.SetProcesses(clock.procs)
	defer admin.SetProcesses(nil)
	if u := agentURL(s, upstream); u != "" {
		clock.agent = &agent.Client{BaseURL: u}
		// Runtime faults end with the run, whatever ends it; their TTLs
		// end them even if resctl dies.
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = clock.agent.Clear(cctx)
		}()
	}

	eps := scrapeEndpoints(s, proxies, upstream, agentURL(s, upstream))
	scraper := scrape.New(scrape.Options{Endpoints: eps, Interval: s.Scrape.Interval, Start: start, Keep: keepSeries(s)})

	// The load stops when ctx is cancelled (an interrupt) or when a
	// safeguard SLA aborts the run, with an *AbortError as the cause.
	loadCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	// interruptedAt is when an interrupt stopped the run, on its timeline.
	interruptedAt := make(chan time.Duration, 1)
	defer context.AfterFunc(ctx, func() { interruptedAt <- time.Since(start) })()
	guardRail := newSafeguards(s, plan, rec, scraper, gd, start, abort, progress)
	clock.phaseEnded = guardRail.phaseEnded

	clock.arm()
	// The clock stops with the load: a safeguard that aborts the run at
	// the end of a phase starts no later one.
	runCtx, stopClock := context.WithCancel(loadCtx)
	var wg sync.WaitGroup
	wg.Go(func() { clock.run(runCtx) })
	wg.Go(func() { scraper.Run(runCtx) })
	wg.Go(func() { guardRail.watch(runCtx) })
	if lv != nil {
		wg.Go(func() { lv.run(runCtx, ticks.C) })
	}
	pacer := load.NewPacer(plan.steps)
	stats, loadErr := sendLoad(loadCtx, s, loadURL, pacer, start, rec, results, guardRail.hold)
	stopClock()
	wg.Wait()
	clock.procs.settle()
	if refusedLoad(loadErr) {
		return nil, fmt.Errorf("run %q: %w", s.Name, loadErr)
	}
	if results != nil {
		if err := results.Close(); err != nil {
			fmt.Fprintf(progress, "resctl: warning: %v\n", err)
		}
	}
	proxies.clear()
	proxies.closeLinks()
	elapsed := time.Since(start)
	// One last scrape after the load, so "the end of the run" has a
	// sample of every series (goroutines back to baseline?).
	if ctx.Err() == nil {
		scraper.ScrapeOnce(context.Background())
	}

	snap := rec.Snapshot()
	var aborted *AbortError
	if !errors.As(context.Cause(loadCtx), &aborted) || ctx.Err() != nil {
		aborted = nil
	}
	// A run that completed covers its whole schedule, even though the
	// last response may arrive a moment before the schedule's nominal
	// end. One that stopped early covers the schedule up to where it
	// stopped, not the moments it took to wind down: a steady-state abort
	// stops at the end of its phase, whose next phase's requests it held
	// back; a breach when it was seen; an interrupt when it came.
	runEnd := elapsed
	if n := len(plan.spans); n > 0 {
		runEnd = plan.spans[n-1].End
		switch {
		case aborted != nil:
			runEnd = min(runEnd, aborted.At)
		case stats.Interrupted:
			runEnd = min(runEnd, <-interruptedAt)
		case loadErr != nil:
			runEnd = min(runEnd, elapsed)
		}
	}
	guardEvents, states, initial := gd.snapshot()
	maps.Copy(states, faultStates(plan, runEnd))
	procEvents, procStates, procInitial := procs.snapshot()
	maps.Copy(states, procStates)
	maps.Copy(initial, procInitial)
	env := newRunEnv(rec, snap, plan.spans, runEnd, scraper.Series(), states)
	env.initial = initial
	env.windows = processWindows(clock.procs.processFaults())
	env.served = scraper.Names
	events := append(clock.events(), guardEvents...)
	events = append(events, procEvents...)
	events = append(events, api.events(start)...)
	slices.SortStableFunc(events, func(a, b record.Event) int { return cmp.Compare(a.At, b.At) })
	r := buildReport(s, targetDesc, snap, env, proxies, events, runEnd)
	stoppedEarly := len(plan.spans) > 0 && runEnd < plan.spans[len(plan.spans)-1].End
	if stoppedEarly {
		markNotRun(r, s, plan.spans, runEnd)
	}
	addRuntimeFaults(r, s, clock.runtimeFaults())
	addNetworkFaults(r, s, clock.networkFaults())
	addProcessFaults(r, s, clock.procs.processFaults())
	addNotRunFaults(r, s)
	if stats.Interrupted && aborted == nil && stoppedEarly {
		markCutShort(r, s, plan.spans, runEnd)
	}
	r.Processes = procs.report()
	r.Guards = gd.report()
	r.DurationS = report.Secs(elapsed)
	// The schedule of a run that stopped early ends where it stopped: the
	// requests it would have sent after are not requests the generator
	// failed to send.
	if stoppedEarly {
		stats.Scheduled = min(stats.Scheduled, uint64(math.Ceil(pacer.Hits(runEnd))))
	}
	r.Run = report.RunResources{
		Sent:         stats.Sent,
		Dropped:      stats.Dropped,
		Scheduled:    stats.Scheduled,
		PeakRSSBytes: sysinfo.PeakRSS(),
	}
	r.Run.JudgeGenerator(snap.Total.Lag.P99, true)
	r.Version = version.String()
	metricsReport(r, scraper, s, progress)
	r.Warnings = warnings.list()
	switch {
	case aborted != nil:
		// A safeguard stopped the run: it completed, with a failing
		// verdict that says why it stopped early.
		r.Passed = false
		r.Aborted = aborted.Error()
		return r, nil
	case loadErr != nil:
		r.Passed = false
		r.Error = loadErr.Error()
		return r, fmt.Errorf("run %q: %w", s.Name, loadErr)
	case stats.Interrupted:
		r.Passed = false
		r.Interrupted = true
		return r, fmt.Errorf("run %q after %.1fs: %w", s.Name, elapsed.Seconds(), ErrInterrupted)
	}
	return r, nil
}

// agentURL is where the target's runtime-fault agent is, if anywhere: the
// built-in demo target mounts it at /debug/resctl.
func agentURL(s *scenario.Scenario, upstream string) string {
	if s.Target.Agent != "" {
		return s.Target.Agent
	}
	if s.Target.Builtin == "demo" {
		return strings.TrimSuffix(upstream, "/") + "/debug/resctl"
	}
	return ""
}

// addRuntimeFaults puts the runtime faults in the report, in phase order,
// with whether they started; require_faults_fired counts a runtime fault
// that never started as one that never fired.
func addRuntimeFaults(r *report.Report, s *scenario.Scenario, rts map[string]runtimeFault) {
	for _, ph := range s.Phases {
		for _, f := range ph.Faults {
			if f.Runtime == nil {
				continue
			}
			rf, ok := rts[f.ID]
			if !ok {
				continue // its phase was never reached
			}
			out := report.Fault{ID: f.ID, Kind: rf.kind, Phase: rf.phase, Layer: "runtime", Config: rf.params, Fired: rf.started,
				ConfiguredRate: 1, StartS: report.Secs(rf.from), EndS: report.Secs(rf.to), Error: rf.err}
			if rf.started {
				out.EffectiveRate = 1
			}
			r.Faults = append(r.Faults, out)
			if s.RequireFaultsFired && !rf.started {
				failNotFired(r, f.ID, "did not start", rf.err)
			}
		}
	}
}

// demoReady matches the line `resctl demo-target` prints once it listens.
var demoReady = regexp.MustCompile(`listening on (http://\S+)`)

// startedTarget is the target as the run reaches it: its URL, a
// description for reports, what stops it, and the process resctl started,
// if it started one as a process of its own.
type startedTarget struct {
	upstream, desc string
	stop           func()
	instance       *service.Instance
}

// startTarget starts the target, if resctl starts it, or checks that it
// accepts connections.
func startTarget(ctx context.Context, s *scenario.Scenario, opts Options, data scenario.TemplateData) (startedTarget, error) {
	if len(s.Target.Command) > 0 {
		return startCommand(ctx, s, opts, data)
	}
	if s.Target.Builtin == "demo" && len(opts.DemoCommand) > 0 {
		args := append(slices.Clone(opts.DemoCommand), "--listen", "127.0.0.1:0", "--seed", strconv.FormatUint(s.Seed, 10))
		in := service.NewInstance(service.Spec{
			Name:       "demo-target",
			Command:    args,
			ReadyLine:  demoReady,
			LogDir:     opts.LogDir,
			Supervisor: opts.Supervisor,
			StateDir:   service.DefaultStateDir(),
		})
		if err := in.Start(ctx); err != nil {
			return startedTarget{}, fmt.Errorf("start built-in demo target: %w", err)
		}
		p := in.Process()
		// Started again, it listens where it did the first time.
		args[len(args)-3] = strings.TrimPrefix(p.Match(), "http://")
		in.SetCommand(args)
		return startedTarget{p.Match(), "builtin demo (" + p.Match() + ", pid " + strconv.Itoa(p.Pid()) + ")", func() { _ = in.Stop() }, in}, nil
	}
	if s.Target.Builtin == "demo" {
		srv, err := demo.Start("127.0.0.1:0", demo.Options{Seed: int64(s.Seed)})
		if err != nil {
			return startedTarget{}, fmt.Errorf("start built-in demo target: %w", err)
		}
		return startedTarget{srv.URL(), "builtin demo (" + srv.URL() + ")", func() { _ = srv.Close() }, nil}, nil
	}
	u, err := url.Parse(s.Target.URL)
	if err != nil {
		return startedTarget{}, fmt.Errorf("target %q: %w", s.Target.URL, err)
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", host)
	if err != nil {
		return startedTarget{}, fmt.Errorf("%w: %s: %v", ErrUnreachable, s.Target.URL, err)
	}
	conn.Close()
	return startedTarget{s.Target.URL, s.Target.URL, func() {}, nil}, nil
}

// startCommand starts the service under test and waits until it is ready.
func startCommand(ctx context.Context, s *scenario.Scenario, opts Options, data scenario.TemplateData) (startedTarget, error) {
	t := s.Target
	spec := service.Spec{Name: "target", Dir: t.Dir, Env: map[string]string{}, ReadyTimeout: t.ReadyTimeout, StopGrace: t.Stop.Grace,
		LogDir: opts.LogDir, Supervisor: opts.Supervisor, StateDir: service.DefaultStateDir()}
	for _, a := range t.Command {
		x, err := scenario.Expand(a, data)
		if err != nil {
			return startedTarget{}, err
		}
		spec.Command = append(spec.Command, x)
	}
	for k, v := range t.Env {
		x, err := scenario.Expand(v, data)
		if err != nil {
			return startedTarget{}, err
		}
		spec.Env[k] = x
	}
	if sig, ok := signals[t.Stop.Signal]; ok {
		spec.StopSignal = sig
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return startedTarget{}, fmt.Errorf("target %q: %w", t.URL, err)
	}
	switch {
	case strings.HasPrefix(t.Ready, "http://"), strings.HasPrefix(t.Ready, "https://"):
		spec.ReadyURL = t.Ready
	case t.Ready != "":
		spec.ReadyTCP = t.Ready
	default:
		spec.ReadyTCP = hostPort(u)
	}
	in := service.NewInstance(spec)
	if err := in.Start(ctx); err != nil {
		return startedTarget{}, fmt.Errorf("start target: %w", err)
	}
	desc := fmt.Sprintf("%s (pid %d, %s)", t.URL, in.Process().Pid(), filepath.Base(spec.Command[0]))
	return startedTarget{t.URL, desc, func() { _ = in.Stop() }, in}, nil
}

// startService starts one of the scenario's services, each of its
// replicas, and waits until they are ready. It returns what it started,
// also on an error.
func startService(ctx context.Context, svc scenario.Service, opts Options) ([]namedInstance, error) {
	var out []namedInstance
	names := svc.Instances()
	for i, name := range names {
		d := scenario.InstanceData{Replica: i + 1}
		if i < len(svc.Ports) {
			d.Port = svc.Ports[i]
		}
		spec := service.Spec{Name: name, Env: map[string]string{}, ReadyTimeout: svc.ReadyTimeout, StopGrace: svc.Stop.Grace,
			LogDir: opts.LogDir, Supervisor: opts.Supervisor, StateDir: service.DefaultStateDir()}
		var err error
		expand := func(text string) string {
			x, e := scenario.ExpandInstance(text, d)
			err = cmp.Or(err, e)
			return x
		}
		for _, a := range svc.Command {
			spec.Command = append(spec.Command, expand(a))
		}
		for k, v := range svc.Env {
			spec.Env[k] = expand(v)
		}
		spec.Dir = expand(svc.Dir)
		ready := expand(svc.Ready)
		if err != nil {
			return out, fmt.Errorf("service %s: %w", name, err)
		}
		if sig, ok := signals[svc.Stop.Signal]; ok {
			spec.StopSignal = sig
		}
		if strings.HasPrefix(ready, "http://") || strings.HasPrefix(ready, "https://") {
			spec.ReadyURL = ready
		} else {
			spec.ReadyTCP = ready
		}
		in := service.NewInstance(spec)
		if err := in.Start(ctx); err != nil {
			return out, fmt.Errorf("start service: %w", err)
		}
		out = append(out, namedInstance{name, in})
	}
	return out, nil
}

var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGKILL": syscall.SIGKILL, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func loadRequests(rs []scenario.Request) []load.Request {
	out := make([]load.Request, len(rs))
	for i, r := range rs {
		h := http.Header{}
		for k, v := range r.Headers {
			h.Set(k, v)
		}
		out[i] = load.Request{Method: r.Method, Path: r.Path, Header: h, Expect: r.Expect}
		if r.Body != "" {
			out[i].Body = []byte(r.Body)
		}
	}
	return out
}

// plan is the scenario laid out on the run's timeline.
type plan struct {
	spans  []record.PhaseSpan
	steps  []load.Step
	faults [][]plannedFault // per phase
}

type plannedFault struct {
	id string
	// proxy names the proxy a proxy fault acts on.
	proxy string
	spec  inject.Spec
	// runtime faults run in the target, through its agent.
	runtime agent.Spec
	// network faults act on the proxy's link to its upstream.
	network *netem.Spec
	// process faults kill, pause or restart a process resctl started.
	process process.Spec
	params  map[string]any
}

func newPlan(s *scenario.Scenario) plan {
	var p plan
	var at time.Duration
	for _, ph := range s.Phases {
		p.spans = append(p.spans, record.PhaseSpan{Name: ph.Name, Start: at, End: at + ph.Duration})
		p.steps = append(p.steps, stepOf(ph, s.Load.Rate.PerSecond()))
		var fs []plannedFault
		for _, f := range ph.Faults {
			fs = append(fs, plannedFault{id: f.ID, proxy: f.Proxy, spec: f.Spec, runtime: f.Runtime, network: f.Network, process: f.Process, params: f.Params})
		}
		p.faults = append(p.faults, fs)
		at += ph.Duration
	}
	return p
}

// stepOf is a phase's part of the load schedule; base is load.rate.
func stepOf(ph scenario.Phase, base float64) load.Step {
	r := ph.Rate
	switch {
	case !r.IsSet():
		return load.Step{Name: ph.Name, Duration: ph.Duration, Rate: base}
	case r.Ramp != nil:
		return load.Ramp(ph.Name, ph.Duration, r.Ramp.From.PerSecond(), r.Ramp.To.PerSecond())
	case r.Steps != nil:
		rates := make([]float64, len(r.Steps))
		for i, x := range r.Steps {
			rates[i] = x.PerSecond()
		}
		return load.Stairs(ph.Name, ph.Duration, rates...)
	case r.Spike != nil:
		sp := r.Spike
		return load.Spike(ph.Name, ph.Duration, cmp.Or(sp.Base.PerSecond(), base), sp.Peak.PerSecond(), sp.At, sp.For)
	}
	return load.Step{Name: ph.Name, Duration: ph.Duration, Rate: r.Constant.PerSecond()}
}

// sendLoad drives the scenario's load, HTTP or gRPC, to url.
func sendLoad(ctx context.Context, s *scenario.Scenario, url string, pacer *load.Pacer, start time.Time, rec *record.Recorder, results *load.ResultsFile, hold func(int) <-chan struct{}) (load.Stats, error) {
	if g := s.Load.GRPC; g != nil {
		return load.RunGRPC(ctx, load.GRPCOptions{
			Target:      hostOf(url),
			Call:        g.Call,
			Data:        g.Data.JSON,
			Metadata:    g.Metadata,
			Proto:       g.Proto,
			ImportPaths: g.ImportPaths,
			Protoset:    g.Protoset,
			Expect:      g.Expect,
			Pacer:       pacer,
			Timeout:     s.Load.Timeout,
			Recorder:    rec,
			MaxInFlight: s.Load.MaxInFlight,
			WaitAtCap:   s.Load.AtMaxInFlight == scenario.AtCapWait,
			Results:     results,
			Hold:        hold,
			Start:       start,
		})
	}
	return load.Run(ctx, load.Options{
		BaseURL:     url,
		Requests:    loadRequests(s.Load.Requests),
		Pacer:       pacer,
		Timeout:     s.Load.Timeout,
		H2C:         s.Load.HTTP2,
		Recorder:    rec,
		MaxInFlight: s.Load.MaxInFlight,
		WaitAtCap:   s.Load.AtMaxInFlight == scenario.AtCapWait,
		Results:     results,
		Hold:        hold,
		Start:       start,
	})
}

// hostOf is a base URL's host:port, where gRPC load dials.
func hostOf(base string) string {
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return hostPort(u)
	}
	return base
}

// refusedLoad says whether the load was refused before any request went
// out — a mistake in the scenario (load.ErrInvalid) or a target that is
// not there (ErrUnreachable) — so there is nothing to report.
func refusedLoad(err error) bool {
	return errors.Is(err, load.ErrInvalid) || errors.Is(err, ErrUnreachable)
}

// StartDemo starts the built-in demo target as a run does — as a process
// of its own when opts.DemoCommand is set — for drivers that have no
// scenario (resctl chaos --demo). It returns the target's URL, a
// description, the processes the admin API may act on with process faults
// (the demo as "target"; nil when it runs inside resctl) and the function
// that stops it all.
func StartDemo(ctx context.Context, opts Options, seed uint64) (string, string, harness.Processes, func(), error) {
	s := &scenario.Scenario{Seed: seed}
	s.Target.Builtin = "demo"
	tg, err := startTarget(ctx, s, opts, scenario.TemplateData{})
	if err != nil || tg.instance == nil {
		return tg.upstream, tg.desc, nil, tg.stop, err
	}
	set := newProcessSet()
	set.add(scenario.TargetProcess, tg.instance)
	set.begin(time.Now())
	progress := cmp.Or(opts.Progress, io.Discard)
	actor := newProcessActor(context.WithoutCancel(ctx), set, time.Now(), progress, func(source, kind, detail string) {})
	stop := func() {
		actor.settle()
		set.rollback()
		tg.stop()
	}
	return tg.upstream, tg.desc, actor, stop, nil
}

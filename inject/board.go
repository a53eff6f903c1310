package inject

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FaultHeader is set on responses a fault answered itself, naming the kind,
// so a client or a report can tell an injected error from a real one.
const FaultHeader = "X-Resctl-Fault"

// ErrDuplicate is returned by Board.Activate when a fault with the same ID is
// already active.
var ErrDuplicate = errors.New("fault already active")

// ErrNotActive is returned by Board.Replace when no fault with the ID is
// active.
var ErrNotActive = errors.New("fault not active")

// seeded is implemented by faults that draw random numbers of their own
// (jitter, distributions); the Board hands each one a generator derived from
// the run's seed and the activation's ID, so runs are reproducible.
type seeded interface{ seed(*rand.Rand) }

// Activation is one fault switched on in a Board. It keeps counting after it
// is switched off, so a report can say what the fault did.
type Activation struct {
	ID   string
	Spec Spec
	// Scope, when set, limits the fault to requests labelled with it (see
	// Board.ScopeByHeader); unlabelled requests see it while it is active.
	Scope string

	http  HTTPFault // nil for connection faults
	conn  ConnFault // nil for HTTP faults
	match matcher
	sel   Match
	now   func() time.Time

	mu  sync.Mutex
	rng *rand.Rand

	matched  atomic.Uint64
	injected atomic.Uint64

	// wide says the fault acts on unlabelled requests too; an armed
	// activation (ActivateOptions.Armed) is narrow until Board.Widen.
	// widened says it ever was.
	wide, widened atomic.Bool

	since   time.Time
	expires time.Time // zero: until switched off
	until   atomic.Pointer[time.Time]
}

// Stats is what an activation did.
type Stats struct {
	// Matched counts requests (or connections) the fault's selector
	// matched.
	Matched uint64 `json:"matched"`
	// Injected counts requests (or connections) the fault acted on.
	Injected uint64 `json:"injected"`
	// ConfiguredRate is the share of matches the fault was set to act on
	// (percent, thinned by every/on-off, averaged over a ramp), to compare
	// with EffectiveRate.
	ConfiguredRate float64 `json:"configured_rate"`
	// EffectiveRate is Injected/Matched, zero before any match.
	EffectiveRate float64 `json:"effective_rate"`
	// Since and Until bound the time the fault was active; Until is zero
	// while it still is. Expires is when its TTL ends it, zero without one.
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
}

// Fired reports whether the fault acted at least once: a fault that never
// fired proved nothing, and a report flags it.
func (s Stats) Fired() bool { return s.Injected > 0 }

// Stats returns a snapshot of the activation's counters.
func (a *Activation) Stats() Stats {
	s := Stats{Matched: a.matched.Load(), Injected: a.injected.Load(), Since: a.since, Expires: a.expires}
	end := a.now()
	if u := a.until.Load(); u != nil {
		s.Until = *u
		end = *u
	}
	if s.Matched > 0 {
		s.EffectiveRate = float64(s.Injected) / float64(s.Matched)
	}
	s.ConfiguredRate = a.sel.Schedule.expected(a.sel.Percent, end.Sub(a.since))
	return s
}

// Expires is when the activation's TTL ends it; zero without a TTL.
func (a *Activation) Expires() time.Time { return a.expires }

// ConnFault returns the live connection fault, or nil for an HTTP fault.
func (a *Activation) ConnFault() ConnFault { return a.conn }

// Draw counts one request or connection that met the fault's selector and
// reports whether the fault acts on it, by its schedule and seeded dice.
// The proxy calls it once per request, or once per connection per fault.
func (a *Activation) Draw() bool {
	n := a.matched.Add(1)
	var elapsed time.Duration
	if a.sel.Schedule.needsClock() {
		// An armed fault's schedule counts from its phase's start; a
		// request in the lead before it counts as at the start.
		elapsed = max(a.now().Sub(a.since), 0)
	}
	ok, p := a.sel.Schedule.eligible(n, elapsed, a.sel.Percent)
	if !ok || !a.roll(p) {
		return false
	}
	a.injected.Add(1)
	return true
}

func (a *Activation) roll(p float64) bool {
	if p >= 1 {
		return true
	}
	if p <= 0 {
		return false
	}
	a.mu.Lock()
	v := a.rng.Float64()
	a.mu.Unlock()
	return v < p
}

// stampOff records when the fault was switched off, once: a narrowed
// fault keeps the instant it was narrowed when the run later clears it.
func (a *Activation) stampOff(t time.Time) { a.until.CompareAndSwap(nil, &t) }

func (a *Activation) setWide(on bool) {
	a.wide.Store(on)
	if on {
		a.widened.Store(true)
	}
}

// SwitchedOn says whether the fault was ever switched on for all traffic:
// false only for an armed fault that was never widened, whose phase the
// clock never reached.
func (a *Activation) SwitchedOn() bool { return a.widened.Load() }

func (a *Activation) expiredAt(t time.Time) bool { return !a.expires.IsZero() && !t.Before(a.expires) }

// Board is the switchboard: the set of faults active on a proxy. It is safe
// for concurrent use; requests read the active set without taking a lock.
type Board struct {
	seed        uint64
	now         func() time.Time
	scopeHeader string

	mu      sync.Mutex // serialises writers of active, history and changed
	active  atomic.Pointer[[]*Activation]
	history []*Activation // every activation ever made, for metrics and reports
	watch   map[int]func()
	expire  map[int]func(*Activation)
	nextW   int
}

// NewBoard returns an empty Board whose faults draw their randomness from
// seed. now is the clock used to stamp activations, end TTLs and drive
// schedules; nil means time.Now.
func NewBoard(seed uint64, now func() time.Time) *Board {
	if now == nil {
		now = time.Now
	}
	b := &Board{seed: seed, now: now, watch: map[int]func(){}, expire: map[int]func(*Activation){}}
	b.active.Store(&[]*Activation{})
	return b
}

// ScopeByHeader makes the board read each request's scope from the named
// header (and remove it before the request goes on). A scoped fault then
// acts only on requests labelled with its scope. The runner labels load
// requests with their phase, so a request sent in the last instant of a
// phase meets that phase's faults, not the next one's. Call it before
// serving traffic.
func (b *Board) ScopeByHeader(name string) { b.scopeHeader = name }

// ActivateOptions qualify an activation.
type ActivateOptions struct {
	// Scope limits the fault to requests of one scope (see ScopeByHeader).
	Scope string
	// Armed activations act only on requests labelled with their Scope
	// until Board.Widen; they are not listed as active, nor counted on,
	// before that. The runner arms every phase's faults before the load
	// starts, so a phase's requests meet its faults however late the
	// clock that widens them runs on a busy machine.
	Armed bool
	// Since is the instant schedules (on/off windows, ramps) count from
	// and the report's start of the fault; zero means now.
	Since time.Time
	// TTL ends the fault on its own once it has been active this long;
	// zero means it stays until switched off. Faults set from outside a
	// run (the admin API, the CLI) always carry one, so a controller that
	// goes away cannot leave a fault behind.
	TTL time.Duration
}

// Activate switches a fault on under id. The spec must have passed Check.
func (b *Board) Activate(id string, spec Spec) (*Activation, error) {
	return b.ActivateWith(id, spec, ActivateOptions{})
}

// ActivateScoped switches a fault on under id for requests of one scope.
func (b *Board) ActivateScoped(id string, spec Spec, scope string) (*Activation, error) {
	return b.ActivateWith(id, spec, ActivateOptions{Scope: scope})
}

// ActivateWith switches a fault on under id with a scope and a TTL.
func (b *Board) ActivateWith(id string, spec Spec, opts ActivateOptions) (*Activation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	cur := b.sweepLocked(now)
	if slices.ContainsFunc(cur, func(a *Activation) bool { return a.ID == id }) {
		return nil, fmt.Errorf("activate %q: %w", id, ErrDuplicate)
	}
	a := b.newActivation(id, spec, opts, now)
	b.storeLocked(append(slices.Clip(cur), a))
	b.history = append(b.history, a)
	return a, nil
}

// Replace swaps the active fault id for a new spec in one step, keeping its
// place in the order; its counters start afresh. ErrNotActive when no such
// fault is active.
func (b *Board) Replace(id string, spec Spec, opts ActivateOptions) (*Activation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	cur := b.sweepLocked(now)
	i := slices.IndexFunc(cur, func(a *Activation) bool { return a.ID == id && a.wide.Load() })
	if i < 0 {
		return nil, fmt.Errorf("replace %q: %w", id, ErrNotActive)
	}
	cur[i].stampOff(now)
	a := b.newActivation(id, spec, opts, now)
	next := slices.Clone(cur)
	next[i] = a
	b.storeLocked(next)
	b.history = append(b.history, a)
	return a, nil
}

func (b *Board) newActivation(id string, spec Spec, opts ActivateOptions, now time.Time) *Activation {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	sel := spec.Selector()
	a := &Activation{
		ID:    id,
		Spec:  spec,
		Scope: opts.Scope,
		match: sel.compile(),
		sel:   sel,
		now:   b.now,
		rng:   rand.New(rand.NewPCG(b.seed, h.Sum64())),
		since: now,
	}
	if !opts.Since.IsZero() {
		a.since = opts.Since
	}
	a.setWide(!opts.Armed || opts.Scope == "")
	if opts.TTL > 0 {
		a.expires = now.Add(opts.TTL)
	}
	var built any
	switch s := spec.(type) {
	case HTTPSpec:
		a.http = s.Build()
		built = a.http
	case ConnSpec:
		a.conn = s.BuildConn()
		built = a.conn
	}
	if s, ok := built.(seeded); ok {
		s.seed(rand.New(rand.NewPCG(b.seed^0x9e3779b97f4a7c15, h.Sum64())))
	}
	return a
}

// storeLocked publishes a new active set and tells the watchers. b.mu must
// be held.
func (b *Board) storeLocked(next []*Activation) {
	b.active.Store(&next)
	for _, f := range b.watch {
		f()
	}
}

// sweepLocked switches off the activations whose TTL has ended, stamping
// them with their expiry, and returns what stays active. b.mu must be held.
func (b *Board) sweepLocked(now time.Time) []*Activation {
	cur := *b.active.Load()
	if !slices.ContainsFunc(cur, func(a *Activation) bool { return a.expiredAt(now) }) {
		return cur
	}
	var next []*Activation
	for _, a := range cur {
		if a.expiredAt(now) {
			t := a.expires
			a.until.Store(&t)
			continue
		}
		next = append(next, a)
	}
	b.storeLocked(next)
	for _, a := range cur {
		if a.expiredAt(now) {
			for _, f := range b.expire {
				f(a)
			}
		}
	}
	return next
}

// Sweep switches off every fault whose TTL has ended and returns them.
// Expired faults stop acting the moment their TTL ends whether or not
// anyone sweeps; sweeping stamps them off for listings and metrics, and
// wakes connection faults' proxies.
func (b *Board) Sweep() []*Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	before := *b.active.Load()
	after := b.sweepLocked(now)
	var gone []*Activation
	for _, a := range before {
		if !slices.Contains(after, a) {
			gone = append(gone, a)
		}
	}
	return gone
}

// OnChange registers f to be called after every change of the active set,
// before the call that changed it returns: a proxy holding idle
// connections wakes them, so bytes sent after Activate returns meet the
// new fault. f runs with the board locked: it must be quick and must not
// call the board. The returned function unregisters f.
func (b *Board) OnChange(f func()) (remove func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.nextW
	b.nextW++
	b.watch[id] = f
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.watch, id)
	}
}

// OnExpire registers f to be called once with every fault whose TTL
// ended, when the board switches it off: at the first call of the board
// after the TTL (Sweep, Active, an activation …), so a caller that wants
// to hear of it promptly sweeps on a ticker. f runs with the board locked,
// as OnChange's watchers do: it must be quick and must not call the board.
// The returned function unregisters f.
func (b *Board) OnExpire(f func(*Activation)) (remove func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.nextW
	b.nextW++
	b.expire[id] = f
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.expire, id)
	}
}

// Widen makes an armed fault act on unlabelled requests too: it is
// switched on for all traffic. It returns nil when no such fault is
// active.
func (b *Board) Widen(id string) *Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.sweepLocked(b.now())
	i := slices.IndexFunc(cur, func(a *Activation) bool { return a.ID == id })
	if i < 0 {
		return nil
	}
	cur[i].setWide(true)
	b.storeLocked(cur)
	return cur[i]
}

// Narrow switches a scoped fault off for unlabelled requests and stamps it
// off, but leaves it acting on requests labelled with its scope, which a
// generator running late may still send: they meet their phase's faults.
// Deactivate or Clear end it for good. It returns nil when no such fault
// is active.
func (b *Board) Narrow(id string) *Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	cur := b.sweepLocked(now)
	i := slices.IndexFunc(cur, func(a *Activation) bool { return a.ID == id })
	if i < 0 {
		return nil
	}
	a := cur[i]
	if a.Scope == "" {
		b.storeLocked(slices.Delete(slices.Clone(cur), i, i+1))
	} else {
		a.setWide(false)
		b.storeLocked(cur)
	}
	a.stampOff(now)
	return a
}

// Deactivate switches the fault with the given id off. It returns nil when
// no such fault is switched on: a run's armed and narrowed faults (see
// ActivateOptions.Armed) are the run's to end, not its admin API's.
func (b *Board) Deactivate(id string) *Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	cur := b.sweepLocked(now)
	i := slices.IndexFunc(cur, func(a *Activation) bool { return a.ID == id && a.wide.Load() })
	if i < 0 {
		return nil
	}
	a := cur[i]
	b.storeLocked(slices.Delete(slices.Clone(cur), i, i+1))
	a.stampOff(now)
	return a
}

// Clear switches off every fault that is switched on and returns them. A
// run's armed and narrowed faults stay: a reset through the admin API in
// the middle of a run must not take the faults of its later phases.
func (b *Board) Clear() []*Activation {
	return b.clear(func(a *Activation) bool { return a.wide.Load() })
}

// ClearAll switches every fault off, armed and narrowed ones included, and
// returns them: the end of a run.
func (b *Board) ClearAll() []*Activation {
	return b.clear(func(*Activation) bool { return true })
}

func (b *Board) clear(which func(*Activation) bool) []*Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var gone, kept []*Activation
	for _, a := range b.sweepLocked(now) {
		if which(a) {
			a.stampOff(now)
			gone = append(gone, a)
		} else {
			kept = append(kept, a)
		}
	}
	b.storeLocked(kept)
	return gone
}

// Active returns the faults switched on now, in activation order: not
// those armed and not yet widened, nor those narrowed.
func (b *Board) Active() []*Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*Activation
	for _, a := range b.sweepLocked(b.now()) {
		if a.wide.Load() {
			out = append(out, a)
		}
	}
	return out
}

// ConnActive returns the active connection faults, in activation order,
// for the tcp proxy to apply.
func (b *Board) ConnActive() []*Activation {
	cur := *b.active.Load()
	var out []*Activation
	var now time.Time
	for _, a := range cur {
		if a.conn == nil || !a.wide.Load() {
			continue
		}
		if !a.expires.IsZero() {
			if now.IsZero() {
				now = b.now()
			}
			if a.expiredAt(now) {
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

// History returns every activation the board has made, in order.
func (b *Board) History() []*Activation {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(b.now())
	return slices.Clone(b.history)
}

// Middleware applies the active faults to requests before next serves them.
func (b *Board) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var scope string
		if b.scopeHeader != "" {
			if scope = r.Header.Get(b.scopeHeader); scope != "" {
				r.Header.Del(b.scopeHeader)
			}
		}
		var finish []func()
		var enders []ender
		var now time.Time
		for _, a := range *b.active.Load() {
			if a.http == nil {
				continue
			}
			if a.Scope != "" && scope != "" && a.Scope != scope {
				continue
			}
			if scope == "" && !a.wide.Load() {
				continue
			}
			if !a.expires.IsZero() {
				if now.IsZero() {
					now = b.now()
				}
				if a.expiredAt(now) {
					continue
				}
			}
			if !a.match.matches(r) || !a.Draw() {
				continue
			}
			if a.http.Inject(w, r) {
				runFinish(finish)
				return
			}
			if rf, ok := a.http.(ResponseFault); ok {
				var f func()
				w, f = rf.WrapResponse(w, r)
				finish = append(finish, f)
				if e, ok := w.(ender); ok {
					enders = append(enders, e)
				}
			}
		}
		if len(enders) > 0 {
			serveEnding(next, w, r, enders)
		} else {
			next.ServeHTTP(w, r)
		}
		runFinish(finish)
	})
}

// serveEnding serves next and absorbs the http.ErrAbortHandler with which
// the reverse proxy stops when a fault's writer has ended the response on
// purpose; any other panic goes on.
//
// The upstream call is cancelled as soon as a writer cuts the response.
// Before it aborts, the reverse proxy closes the upstream's response body,
// and over HTTP/2 that waits for the upstream call to end: a call whose
// request body is still open (a bidirectional stream, its client waiting
// for the answer the fault has ended) would not end until the client
// went away, and the client would wait for ever.
func serveEnding(next http.Handler, w http.ResponseWriter, r *http.Request, enders []ender) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v != http.ErrAbortHandler || !slices.ContainsFunc(enders, func(e ender) bool { return e.ended() }) {
			panic(v)
		}
	}()
	next.ServeHTTP(&cutWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx))
}

// cutWriter cancels the upstream call when a fault's writer under it
// refuses a write, having ended the response.
type cutWriter struct {
	http.ResponseWriter
	cancel context.CancelFunc
}

func (w *cutWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if errors.Is(err, errCut) {
		w.cancel()
	}
	return n, err
}

// Flush passes a flush on, for handlers that look for http.Flusher (a
// gRPC server's ServeHTTP).
func (w *cutWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the writers below.
func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// runFinish calls the finishers innermost first, as the writers nest.
func runFinish(fs []func()) {
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

var (
	descActive   = prometheus.NewDesc("resctl_fault_active", "Whether a fault is switched on (1) or off (0).", []string{"fault", "kind"}, nil)
	descMatched  = prometheus.NewDesc("resctl_fault_matched_total", "Requests (or connections) a fault's selector matched.", []string{"fault", "kind"}, nil)
	descInjected = prometheus.NewDesc("resctl_fault_injected_total", "Requests (or connections) a fault acted on.", []string{"fault", "kind"}, nil)
)

// Describe implements prometheus.Collector.
func (b *Board) Describe(ch chan<- *prometheus.Desc) {
	ch <- descActive
	ch <- descMatched
	ch <- descInjected
}

// Collect implements prometheus.Collector: one series per fault ever
// activated, so counters stay visible after the fault is switched off.
func (b *Board) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	hist := b.History()
	for i := len(hist) - 1; i >= 0; i-- { // the newest activation of an id wins
		a := hist[i]
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		kind := a.Spec.Kind()
		on := 1.0
		if a.until.Load() != nil || !a.wide.Load() {
			on = 0
		}
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, on, a.ID, kind)
		ch <- prometheus.MustNewConstMetric(descMatched, prometheus.CounterValue, float64(a.matched.Load()), a.ID, kind)
		ch <- prometheus.MustNewConstMetric(descInjected, prometheus.CounterValue, float64(a.injected.Load()), a.ID, kind)
	}
}

package session

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/record"
	"github.com/resctl/resctl/report"
)

// DefaultTTL is how long a fault added in a session lasts when its command
// gives no `for=`: a session left alone, or a console that died, leaves
// nothing behind for longer.
const DefaultTTL = 5 * time.Minute

// MaxDuration bounds a session: its recording's phase, and the longest
// load or wait a command may ask for. A fault's for= is bounded by
// harness.MaxFaultTTL, as through the admin API and `resctl inject`.
const MaxDuration = 24 * time.Hour

// History is how many seconds of traffic, and how many lines of the event
// log, a session keeps for its live view; the recording behind save and
// report keeps the whole session.
const (
	HistorySeconds = 600
	HistoryLines   = 500
)

// Options configure a session.
type Options struct {
	// Admin is the admin API of the proxies the session drives: ones it
	// started, or a running `resctl proxy` or `resctl run` it attached to.
	Admin *harness.AdminClient
	// Owned says the session started those proxies: quitting clears
	// every fault on them. An attached session clears what it added.
	Owned bool
	// Front is the proxy the session's load goes through; empty is the
	// first the admin API lists.
	Front string
	// Agent, if set, takes runtime faults into the target ("target" as
	// the proxy name of a runtime fault command).
	Agent *agent.Client
	// Target describes what the proxies front, for the saved scenario:
	// "builtin:demo" or a URL; empty is the front proxy's upstream.
	Target string
	// ProxyYAML is, by proxy name, the YAML of the guard, routes and
	// balance of proxies the session started from a file (a scenario or
	// a --config), as written there: a saved scenario carries them, so
	// its replay has the same guard.
	ProxyYAML map[string]string
	// GRPCCall is the method gRPC load calls, package.Service/Method.
	GRPCCall string
	// LoadTimeout bounds each request of the session's load.
	LoadTimeout time.Duration
	// DefaultTTL is a fault's TTL when its command gives none.
	DefaultTTL time.Duration
	// Now is the session's clock; nil is time.Now.
	Now func() time.Time
	// Seed is the scenario's seed when saved.
	Seed uint64
}

// Line is one entry of the session's event log, as drivers print it.
type Line struct {
	At     time.Duration // since the session started
	Source string        // fault, guard, mark, load, proxy, session
	Text   string
}

func (l Line) String() string {
	return fmt.Sprintf("%s %-6s %s", Clock(l.At), l.Source, l.Text)
}

// Clock writes a time since the session's start as hh:mm:ss.
func Clock(d time.Duration) string {
	s := int(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

// FaultSpan is one fault on the session's timeline.
type FaultSpan struct {
	Proxy   string         `json:"proxy"`
	ID      string         `json:"id"`
	Kind    string         `json:"kind"`
	Params  map[string]any `json:"params"`
	Runtime bool           `json:"runtime,omitempty"`
	// Mine says the session added it (rather than someone else on an
	// attached proxy).
	Mine bool `json:"mine,omitempty"`
	On   time.Duration
	// Off is when it ended, once Ended.
	Off      time.Duration
	Ended    bool
	Matched  uint64 `json:"matched"`
	Injected uint64 `json:"injected"`
	// ConfiguredRate is the share of matched requests the fault is set
	// to act on, as the admin API last reported it (a ramp's changes).
	ConfiguredRate float64 `json:"configured_rate"`
	// ExpiresAt is when its TTL ends it.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// apiView is the fault as the admin API last showed it, to see a
	// change made by someone else.
	apiView string
	// born orders the span against polls: a poll that asked the admin
	// API before the span was added must not end it. cleared does the
	// same for the session's clear: a poll that asked before it must not
	// take the fault it still lists for one that appeared.
	born, cleared uint64
}

// Active says whether the fault is still on.
func (f *FaultSpan) Active() bool { return !f.Ended }

func (f *FaultSpan) end(at time.Duration) { f.Off, f.Ended = at, true }

// LoadSpan is one load the session sent.
type LoadSpan struct {
	Rate    float64
	Path    string
	Planned time.Duration
	On, Off time.Duration
	Done    bool // Off, Sent, Dropped and Scheduled are set
	// Sent, Dropped and Scheduled are the load generator's counts, as a
	// run's report gives them (report.RunResources).
	Sent, Dropped, Scheduled uint64
	Err                      string
}

// Mark is a note on the timeline.
type Mark struct {
	At   time.Duration
	Text string
}

// Session is the world a person drives by commands: the proxies behind an
// admin API, the faults on them, the load sent through them, and the
// timeline of all of it — from which it writes a scenario and a report.
type Session struct {
	opts  Options
	now   func() time.Time
	start time.Time
	rec   *record.Recorder

	mu          sync.Mutex
	proxies     []harness.ProxyInfo
	faults      []*FaultSpan
	loads       []*LoadSpan
	marks       []Mark
	lines       []Line
	traffic     map[string]*series
	eventSeq    uint64
	noEvents    bool // the admin API has no event log (an older resctl)
	reach       string
	loadStop    context.CancelFunc
	loadDone    chan struct{}
	closed      bool
	agentFaults map[string]bool   // ids of runtime faults the session started
	pending     map[[2]string]int // proxy and id of faults being added
	background  []Line            // lines of the load's own, for the next poll
	changes     uint64            // counts spans added, for born
	// events are the log's lines as the report keeps them, with guard
	// transitions in the form its guard lanes read.
	events []report.Event
}

// New starts a session on the admin API: it must answer.
func New(ctx context.Context, opts Options) (*Session, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = DefaultTTL
	}
	if opts.LoadTimeout <= 0 {
		opts.LoadTimeout = 5 * time.Second
	}
	s := &Session{opts: opts, now: opts.Now, traffic: map[string]*series{}, agentFaults: map[string]bool{}, pending: map[[2]string]int{}}
	s.start = s.now()
	s.rec = record.NewRecorder(s.start, []record.PhaseSpan{{Name: "session", Start: 0, End: MaxDuration}}, opts.LoadTimeout)
	ps, err := opts.Admin.Proxies(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin API %s: %w", opts.Admin.BaseURL, err)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("admin API %s: no proxies to drive", opts.Admin.BaseURL)
	}
	if s.opts.Front == "" {
		// The load goes through the first proxy it can go through.
		s.opts.Front = ps[0].Name
		if i := slices.IndexFunc(ps, func(p harness.ProxyInfo) bool { return p.Protocol != harness.ProtocolTCP }); i >= 0 {
			s.opts.Front = ps[i].Name
		}
	} else if !slices.ContainsFunc(ps, func(p harness.ProxyInfo) bool { return p.Name == s.opts.Front }) {
		return nil, fmt.Errorf("admin API %s: no proxy %q (it has %s)", opts.Admin.BaseURL, s.opts.Front, strings.Join(names(ps), ", "))
	}
	s.proxies = ps
	// What is already on, on an attached proxy, is on the timeline from
	// the start, as someone else's.
	for _, p := range ps {
		for _, f := range p.Faults {
			s.faults = append(s.faults, spanOf(p.Name, f, 0, false))
		}
	}
	// Events before the session are not the session's.
	if _, next, err := opts.Admin.Events(ctx, 0); err == nil {
		s.eventSeq = next
	} else {
		s.noEvents = true
	}
	return s, nil
}

func names(ps []harness.ProxyInfo) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func spanOf(proxy string, f harness.FaultInfo, on time.Duration, mine bool) *FaultSpan {
	return &FaultSpan{
		Proxy: proxy, ID: f.ID, Kind: f.Kind, Params: f.Params, On: on, Mine: mine,
		Matched: f.Stats.Matched, Injected: f.Stats.Injected, ConfiguredRate: f.Stats.ConfiguredRate, ExpiresAt: f.ExpiresAt,
		apiView: Describe(f.Kind, f.Params),
	}
}

// Start is when the session began.
func (s *Session) Start() time.Time { return s.start }

// Front is the proxy the load goes through.
func (s *Session) Front() string { return s.opts.Front }

func (s *Session) elapsed() time.Duration { return max(s.now().Sub(s.start), 0) }

func (s *Session) logf(source, format string, a ...any) Line {
	l := Line{At: s.elapsed(), Source: source, Text: fmt.Sprintf(format, a...)}
	s.events = append(s.events, report.Event{AtS: report.Secs(l.At), Source: source, Kind: source, Detail: l.Text})
	s.lines = append(s.lines, l)
	if len(s.lines) > HistoryLines {
		s.lines = slices.Delete(s.lines, 0, len(s.lines)-HistoryLines)
	}
	return l
}

// Exec carries out one parsed command and returns what to tell the
// person. A command that cannot be carried out changes nothing and
// returns an error meant for one line of the console; quit returns
// ErrQuit.
func (s *Session) Exec(ctx context.Context, c Command) (string, error) {
	switch {
	case c.Verb == "":
		return "", nil
	case c.Fault() && c.Runtime():
		return s.addRuntime(ctx, c)
	case c.Fault():
		return s.addFault(ctx, c)
	}
	switch c.Verb {
	case "clear":
		return s.clear(ctx, c.Args)
	case "load":
		if len(c.Args) == 1 {
			return s.stopLoad()
		}
		return s.startLoad(ctx, c.Args)
	case "mark":
		return s.mark(ctx, c.Args[0])
	case "faults":
		return s.faultList(), nil
	case "save":
		if err := s.Save(c.Args[0]); err != nil {
			return "", err
		}
		return "saved the session as a scenario: " + c.Args[0] + " (resctl validate " + c.Args[0] + ", then resctl run " + c.Args[0] + ")", nil
	case "report":
		if err := s.Report(c.Args[0]); err != nil {
			return "", err
		}
		return "wrote the session's report: " + c.Args[0], nil
	case "wait":
		return s.wait(ctx, c.Args[0])
	case "help":
		return Help(c.Args), nil
	case "quit":
		return "", ErrQuit
	}
	return "", fmt.Errorf("unknown command %q", c.Verb)
}

// ExecLine parses and carries out one line.
func (s *Session) ExecLine(ctx context.Context, line string) (string, error) {
	c, err := Parse(line)
	if err != nil {
		return "", err
	}
	return s.Exec(ctx, c)
}

func (s *Session) proxy(name string) (harness.ProxyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.proxies {
		if p.Name == name {
			return p, nil
		}
	}
	hint := "proxies: " + strings.Join(names(s.proxies), ", ")
	if s.opts.Agent != nil {
		hint += "; runtime faults go to target"
	}
	return harness.ProxyInfo{}, parseErr(hint, "no proxy %q", name)
}

func (s *Session) ttl(c Command) (time.Duration, error) {
	ttl := c.TTL
	if ttl == 0 {
		ttl = s.opts.DefaultTTL
	}
	if ttl > harness.MaxFaultTTL {
		return 0, parseErr("", "for=%v: at most %v", ttl, harness.MaxFaultTTL)
	}
	return ttl, nil
}

func (s *Session) addFault(ctx context.Context, c Command) (string, error) {
	p, err := s.proxy(c.Proxy)
	if err != nil {
		return "", err
	}
	ttl, err := s.ttl(c)
	if err != nil {
		return "", err
	}
	params, err := json.Marshal(c.Params)
	if err != nil {
		return "", err
	}
	// While the request is out, a poll must not take the new fault for
	// someone else's.
	key := [2]string{p.Name, cmp.Or(c.ID, c.Verb)}
	s.mu.Lock()
	s.pending[key]++
	s.mu.Unlock()
	info, err := s.opts.Admin.AddFault(ctx, p.Name, harness.FaultRequest{ID: c.ID, Kind: c.Verb, TTL: ttl.String(), Params: params})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[key]--; s.pending[key] <= 0 {
		delete(s.pending, key)
	}
	if err != nil {
		return "", apiErr(err)
	}
	at := s.elapsed()
	verb := "added"
	if f := s.activeFault(p.Name, info.ID); f != nil {
		f.end(at)
		verb = "replaced"
	}
	if info.Replaced {
		verb = "replaced"
	}
	span := spanOf(p.Name, info, at, true)
	span.Params = c.Params // as typed: the saved scenario reads the same
	s.changes++
	span.born = s.changes
	s.faults = append(s.faults, span)
	s.logf("fault", "%s %s on %s: %s, for %v", verb, info.ID, p.Name, Describe(info.Kind, c.Params), ttl)
	return fmt.Sprintf("%s %s on %s (ends in %v unless cleared)", verb, info.ID, p.Name, ttl), nil
}

func (s *Session) addRuntime(ctx context.Context, c Command) (string, error) {
	if s.opts.Agent == nil {
		return "", parseErr("start the session with --demo, or give the target's agent with --agent URL", "%s is a runtime fault: this session has no agent to send it to", c.Verb)
	}
	if c.Proxy != "target" {
		return "", parseErr("e.g. "+c.Verb+" target ...", "%s is a runtime fault: it goes to target, not %q", c.Verb, c.Proxy)
	}
	ttl, err := s.ttl(c)
	if err != nil {
		return "", err
	}
	id := c.ID
	if id == "" {
		id = c.Verb
	}
	info, err := s.opts.Agent.Start(ctx, id, c.Verb, ttl, c.Params)
	if err != nil {
		return "", apiErr(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.elapsed()
	if f := s.activeFault("target", id); f != nil {
		f.end(at)
	}
	s.faults = append(s.faults, &FaultSpan{Proxy: "target", ID: info.ID, Kind: c.Verb, Params: c.Params, Runtime: true, Mine: true, On: at, ExpiresAt: s.now().Add(ttl)})
	s.agentFaults[info.ID] = true
	s.logf("fault", "started %s in the target: %s, for %v", info.ID, Describe(c.Verb, c.Params), ttl)
	return fmt.Sprintf("started %s in the target (ends in %v unless cleared)", info.ID, ttl), nil
}

// Readd switches a fault of the session's back on, as it was last added:
// the console's toggle of a fault it switched off. Its TTL is the
// session's default.
func (s *Session) Readd(ctx context.Context, proxy, id string) (string, error) {
	s.mu.Lock()
	var last *FaultSpan
	for _, f := range s.faults {
		if f.Proxy == proxy && f.ID == id {
			last = f
		}
	}
	s.mu.Unlock()
	switch {
	case last == nil:
		return "", parseErr("faults lists them", "no fault %q on %s", id, proxy)
	case last.Active():
		return "", parseErr("", "%s on %s is on already", id, proxy)
	}
	c := Command{Verb: last.Kind, Proxy: proxy, ID: id, Params: maps.Clone(last.Params)}
	if c.Params == nil {
		c.Params = map[string]any{}
	}
	if last.Runtime {
		return s.addRuntime(ctx, c)
	}
	return s.addFault(ctx, c)
}

// apiErr words an admin API or agent error for one line of the console.
func apiErr(err error) error {
	var ae *harness.APIError
	if errors.As(err, &ae) {
		var probs []string
		for _, p := range ae.Problems {
			probs = append(probs, p.Field+": "+p.Msg)
		}
		if len(probs) > 0 {
			return &ParseError{Msg: strings.Join(probs, "; "), Hint: ae.Msg}
		}
		switch ae.Status {
		case 401, 403:
			return &ParseError{Msg: ae.Msg, Hint: "check the token: --token or $RESCTL_ADMIN_TOKEN"}
		}
		return &ParseError{Msg: ae.Msg}
	}
	var re *agent.RequestError
	if errors.As(err, &re) {
		return &ParseError{Msg: re.Error()}
	}
	return &ParseError{Msg: err.Error(), Hint: "is the admin API still up? the session keeps trying"}
}

// activeFault is the active span of proxy's fault id; s.mu held.
func (s *Session) activeFault(proxy, id string) *FaultSpan {
	for _, f := range s.faults {
		if f.Proxy == proxy && f.ID == id && f.Active() {
			return f
		}
	}
	return nil
}

func (s *Session) clear(ctx context.Context, args []string) (string, error) {
	arg := "all"
	if len(args) == 1 {
		arg = args[0]
	}
	s.mu.Lock()
	var targets []*FaultSpan
	for _, f := range s.faults {
		if f.Active() && (arg == "all" || f.ID == arg || f.Proxy == arg) {
			targets = append(targets, f)
		}
	}
	known := slices.ContainsFunc(s.proxies, func(p harness.ProxyInfo) bool { return p.Name == arg }) || arg == "target"
	s.mu.Unlock()
	if len(targets) == 0 {
		if arg == "all" || known {
			return "no active faults to clear", nil
		}
		return "", parseErr("faults lists them", "no active fault or proxy %q", arg)
	}
	var done []string
	var errs []error
	for _, f := range targets {
		var err error
		if f.Runtime {
			err = s.opts.Agent.Stop(ctx, f.ID)
		} else {
			err = s.opts.Admin.RemoveFault(ctx, f.Proxy, f.ID)
		}
		var ae *harness.APIError
		if errors.As(err, &ae) && ae.Status == 404 {
			err = nil // ended meanwhile
		}
		if err != nil {
			errs = append(errs, apiErr(err))
			continue
		}
		s.mu.Lock()
		if f.Active() {
			f.end(s.elapsed())
			s.changes++
			f.cleared = s.changes
		}
		s.logf("fault", "cleared %s on %s", f.ID, f.Proxy)
		s.mu.Unlock()
		done = append(done, f.ID+" on "+f.Proxy)
	}
	msg := "cleared " + strings.Join(done, ", ")
	if len(done) == 0 {
		msg = ""
	}
	return msg, errors.Join(errs...)
}

func (s *Session) mark(ctx context.Context, text string) (string, error) {
	s.mu.Lock()
	s.marks = append(s.marks, Mark{At: s.elapsed(), Text: text})
	s.logf("mark", "%s", text)
	noEvents := s.noEvents
	s.mu.Unlock()
	if !noEvents {
		// The proxy's own log and other watchers see it too; the
		// session's timeline has it whatever the answer.
		_ = s.opts.Admin.Mark(ctx, text)
	}
	return "marked: " + text, nil
}

func (s *Session) faultList() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, f := range s.faults {
		if !f.Active() {
			continue
		}
		left := ""
		if !f.ExpiresAt.IsZero() {
			left = ", " + max(f.ExpiresAt.Sub(s.now()), 0).Round(time.Second).String() + " left"
		}
		fmt.Fprintf(&b, "%s on %s: %s; matched %d, injected %d%s\n", f.ID, f.Proxy, Describe(f.Kind, f.Params), f.Matched, f.Injected, left)
	}
	if b.Len() == 0 {
		return "no active faults"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Describe prints a fault as a command would write it.
func Describe(kind string, params map[string]any) string {
	keys := slices.Sorted(maps.Keys(params))
	parts := []string{kind}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, params[k]))
	}
	return strings.Join(parts, " ")
}

// Poll brings the session up to date with its proxies — faults that
// ended or appeared, guard transitions, traffic — and returns the new
// lines of the event log. Drivers call it about once a second. An admin
// API that does not answer is one line, once, until it answers again.
func (s *Session) Poll(ctx context.Context) []Line {
	var out []Line
	s.mu.Lock()
	asked := s.changes
	s.mu.Unlock()
	ps, perr := s.opts.Admin.Proxies(ctx)
	if perr != nil && ctx.Err() != nil {
		return nil // the driver stopped polling: no word on the admin API
	}
	s.mu.Lock()
	if perr != nil {
		if s.reach == "" {
			s.reach = perr.Error()
			out = append(out, s.logf("session", "admin API %s does not answer: %v (still trying)", s.opts.Admin.BaseURL, perr))
		}
		s.mu.Unlock()
		return out
	}
	if s.reach != "" {
		s.reach = ""
		out = append(out, s.logf("session", "admin API %s answers again", s.opts.Admin.BaseURL))
	}
	s.proxies = ps
	out = append(out, s.background...)
	s.background = nil
	out = append(out, s.syncFaults(ps, asked)...)
	noEvents, seq := s.noEvents, s.eventSeq
	s.mu.Unlock()

	if !noEvents {
		evs, next, err := s.opts.Admin.Events(ctx, seq)
		if err == nil {
			s.mu.Lock()
			if next < s.eventSeq {
				// The admin API restarted: its log starts again.
				out = append(out, s.logf("session", "the admin API restarted: faults it had are gone"))
			}
			s.eventSeq = next
			for _, e := range evs {
				if l, ok := s.eventLine(e); ok {
					out = append(out, l)
				}
			}
			s.mu.Unlock()
		}
	}
	if s.opts.Agent != nil {
		s.syncRuntime(ctx, &out)
	}
	for _, p := range ps {
		if p.Protocol == harness.ProtocolTCP {
			continue // a tcp proxy counts no requests
		}
		s.pollTraffic(ctx, p.Name)
	}
	return out
}

// syncFaults folds the admin API's view of active faults into the
// timeline: faults gone are off (expired, cleared by someone else), faults
// new are on. s.mu held.
func (s *Session) syncFaults(ps []harness.ProxyInfo, asked uint64) []Line {
	var out []Line
	at := s.elapsed()
	seen := map[[2]string]harness.FaultInfo{}
	for _, p := range ps {
		for _, f := range p.Faults {
			seen[[2]string{p.Name, f.ID}] = f
		}
	}
	for _, f := range s.faults {
		if !f.Active() || f.Runtime {
			continue
		}
		if f.born > asked {
			delete(seen, [2]string{f.Proxy, f.ID}) // newer than the list
			continue
		}
		info, ok := seen[[2]string{f.Proxy, f.ID}]
		switch {
		case !ok:
			f.end(at)
			why := "ended"
			if !f.ExpiresAt.IsZero() && !s.now().Before(f.ExpiresAt.Add(-time.Second)) {
				why = "expired"
			}
			if s.noEvents {
				out = append(out, s.logf("fault", "%s on %s %s", f.ID, f.Proxy, why))
			}
		case Describe(info.Kind, info.Params) != f.apiView:
			// Changed by someone else: a new span from now.
			f.end(at)
			s.faults = append(s.faults, spanOf(f.Proxy, info, at, false))
		default:
			f.Matched, f.Injected, f.ConfiguredRate = info.Stats.Matched, info.Stats.Injected, info.Stats.ConfiguredRate
			if !info.ExpiresAt.IsZero() {
				f.ExpiresAt = info.ExpiresAt
			}
		}
		delete(seen, [2]string{f.Proxy, f.ID})
	}
	keys := slices.SortedFunc(maps.Keys(seen), func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	for _, k := range keys {
		clearedSince := slices.ContainsFunc(s.faults, func(f *FaultSpan) bool { return f.Proxy == k[0] && f.ID == k[1] && f.cleared > asked })
		if s.activeFault(k[0], k[1]) != nil || s.pending[k] > 0 || clearedSince {
			continue
		}
		s.faults = append(s.faults, spanOf(k[0], seen[k], at, false))
		if s.noEvents {
			out = append(out, s.logf("fault", "%s on %s appeared: %s", k[1], k[0], Describe(seen[k].Kind, seen[k].Params)))
		}
	}
	return out
}

// eventLine turns one admin API event into a log line; the session's own
// fault changes are already logged. s.mu held.
func (s *Session) eventLine(e harness.Event) (Line, bool) {
	at := max(e.At.Sub(s.start), 0)
	var text string
	switch e.Source {
	case "fault":
		if e.Kind == "added" || e.Kind == "replaced" || e.Kind == "cleared" || e.Kind == "removed" {
			if s.ownChange(e) {
				return Line{}, false
			}
		}
		text = fmt.Sprintf("%s %s on %s", e.ID, e.Kind, e.Proxy)
		if e.Detail != "" {
			text += ": " + e.Detail
		}
	case "guard":
		text = strings.TrimSpace(e.PolicyKind + " " + e.ID + " on " + e.Proxy + ": " + e.From + " → " + e.To)
	case "mark":
		if slices.ContainsFunc(s.marks, func(m Mark) bool { return m.Text == e.Detail }) {
			return Line{}, false
		}
		s.marks = append(s.marks, Mark{At: at, Text: e.Detail})
		text = e.Detail
	default:
		text = strings.TrimSpace(e.Kind + " " + e.ID + " " + e.Detail)
	}
	l := Line{At: at, Source: e.Source, Text: text}
	ev := report.Event{AtS: report.Secs(at), Source: e.Source, Kind: e.Kind, Detail: text}
	if e.Source == "guard" {
		// The report reads the policy's kind from the detail.
		ev.Kind, ev.Name, ev.From, ev.To = "transition", e.ID, e.From, e.To
		ev.Detail = harness.GuardDetail(e.PolicyKind, e.ID, e.From, e.To)
	}
	s.events = append(s.events, ev)
	s.lines = append(s.lines, l)
	if len(s.lines) > HistoryLines {
		s.lines = slices.Delete(s.lines, 0, len(s.lines)-HistoryLines)
	}
	return l, true
}

// ownChange says whether an event is one of the session's own commands,
// already on its log: a change of a fault the session added, at the time
// it recorded it.
func (s *Session) ownChange(e harness.Event) bool {
	at := e.At.Sub(s.start)
	for _, f := range s.faults {
		if !f.Mine || f.Proxy != e.Proxy || f.ID != e.ID {
			continue
		}
		near := func(t time.Duration) bool { return t > 0 && (at-t).Abs() < 2*time.Second }
		if e.Kind == "added" || e.Kind == "replaced" {
			if near(f.On) || (f.On == 0 && at < 2*time.Second) {
				return true
			}
		} else if near(f.Off) {
			return true
		}
	}
	return false
}

// syncRuntime ends runtime faults the agent no longer runs.
func (s *Session) syncRuntime(ctx context.Context, out *[]Line) {
	s.mu.Lock()
	any := false
	for _, f := range s.faults {
		any = any || (f.Runtime && f.Active())
	}
	s.mu.Unlock()
	if !any {
		return
	}
	infos, err := s.opts.Agent.List(ctx)
	if err != nil {
		return
	}
	running := map[string]bool{}
	for _, i := range infos {
		running[i.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Runtime && f.Active() && !running[f.ID] {
			f.end(s.elapsed())
			*out = append(*out, s.logf("fault", "%s in the target ended", f.ID))
		}
	}
}

// Faults returns a copy of the session's fault timeline, in the order the
// faults came on.
func (s *Session) Faults() []FaultSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FaultSpan, 0, len(s.faults))
	for _, f := range s.faults {
		out = append(out, *f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].On < out[j].On })
	return out
}

// Lines returns the event log's last lines.
func (s *Session) Lines() []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

// Proxies returns the proxies as last polled, guard policies included.
func (s *Session) Proxies() []harness.ProxyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.proxies)
}

// Close ends the session: its load stops, and faults are cleared — every
// fault on proxies the session started, or those it added on attached
// ones, never someone else's there. Runtime faults it started are
// stopped. keep leaves the session's faults on until their TTLs: a person
// who quit an attached session and chose to keep them.
func (s *Session) Close(ctx context.Context, keep bool) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, nil
	}
	s.closed = true
	s.mu.Unlock()
	_, _ = s.stopLoad()
	s.waitLoad(ctx)
	if keep {
		return 0, nil
	}
	var errs []error
	n := 0
	if s.opts.Owned {
		c, err := s.opts.Admin.Reset(ctx)
		n += c
		errs = append(errs, err)
	} else {
		for _, f := range s.Faults() {
			if !f.Mine || !f.Active() || f.Runtime {
				continue
			}
			err := s.opts.Admin.RemoveFault(ctx, f.Proxy, f.ID)
			var ae *harness.APIError
			if errors.As(err, &ae) && ae.Status == 404 {
				err = nil
			} else if err == nil {
				n++
			}
			errs = append(errs, err)
		}
	}
	if s.opts.Agent != nil && len(s.agentFaults) > 0 {
		for id := range s.agentFaults {
			if err := s.opts.Agent.Stop(ctx, id); err == nil {
				n++
			}
		}
	}
	s.mu.Lock()
	at := s.elapsed()
	for _, f := range s.faults {
		if f.Active() && (f.Mine || s.opts.Owned) {
			f.end(at)
		}
	}
	s.mu.Unlock()
	return n, errors.Join(errs...)
}

// takeBackground returns the load's own lines not yet handed out, for a
// driver to print before what came after them.
func (s *Session) takeBackground() []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.background
	s.background = nil
	return out
}

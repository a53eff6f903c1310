package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/inject"
)

// Event log defaults.
const (
	// DefaultEventLog is how many events the admin API keeps: the newest,
	// for a console that polls them; older ones are dropped.
	DefaultEventLog = 2000
	// MaxEventsPage is the most events one GET /api/v1/events answers.
	MaxEventsPage = 1000
	// MaxMarkLen bounds a mark's text, in bytes.
	MaxMarkLen = 500
	// DefaultExpiryCheck is how often the admin API sweeps its proxies'
	// boards for faults whose TTL ended, so that an expiry is heard (as
	// an event, a log line) within this long of it.
	DefaultExpiryCheck = 250 * time.Millisecond
)

// Event sources and kinds.
const (
	SourceFault = "fault"
	SourceGuard = "guard"
	SourceMark  = "mark"
	SourceProxy = "proxy"

	// Fault events: what happened to the fault ID on Proxy.
	FaultAdded    = "added"
	FaultReplaced = "replaced" // a POST of an id that was active
	FaultChanged  = "changed"  // a PUT, or a Toxiproxy update
	FaultRemoved  = "removed"
	FaultExpired  = "expired" // its TTL ended
	FaultCleared  = "cleared" // a clear of its proxy, or a reset
	// KindTransition is a guard policy's (or, from SourceProxy, an
	// upstream's) state change From → To.
	KindTransition = "transition"
	// KindMark is a mark: a note a person or a tool put on the timeline.
	KindMark = "mark"
	// ProxyDisabled and ProxyEnabled: a tcp proxy taken down (Toxiproxy's
	// enabled: false) and brought back up (or by a reset).
	ProxyDisabled = "disabled"
	ProxyEnabled  = "enabled"
)

// Event is one thing that happened under the admin API: a fault switched
// on, changed or off, a guard policy's state change, a mark. Seq numbers
// events from 1, in the order they were recorded.
type Event struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Proxy  string    `json:"proxy,omitempty"`
	Source string    `json:"source"`           // SourceFault, SourceGuard, SourceMark, SourceProxy
	Kind   string    `json:"kind"`             // FaultAdded …, KindTransition, KindMark, ProxyDisabled, ProxyEnabled
	ID     string    `json:"id,omitempty"`     // fault id, or guard policy name
	Detail string    `json:"detail,omitempty"` // e.g. "latency delay=200ms percent=30% ttl=5m0s", or the mark's text
	From   string    `json:"from,omitempty"`   // guard transition
	To     string    `json:"to,omitempty"`
	// PolicyKind is a guard transition's kind of policy (breaker,
	// adaptive_limit …), as the policies of a route or proxy share its
	// name; "" where the host did not say.
	PolicyKind string `json:"policy_kind,omitempty"`
}

// eventLog is a ring of the newest events.
type eventLog struct {
	mu   sync.Mutex
	ring []Event // at most size; the oldest at start once full
	// start is where the oldest event is in ring once it is full.
	start int
	size  int
	seq   uint64 // the last event's
}

// add numbers e and keeps it, dropping the oldest event when the ring is
// full. l.mu is held.
func (l *eventLog) add(e Event) Event {
	l.seq++
	e.Seq = l.seq
	if len(l.ring) < l.size {
		l.ring = append(l.ring, e)
		return e
	}
	l.ring[l.start] = e
	l.start = (l.start + 1) % l.size
	return e
}

// after returns up to limit events with Seq > after, oldest first, and the
// Seq to ask after next time.
func (l *eventLog) after(after uint64, limit int) ([]Event, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []Event{}
	n := len(l.ring)
	for i := range n {
		e := l.ring[(l.start+i)%n]
		if e.Seq <= after {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, e)
	}
	if len(out) > 0 {
		return out, out[len(out)-1].Seq
	}
	// A client ahead of the log asks of an Admin that restarted: it
	// starts over from the newest event.
	return out, min(after, l.seq)
}

// Record adds an event to the log, numbering it and stamping it with the
// time if it has none, and passes it to AdminOptions.OnEvent. Hosts record
// what the Admin cannot see itself: guard transitions of chains they
// built, marks. It is quick, and safe to call from a guard.Observer.
func (a *Admin) Record(e Event) { a.record(e) }

func (a *Admin) record(e Event) Event {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	a.events.mu.Lock()
	defer a.events.mu.Unlock()
	e = a.events.add(e)
	if a.opts.OnEvent != nil {
		// Under the lock, so that the hook hears events in order.
		a.opts.OnEvent(e)
	}
	return e
}

// Observer returns a guard.Observer that records the transitions of a
// proxy's policies as events: pass it in the guard.Options of the
// proxy's chains. It is a guard.KindObserver, so a guard.Builder's
// policies record their kinds too.
func (a *Admin) Observer(proxy string) guard.Observer {
	return guardObserver{a: a, proxy: proxy}
}

// guardObserver records a proxy's guard transitions, with the policies'
// kind once it is told it.
type guardObserver struct {
	a     *Admin
	proxy string
	kind  string
}

func (o guardObserver) Transition(policy, from, to string, at time.Time) {
	o.a.Record(Event{At: at, Proxy: o.proxy, Source: SourceGuard, Kind: KindTransition, ID: policy, PolicyKind: o.kind,
		From: from, To: to, Detail: GuardDetail(o.kind, policy, from, to)})
}

func (o guardObserver) ForKind(kind string) guard.Observer {
	o.kind = kind
	return o
}

// GuardDetail is a guard transition in one line, as events and reports
// give it: "breaker orders: closed → open", or without the kind when it
// is not known.
func GuardDetail(kind, policy, from, to string) string {
	d := policy + ": " + from + " → " + to
	if kind != "" {
		d = kind + " " + d
	}
	return d
}

// upstreamObserver records a proxy's upstreams ejected and back (see
// Options.Observer) as SourceProxy transitions.
func (a *Admin) upstreamObserver(proxy string) guard.Observer {
	return guard.ObserverFunc(func(upstream, from, to string, at time.Time) {
		a.Record(Event{At: at, Proxy: proxy, Source: SourceProxy, Kind: KindTransition, ID: upstream, From: from, To: to,
			Detail: "upstream " + upstream + ": " + from + " → " + to})
	})
}

// faultEvent records what happened to a fault of m.
func (a *Admin) faultEvent(m *managed, kind string, act *inject.Activation, ttl time.Duration) {
	a.Record(Event{Proxy: m.name, Source: SourceFault, Kind: kind, ID: act.ID, Detail: describeFault(act.Spec, ttl)})
}

// describeFault is a fault in one line: its kind and parameters, and its
// TTL when it has one.
func describeFault(spec inject.Spec, ttl time.Duration) string {
	p := inject.Params(spec)
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(spec.Kind())
	for _, k := range keys {
		v, _ := json.Marshal(p[k])
		fmt.Fprintf(&b, " %s=%s", k, strings.Trim(string(v), `"`))
	}
	if ttl > 0 {
		fmt.Fprintf(&b, " ttl=%s", ttl)
	}
	return b.String()
}

// watchExpiry makes m's board tell the Admin of faults whose TTL ended.
func (a *Admin) watchExpiry(m *managed) {
	m.unwatch = m.target.Board().OnExpire(func(act *inject.Activation) {
		a.Record(Event{At: act.Expires(), Proxy: m.name, Source: SourceFault, Kind: FaultExpired, ID: act.ID, Detail: describeFault(act.Spec, 0)})
	})
	a.sweepOnce.Do(func() {
		a.sweepWG.Go(a.sweepLoop)
	})
}

// sweepLoop sweeps every board for faults whose TTL ended until the
// Admin closes: the boards switch them off, and OnExpire hears them.
func (a *Admin) sweepLoop() {
	t := time.NewTicker(a.opts.ExpiryCheck)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		boards := make([]*inject.Board, 0, len(a.proxies))
		for _, m := range a.proxies {
			boards = append(boards, m.target.Board())
		}
		a.mu.Unlock()
		for _, b := range boards {
			b.Sweep()
		}
	}
}

// EventsPage is the answer of GET /api/v1/events.
type EventsPage struct {
	Events []Event `json:"events"`
	// Next is the seq to ask after next time.
	Next uint64 `json:"next"`
}

func (a *Admin) listEvents(w http.ResponseWriter, r *http.Request) {
	var after uint64
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after=%q: want the seq of the last event seen, 0 for all", s), nil)
			return
		}
		after = n
	}
	evs, next := a.events.after(after, MaxEventsPage)
	writeJSON(w, http.StatusOK, EventsPage{Events: evs, Next: next})
}

// MarkRequest is the body of POST /api/v1/marks.
type MarkRequest struct {
	Text string `json:"text"`
}

func (a *Admin) addMark(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req MarkRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `body is not a mark: `+err.Error()+`; send {"text": "deploy v2"}`, nil)
		return
	}
	text := strings.TrimSpace(req.Text)
	switch {
	case text == "":
		writeError(w, http.StatusBadRequest, "invalid mark", []inject.FieldProblem{{Field: "text", Msg: "say what happened, e.g. deploy v2"}})
		return
	case len(text) > MaxMarkLen || !utf8.ValidString(text):
		writeError(w, http.StatusBadRequest, "invalid mark", []inject.FieldProblem{{Field: "text", Msg: fmt.Sprintf("at most %d bytes of UTF-8", MaxMarkLen)}})
		return
	}
	writeJSON(w, http.StatusCreated, a.record(Event{Source: SourceMark, Kind: KindMark, Detail: text}))
}

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/resctl/resctl/internal/localapi"
	"github.com/resctl/resctl/internal/strictyaml"
)

// Defaults and caps.
const (
	// DefaultMaxTTL caps every fault's TTL.
	DefaultMaxTTL = 10 * time.Minute
	// DefaultMaxGoroutines caps a goroutine flood.
	DefaultMaxGoroutines = 100_000
	// DefaultMaxBytes caps memory pressure.
	DefaultMaxBytes = 1 << 30
	// MountPath is where the demo target mounts the agent, and where
	// resctl looks for it by default.
	MountPath = "/debug/resctl"
	maxBody   = 1 << 16
)

// Clock runs the TTL timers; tests replace it.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f after d; stop prevents the call if it has not
	// happened.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Options configure an Agent.
type Options struct {
	// MaxTTL caps every fault's TTL; zero means DefaultMaxTTL.
	MaxTTL time.Duration
	// MaxGoroutines caps a goroutine flood; zero means
	// DefaultMaxGoroutines.
	MaxGoroutines int
	// MaxBytes caps memory pressure; zero means DefaultMaxBytes.
	MaxBytes int64
	// Clock runs TTLs; nil means the real one.
	Clock Clock
	// AllowedHosts are names, beyond loopback and the address a request
	// arrived at, that requests may carry in their Host header (see
	// localapi.Options): the service's name when its agent is reached
	// from elsewhere on purpose.
	AllowedHosts []string
}

// Spec is a runtime fault's configuration, decoded from its parameters.
type Spec interface {
	Kind() string
	// Check reports problems, naming fields by their keys.
	Check(limits Options, problem func(field, msg string))
	// start begins the fault; stop ends it and waits for its goroutines.
	start() (stop func())
}

// kinds is the registry from a runtime fault's kind to its Spec with
// defaults.
var kinds = map[string]func() Spec{
	"goroutines": func() Spec { return &GoroutinesSpec{Mode: ModePark} },
	"memory":     func() Spec { return &MemorySpec{Mode: ModeBallast} },
	"cpu":        func() Spec { return &CPUSpec{Workers: 1, Percent: 100} },
	"gc":         func() Spec { return &GCSpec{} },
}

// Kinds lists the runtime fault kinds, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// NewSpec returns an empty Spec of the kind with its defaults.
func NewSpec(kind string) (Spec, bool) {
	f, ok := kinds[kind]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Problem is one thing wrong with a request.
type Problem struct {
	Field string `json:"field"`
	Msg   string `json:"message"`
}

// Agent runs runtime faults inside a service. It is an http.Handler; mount
// it under a prefix with http.StripPrefix.
type Agent struct {
	opts Options
	mux  *http.ServeMux
	// protected is the mux behind the checks that keep web pages out
	// (but GET /metrics; see ServeHTTP).
	protected http.Handler

	mu     sync.Mutex
	faults map[string]*running
	closed bool
}

type running struct {
	id       string
	spec     Spec
	params   json.RawMessage
	since    time.Time
	expires  time.Time
	stopOnce sync.Once
	stopFn   func()
	stopTTL  func() bool
}

// New returns an Agent with no faults.
func New(opts Options) *Agent {
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	if opts.MaxGoroutines <= 0 {
		opts.MaxGoroutines = DefaultMaxGoroutines
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	a := &Agent{opts: opts, mux: http.NewServeMux(), faults: map[string]*running{}}
	a.mux.HandleFunc("GET /faults", a.list)
	a.mux.HandleFunc("POST /faults", a.add)
	a.mux.HandleFunc("DELETE /faults", a.clear)
	a.mux.HandleFunc("DELETE /faults/{id}", a.remove)
	a.mux.Handle("GET /metrics", &runtimeMetrics{})
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	a.protected = localapi.Protect(a.mux, localapi.Options{AllowedHosts: opts.AllowedHosts})
	return a
}

// ServeHTTP implements http.Handler: it refuses web pages, whose requests
// a service's port takes as readily as resctl's (see localapi.Protect),
// and routes the rest. GET /metrics stays open to every scraper, as a
// service's own /metrics is: it reads, and changes nothing.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if r.Method == http.MethodGet && r.URL.Path == "/metrics" {
		a.mux.ServeHTTP(w, r)
		return
	}
	a.protected.ServeHTTP(w, r)
}

// Request is the body of POST /faults.
type Request struct {
	ID     string          `json:"id,omitempty"`
	Kind   string          `json:"kind"`
	TTL    string          `json:"ttl"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Info is a running fault as the agent shows it.
type Info struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Params  json.RawMessage `json:"params,omitempty"`
	Since   time.Time       `json:"since"`
	Expires time.Time       `json:"expires"`
}

func (f *running) info() Info {
	return Info{ID: f.id, Kind: f.spec.Kind(), Params: f.params, Since: f.since, Expires: f.expires}
}

func (f *running) stop() {
	f.stopOnce.Do(func() {
		f.stopTTL()
		f.stopFn()
	})
}

// Start switches a fault on for ttl; the agent ends it then on its own.
// It returns the problems of a bad request instead of an error, so the
// HTTP handler can report each.
func (a *Agent) Start(req Request) (Info, []Problem, error) {
	spec, ttl, probs := a.parse(req)
	if len(probs) > 0 {
		return Info{}, probs, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return Info{}, nil, errors.New("agent closed")
	}
	id := req.ID
	if id == "" {
		id = req.Kind
		for i := 2; a.faults[id] != nil; i++ {
			id = fmt.Sprintf("%s-%d", req.Kind, i)
		}
	}
	if a.faults[id] != nil {
		return Info{}, nil, fmt.Errorf("%w: %q", ErrDuplicate, id)
	}
	now := a.opts.Clock.Now()
	f := &running{id: id, spec: spec, params: req.Params, since: now, expires: now.Add(ttl)}
	f.stopFn = spec.start()
	f.stopTTL = a.opts.Clock.AfterFunc(ttl, func() { a.Stop(id) })
	a.faults[id] = f
	return f.info(), nil, nil
}

// ErrDuplicate is returned by Start when a fault with the id is running.
var ErrDuplicate = errors.New("fault already running")

// Stop ends the fault with the id; false if none runs.
func (a *Agent) Stop(id string) bool {
	a.mu.Lock()
	f := a.faults[id]
	delete(a.faults, id)
	a.mu.Unlock()
	if f == nil {
		return false
	}
	f.stop()
	return true
}

// Clear ends every fault and returns how many ran.
func (a *Agent) Clear() int {
	a.mu.Lock()
	fs := a.faults
	a.faults = map[string]*running{}
	a.mu.Unlock()
	for _, f := range fs {
		f.stop()
	}
	return len(fs)
}

// Close ends every fault and refuses new ones: call it when the service
// shuts down.
func (a *Agent) Close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.Clear()
}

// Active lists the running faults by id.
func (a *Agent) Active() []Info {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Info, 0, len(a.faults))
	for _, f := range a.faults {
		out = append(out, f.info())
	}
	slices.SortFunc(out, func(x, y Info) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func (a *Agent) parse(req Request) (Spec, time.Duration, []Problem) {
	var probs []Problem
	add := func(field, msg string) { probs = append(probs, Problem{field, msg}) }
	ttl, err := time.ParseDuration(req.TTL)
	switch {
	case req.TTL == "":
		add("ttl", fmt.Sprintf("required: every runtime fault ends on its own, at most %s", a.opts.MaxTTL))
	case err != nil:
		add("ttl", fmt.Sprintf("invalid duration %q: write it like 30s", req.TTL))
	case ttl <= 0:
		add("ttl", "must be above zero")
	case ttl > a.opts.MaxTTL:
		add("ttl", fmt.Sprintf("%s is over this agent's cap of %s", ttl, a.opts.MaxTTL))
	}
	spec, ok := NewSpec(req.Kind)
	if !ok {
		add("kind", fmt.Sprintf("unknown runtime fault kind %q; known kinds: %s", req.Kind, strings.Join(Kinds(), ", ")))
		return nil, 0, probs
	}
	reported := map[string]bool{}
	if p := strings.TrimSpace(string(req.Params)); p != "" && p != "null" {
		n, err := strictyaml.ParseValue(req.Params)
		if err != nil {
			add("params", err.Error())
			return nil, 0, probs
		}
		if n != nil {
			d := strictyaml.New()
			d.DecodeStruct(n, reflect.ValueOf(spec).Elem(), "")
			for _, p := range d.Problems {
				add("params."+p.Path, p.Msg)
				reported[p.Path] = true
			}
		}
	}
	spec.Check(a.opts, func(field, msg string) {
		if !reported[field] {
			add("params."+field, msg)
		}
	})
	return spec, ttl, probs
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *Agent) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"faults": a.Active()})
}

func (a *Agent) add(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "request body too large"})
		return
	}
	var req Request
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "body is not a fault request: " + err.Error()})
		return
	}
	info, probs, err := a.Start(req)
	switch {
	case len(probs) > 0:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid runtime fault", "problems": probs})
	case errors.Is(err, ErrDuplicate):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error()})
	default:
		writeJSON(w, http.StatusCreated, info)
	}
}

func (a *Agent) remove(w http.ResponseWriter, r *http.Request) {
	if !a.Stop(r.PathValue("id")) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": fmt.Sprintf("no runtime fault %q", r.PathValue("id"))})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stopped": r.PathValue("id")})
}

func (a *Agent) clear(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"cleared": a.Clear()})
}

// workers runs n copies of f until stop, which waits for them.
func workers(n int, f func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { f(ctx) })
	}
	return func() { cancel(); wg.Wait() }
}

// spinFor burns the CPU for d, yielding so the scheduler stays fair.
func spinFor(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for range 1000 {
		}
		runtime.Gosched()
	}
}

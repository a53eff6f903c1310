package harness

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/internal/localapi"
)

// Admin API defaults.
const (
	// DefaultFaultTTL ends a fault set through the admin API that did not
	// say how long it lasts, so a controller that goes away cannot leave
	// it behind.
	DefaultFaultTTL = 15 * time.Minute
	// MaxFaultTTL bounds how long a fault set from outside a run may last:
	// a TTL through the admin API (resctl's routes; Toxiproxy's toxics
	// take the default TTL), `resctl inject --for`, the chaos console's
	// for=. A longer one is refused, never shortened, so a typo such as
	// 5000h cannot leave a fault on for months after its controller is
	// gone. A day is the chaos console's whole session; a fault wanted
	// for longer is set again before it ends.
	MaxFaultTTL = 24 * time.Hour
	// DefaultMaxBody bounds admin request bodies.
	DefaultMaxBody = 1 << 20
	// DefaultAdminListen is where `resctl proxy` serves its admin API:
	// Toxiproxy's port, on loopback.
	DefaultAdminListen = "127.0.0.1:8474"
	// AdminAPIVersion names the resctl-native API's shape.
	AdminAPIVersion = "resctl.admin/v1"
	// ToxiproxyVersion is what /version answers, so Toxiproxy clients that
	// check it accept resctl.
	ToxiproxyVersion = "2.5.0"
)

// ErrAdminToken is returned when the admin API would listen beyond
// loopback without a bearer token.
var ErrAdminToken = errors.New("admin API beyond loopback needs a token")

// CheckAdminListen refuses an admin address beyond loopback without a
// token: the admin API switches faults on, so anyone who can reach it can
// break the service behind the proxy.
func CheckAdminListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("admin address %s: %w (set --token or RESCTL_ADMIN_TOKEN)", addr, ErrAdminToken)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Target is a proxy the admin API manages.
type Target interface {
	Board() *inject.Board
	Addr() string
	Upstream() string
}

// switchable is a Target that can be taken down and up (tcp proxies).
type switchable interface {
	Enabled() bool
	SetEnabled(bool) error
}

// retargetable is a Target whose upstream can change (tcp proxies).
type retargetable interface {
	SetUpstream(string) error
}

// AdminOptions configure an Admin.
type AdminOptions struct {
	// Token, when set, is required as "Authorization: Bearer TOKEN" on
	// every request.
	Token string
	// DefaultTTL applies to faults that name none, Toxiproxy's toxics
	// among them; zero means DefaultFaultTTL, and one over MaxFaultTTL
	// means MaxFaultTTL.
	DefaultTTL time.Duration
	// MaxBody bounds request bodies; zero means DefaultMaxBody.
	MaxBody int64
	// Version is reported by /api/v1/version.
	Version string
	// Seed seeds the boards of proxies created through the API.
	Seed uint64
	// Logger receives errors of proxies created through the API.
	Logger *slog.Logger
	// AllowedHosts are names, beyond loopback and the address a request
	// arrived at, that requests may carry in their Host header: the
	// names of a machine whose admin API is reached from elsewhere on
	// purpose. Any other name is refused as a DNS rebinding.
	AllowedHosts []string
	// OnEvent hears every event the Admin records (see Record), in
	// order, as it is recorded: `resctl proxy` logs them. It must be
	// quick and must not call the Admin.
	OnEvent func(Event)
	// EventLog is how many events GET /api/v1/events can look back on;
	// zero means DefaultEventLog.
	EventLog int
	// ExpiryCheck is how often the proxies' boards are swept for faults
	// whose TTL ended; zero means DefaultExpiryCheck.
	ExpiryCheck time.Duration
}

// Admin serves the admin API over a set of named proxies: resctl's own REST
// API under /api/v1, and Toxiproxy's HTTP API (/proxies, /populate, /reset,
// /version) so that Toxiproxy clients and test suites drive resctl
// unchanged. It is an http.Handler; mount it on an admin listener.
type Admin struct {
	opts AdminOptions
	mux  *http.ServeMux
	// protected is serve behind the checks that keep web pages out.
	protected http.Handler
	// open is set once the API listens beyond loopback (with a token):
	// only then may the Toxiproxy API open proxies beyond loopback.
	open atomic.Bool

	mu      sync.Mutex
	proxies map[string]*managed
	// procs are the host's processes, for process faults; nil if none.
	procs Processes

	events eventLog
	// The sweeper starts with the first proxy and ends with Close.
	sweepOnce sync.Once
	sweepWG   sync.WaitGroup
	stop      chan struct{}
	closeOnce sync.Once
}

// managed is one proxy under the admin API.
type managed struct {
	name     string
	protocol string
	target   Target
	owned    bool // created through the API: closed with the Admin
	// meta describes the faults set through the API, by id.
	meta map[string]faultMeta
	// unwatch stops the board's expiry reports to the Admin.
	unwatch func()
}

type faultMeta struct {
	ttl   time.Duration
	toxic *toxic // set when the fault came through the Toxiproxy API
}

// NewAdmin returns an Admin with no proxies.
func NewAdmin(opts AdminOptions) *Admin {
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = DefaultFaultTTL
	}
	opts.DefaultTTL = min(opts.DefaultTTL, MaxFaultTTL)
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.EventLog <= 0 {
		opts.EventLog = DefaultEventLog
	}
	if opts.ExpiryCheck <= 0 {
		opts.ExpiryCheck = DefaultExpiryCheck
	}
	a := &Admin{opts: opts, mux: http.NewServeMux(), proxies: map[string]*managed{}, stop: make(chan struct{})}
	a.events.size = opts.EventLog
	routes := []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /api/v1/version", a.version},
		{"GET /api/v1/proxies", a.listProxies},
		{"GET /api/v1/proxies/{name}", a.getProxy},
		{"GET /api/v1/proxies/{name}/faults", a.listFaults},
		{"POST /api/v1/proxies/{name}/faults", a.addFault},
		{"DELETE /api/v1/proxies/{name}/faults", a.clearFaults},
		{"GET /api/v1/proxies/{name}/faults/{id}", a.getFault},
		{"PUT /api/v1/proxies/{name}/faults/{id}", a.updateFault},
		{"DELETE /api/v1/proxies/{name}/faults/{id}", a.removeFault},
		{"GET /api/v1/proxies/{name}/traffic", a.traffic},
		{"POST /api/v1/reset", a.reset},
		{"GET /api/v1/events", a.listEvents},
		{"POST /api/v1/marks", a.addMark},
		{"GET /api/v1/processes", a.listProcesses},
		{"POST /api/v1/processes/{name}/{kind}", a.actOnProcess},
		{"/api/", a.notFound},
	}
	for _, r := range routes {
		a.mux.HandleFunc(r.pattern, r.h)
	}
	a.toxiproxyRoutes()
	a.protected = localapi.Protect(http.HandlerFunc(a.serve), localapi.Options{
		AllowedHosts: opts.AllowedHosts,
		// Toxiproxy's own clients send some updates as text/plain and
		// deletes with no Content-Type; its routes take them.
		Lenient: func(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/api/") },
	})
	return a
}

// listening tells the Admin an address it is served on, so that it knows
// whether it is reachable beyond loopback.
func (a *Admin) listening(addr string) {
	if host, _, err := net.SplitHostPort(addr); err == nil && !isLoopback(host) {
		a.open.Store(true)
	}
}

// Add puts a running proxy under the API as name.
func (a *Admin) Add(name, protocol string, t Target) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addLocked(name, protocol, t, false)
}

func (a *Admin) addLocked(name, protocol string, t Target, owned bool) error {
	if name == "" {
		return errors.New("a proxy needs a name")
	}
	if _, ok := a.proxies[name]; ok {
		return fmt.Errorf("proxy %q already exists", name)
	}
	m := &managed{name: name, protocol: protocol, target: t, owned: owned, meta: map[string]faultMeta{}}
	a.proxies[name] = m
	a.watchExpiry(m)
	return nil
}

// Reset switches every fault of every proxy off and brings every proxy
// that was taken down back up. It returns how many faults it cleared.
func (a *Admin) Reset() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.proxies {
		n += len(a.clearLocked(m))
		if s, ok := m.target.(switchable); ok && !s.Enabled() && s.SetEnabled(true) == nil {
			a.Record(Event{Proxy: m.name, Source: SourceProxy, Kind: ProxyEnabled})
		}
	}
	return n
}

// clearLocked switches every fault of m off, records each, and returns
// them as they ended. a.mu is held.
func (a *Admin) clearLocked(m *managed) []FaultInfo {
	out := []FaultInfo{}
	for _, act := range m.target.Board().Clear() {
		a.faultEvent(m, FaultCleared, act, m.meta[act.ID].ttl)
		out = append(out, m.faultInfo(act))
	}
	clear(m.meta)
	return out
}

// Close clears every fault, closes the proxies created through the API
// and stops the Admin's sweeps for expired faults.
func (a *Admin) Close(ctx context.Context) error {
	a.mu.Lock()
	var errs []error
	for name, m := range a.proxies {
		a.clearLocked(m)
		if m.owned {
			if c, ok := m.target.(interface{ Close(context.Context) error }); ok {
				errs = append(errs, c.Close(ctx))
			}
			m.unwatch()
			delete(a.proxies, name)
		}
	}
	a.mu.Unlock()
	a.closeOnce.Do(func() { close(a.stop) })
	a.sweepWG.Wait()
	return errors.Join(errs...)
}

// ServeHTTP implements http.Handler: it refuses web pages (see
// localapi.Protect), checks the token and the body size, and routes the
// request.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.protected.ServeHTTP(w, r)
}

func (a *Admin) serve(w http.ResponseWriter, r *http.Request) {
	if a.opts.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.opts.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="resctl"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token", nil)
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.opts.MaxBody)
	a.mux.ServeHTTP(w, r)
}

// --- resctl-native API --------------------------------------------------

// apiError is the body of every error answer.
type apiError struct {
	Error    string                `json:"error"`
	Problems []inject.FieldProblem `json:"problems,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string, problems []inject.FieldProblem) {
	writeJSON(w, code, apiError{Error: msg, Problems: problems})
}

// ProxyInfo is a proxy as the API shows it.
type ProxyInfo struct {
	Name     string      `json:"name"`
	Protocol string      `json:"protocol"`
	Listen   string      `json:"listen"`
	Upstream string      `json:"upstream"`
	Enabled  bool        `json:"enabled"`
	Faults   []FaultInfo `json:"faults"`
	// Guard is the proxy's guard policies, proxy-wide first, then each
	// route's, with their state.
	Guard []PolicyInfo `json:"guard,omitempty"`
}

// FaultInfo is an active fault as the API shows it, with what it did.
type FaultInfo struct {
	ID     string         `json:"id"`
	Kind   string         `json:"kind"`
	Params map[string]any `json:"params"`
	TTL    string         `json:"ttl,omitempty"`
	Stats  inject.Stats   `json:"stats"`
	// Fired is false for a fault that has not acted yet: it proves
	// nothing so far.
	Fired bool `json:"fired"`
	// ExpiresAt is when the fault's TTL ends it.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Replaced says that adding the fault replaced an active one of the
	// same id.
	Replaced bool `json:"replaced,omitempty"`
}

// FaultRequest is the body of POST and PUT on faults.
type FaultRequest struct {
	ID     string          `json:"id,omitempty"`
	Kind   string          `json:"kind"`
	TTL    string          `json:"ttl,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
}

func (a *Admin) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": a.opts.Version, "api": AdminAPIVersion, "toxiproxy": ToxiproxyVersion})
}

func (a *Admin) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), nil)
}

func (m *managed) info() ProxyInfo {
	p := ProxyInfo{Name: m.name, Protocol: m.protocol, Listen: m.target.Addr(), Upstream: m.target.Upstream(), Enabled: true, Faults: []FaultInfo{}}
	if s, ok := m.target.(switchable); ok {
		p.Enabled = s.Enabled()
	}
	active := m.target.Board().Active()
	for id := range m.meta { // forget faults that expired or were switched off
		if !slices.ContainsFunc(active, func(a *inject.Activation) bool { return a.ID == id }) {
			delete(m.meta, id)
		}
	}
	for _, act := range active {
		p.Faults = append(p.Faults, m.faultInfo(act))
	}
	if g, ok := m.target.(guardChained); ok {
		p.Guard = policyInfos(g.guardChains())
	}
	return p
}

func (m *managed) faultInfo(act *inject.Activation) FaultInfo {
	st := act.Stats()
	f := FaultInfo{ID: act.ID, Kind: act.Spec.Kind(), Params: inject.Params(act.Spec), Stats: st, Fired: st.Fired(), ExpiresAt: act.Expires()}
	if meta, ok := m.meta[act.ID]; ok && meta.ttl > 0 {
		f.TTL = meta.ttl.String()
	}
	return f
}

// layer is the fault layer of the proxy's protocol. A grpc proxy takes the
// grpc layer's kinds only (see inject.LayerGRPC): they select calls by
// method and metadata and fail them with gRPC statuses, where HTTP kinds
// would answer a gRPC client with HTTP errors it cannot read.
func (m *managed) layer() inject.Layer {
	switch m.protocol {
	case ProtocolTCP:
		return inject.LayerTCP
	case ProtocolGRPC:
		return inject.LayerGRPC
	}
	return inject.LayerHTTP
}

// proxy finds the named proxy or answers 404; the caller then holds a.mu.
func (a *Admin) proxy(w http.ResponseWriter, r *http.Request) (*managed, bool) {
	a.mu.Lock()
	m, ok := a.proxies[r.PathValue("name")]
	if !ok {
		a.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("no proxy named %q; known: %s", r.PathValue("name"), strings.Join(a.names(), ", ")), nil)
		return nil, false
	}
	return m, true
}

func (a *Admin) names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.namesLocked()
}

func (a *Admin) namesLocked() []string {
	var names []string
	for n := range a.proxies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (a *Admin) listProxies(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	out := []ProxyInfo{}
	for _, n := range a.namesLocked() {
		out = append(out, a.proxies[n].info())
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"proxies": out})
}

func (a *Admin) getProxy(w http.ResponseWriter, r *http.Request) {
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	info := m.info()
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

func (a *Admin) listFaults(w http.ResponseWriter, r *http.Request) {
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	info := m.info()
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"faults": info.Faults})
}

func (a *Admin) getFault(w http.ResponseWriter, r *http.Request) {
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	for _, f := range m.info().Faults {
		if f.ID == r.PathValue("id") {
			writeJSON(w, http.StatusOK, f)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no active fault %q on proxy %q", r.PathValue("id"), m.name), nil)
}

// readBody reads a request body within the size limit, answering 413 or
// 400 itself when it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit), nil)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error(), nil)
		return nil, false
	}
	return b, true
}

// ParseFaultRequest decodes and checks a fault request body for a proxy of
// the given layer: the envelope strictly as JSON, the parameters with the
// scenario's decoder and checks. The TTL defaults to defaultTTL and must be
// above zero and at most MaxFaultTTL. Every problem is returned.
func ParseFaultRequest(body []byte, layer inject.Layer, defaultTTL time.Duration) (FaultRequest, inject.Spec, time.Duration, []inject.FieldProblem) {
	var req FaultRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, nil, 0, []inject.FieldProblem{{Msg: "body is not a fault request: " + err.Error() + `; send {"kind": "latency", "ttl": "30s", "params": {...}}`}}
	}
	if dec.More() {
		return req, nil, 0, []inject.FieldProblem{{Msg: "body holds more than one JSON value"}}
	}
	var probs []inject.FieldProblem
	ttl := defaultTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		switch {
		case err != nil:
			probs = append(probs, inject.FieldProblem{Field: "ttl", Msg: fmt.Sprintf("invalid duration %q: write it like 30s or 15m", req.TTL)})
		case d <= 0:
			probs = append(probs, inject.FieldProblem{Field: "ttl", Msg: "must be above zero: every fault ends on its own"})
		case d > MaxFaultTTL:
			probs = append(probs, inject.FieldProblem{Field: "ttl", Msg: fmt.Sprintf("%s is over the maximum of %v: every fault ends on its own; set it again before it ends to keep it on", req.TTL, MaxFaultTTL)})
		}
		ttl = d
	}
	if req.ID != "" && !validID(req.ID) {
		probs = append(probs, inject.FieldProblem{Field: "id", Msg: "use letters, digits and - _ . / only, at most 128"})
	}
	if req.Kind == "" {
		probs = append(probs, inject.FieldProblem{Field: "kind", Msg: "name a fault kind; known: " + strings.Join(inject.KindsFor(layer), ", ")})
		return req, nil, 0, probs
	}
	params := []byte(req.Params)
	if string(params) == "null" {
		params = nil
	}
	spec, err := inject.ParseSpecFor(layer, req.Kind, params)
	var se *inject.SpecError
	if errors.As(err, &se) {
		for _, p := range se.Problems {
			field := "kind"
			if p.Field != "" {
				field = "params." + p.Field
			}
			probs = append(probs, inject.FieldProblem{Field: field, Msg: p.Msg})
		}
	}
	if len(probs) > 0 {
		return req, nil, 0, probs
	}
	return req, spec, ttl, nil
}

func validID(id string) bool {
	if len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./#", r)) {
			return false
		}
	}
	return true
}

func (a *Admin) addFault(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	req, spec, ttl, probs := ParseFaultRequest(body, m.layer(), a.opts.DefaultTTL)
	if len(probs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid fault", probs)
		return
	}
	// A fault's id is its kind unless the request names one: adding a
	// kind again replaces it, and an explicit id adds another on purpose
	// (or replaces the fault of that id).
	id := cmp.Or(req.ID, req.Kind)
	board := m.target.Board()
	aopts := inject.ActivateOptions{TTL: ttl}
	code, kind := http.StatusCreated, FaultAdded
	act, err := board.ActivateWith(id, spec, aopts)
	if errors.Is(err, inject.ErrDuplicate) {
		code, kind = http.StatusOK, FaultReplaced
		act, err = board.Replace(id, spec, aopts)
	}
	if err != nil {
		// The id is a run's fault armed for a phase to come (or narrowed
		// after its own): the run's to switch, not the API's.
		writeError(w, http.StatusConflict, fmt.Sprintf("fault %q on proxy %q belongs to the run, armed for its phase; give another id", id, m.name), nil)
		return
	}
	m.meta[id] = faultMeta{ttl: ttl}
	a.faultEvent(m, kind, act, ttl)
	info := m.faultInfo(act)
	info.Replaced = kind == FaultReplaced
	writeJSON(w, code, info)
}

func (a *Admin) updateFault(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	req, spec, ttl, probs := ParseFaultRequest(body, m.layer(), a.opts.DefaultTTL)
	id := r.PathValue("id")
	if req.ID != "" && req.ID != id {
		probs = append(probs, inject.FieldProblem{Field: "id", Msg: fmt.Sprintf("%q differs from the %q in the path", req.ID, id)})
	}
	if len(probs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid fault", probs)
		return
	}
	act, err := m.target.Board().Replace(id, spec, inject.ActivateOptions{TTL: ttl})
	if errors.Is(err, inject.ErrNotActive) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no active fault %q on proxy %q; POST to add one", id, m.name), nil)
		return
	}
	m.meta[id] = faultMeta{ttl: ttl}
	a.faultEvent(m, FaultChanged, act, ttl)
	writeJSON(w, http.StatusOK, m.faultInfo(act))
}

func (a *Admin) removeFault(w http.ResponseWriter, r *http.Request) {
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	act := m.target.Board().Deactivate(r.PathValue("id"))
	if act == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no active fault %q on proxy %q", r.PathValue("id"), m.name), nil)
		return
	}
	info := m.faultInfo(act)
	a.faultEvent(m, FaultRemoved, act, m.meta[act.ID].ttl)
	delete(m.meta, act.ID)
	writeJSON(w, http.StatusOK, info)
}

func (a *Admin) clearFaults(w http.ResponseWriter, r *http.Request) {
	m, ok := a.proxy(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"cleared": a.clearLocked(m)})
}

func (a *Admin) reset(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"cleared": a.Reset()})
}

// listenAdmin listens for an admin endpoint, with a connection cap of its
// own: the admin API answers from the descriptors the proxies' caps leave
// over (see DefaultMaxConns), and a flood of it cannot take them all.
func listenAdmin(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &limitListener{Listener: ln, c: newConnCounter(adminMaxConns)}, nil
}

// newAdminServer serves an admin endpoint with short timeouts: its
// clients are scrapers and controllers, not long-lived connections.
func newAdminServer(h http.Handler, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler: h, ErrorLog: errLog, IdleTimeout: adminIdleTimeout,
		ReadHeaderTimeout: DefaultReadHeaderTimeout, MaxHeaderBytes: DefaultMaxHeaderBytes,
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// AdminServer serves an Admin on a listener of its own, with /metrics and
// /healthz beside it: the admin endpoint of `resctl proxy`, whose proxies
// may all be tcp proxies without an HTTP admin listener of their own.
type AdminServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// ListenAdmin serves a on addr; metrics, when set, is served at /metrics.
// An address beyond loopback needs the Admin's token.
func ListenAdmin(addr string, a *Admin, metrics http.Handler) (*AdminServer, error) {
	if err := CheckAdminListen(addr, a.opts.Token); err != nil {
		return nil, err
	}
	ln, err := listenAdmin(addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	a.listening(addr)
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/", a)
	s := &AdminServer{
		srv:  newAdminServer(mux, slog.NewLogLogger(a.opts.Logger.Handler(), slog.LevelWarn)),
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the admin API's base URL.
func (s *AdminServer) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops serving, waiting up to ctx's deadline for requests in flight.
func (s *AdminServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}

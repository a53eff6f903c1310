package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/resctl/resctl/inject"
)

// The Toxiproxy-compatible API: Toxiproxy's routes, JSON shapes, status
// codes and toxic names, mapped onto tcp proxies and their connection
// faults. A toxic becomes a fault of the same name on the proxy's board;
// "timeout" is resctl's blackhole, a disabled proxy is Toxiproxy's "down".

// toxic is Toxiproxy's JSON shape of a toxic.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// toxicKinds maps Toxiproxy's toxic types to resctl's tcp kinds and their
// attributes to parameters: attribute → (parameter, unit suffix, factor).
var toxicKinds = map[string]struct {
	kind  string
	attrs map[string]toxicAttr
}{
	"latency":    {"latency", map[string]toxicAttr{"latency": {"delay", "ms", 1}, "jitter": {"jitter", "ms", 1}}},
	"bandwidth":  {"bandwidth", map[string]toxicAttr{"rate": {"rate", "", 1000}}}, // KB/s
	"slow_close": {"slow_close", map[string]toxicAttr{"delay": {"delay", "ms", 1}}},
	"timeout":    {"blackhole", map[string]toxicAttr{"timeout": {"timeout", "ms", 1}}},
	"reset_peer": {"reset_peer", map[string]toxicAttr{"timeout": {"timeout", "ms", 1}}},
	"slicer": {"slicer", map[string]toxicAttr{
		"average_size": {"average_size", "", 1}, "size_variation": {"size_variation", "", 1}, "delay": {"delay", "us", 1},
	}},
	"limit_data": {"limit_data", map[string]toxicAttr{"bytes": {"bytes", "", 1}}},
}

type toxicAttr struct {
	param  string
	unit   string
	factor float64
}

// tpError is Toxiproxy's error body.
type tpError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func tpFail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, tpError{Error: msg, Status: code})
}

// tpProxy is Toxiproxy's JSON shape of a proxy.
type tpProxy struct {
	Name     string  `json:"name"`
	Listen   string  `json:"listen"`
	Upstream string  `json:"upstream"`
	Enabled  bool    `json:"enabled"`
	Toxics   []toxic `json:"toxics"`
}

func (a *Admin) toxiproxyRoutes() {
	routes := []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /version", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain;charset=utf-8")
			fmt.Fprint(w, ToxiproxyVersion)
		}},
		{"POST /reset", func(w http.ResponseWriter, _ *http.Request) { a.Reset(); w.WriteHeader(http.StatusNoContent) }},
		{"GET /proxies", a.tpList},
		{"POST /proxies", a.tpCreate},
		{"POST /populate", a.tpPopulate},
		{"GET /proxies/{name}", a.tpShow},
		{"POST /proxies/{name}", a.tpUpdate},
		{"DELETE /proxies/{name}", a.tpDelete},
		{"GET /proxies/{name}/toxics", a.tpToxics},
		{"POST /proxies/{name}/toxics", a.tpAddToxic},
		{"GET /proxies/{name}/toxics/{toxic}", a.tpShowToxic},
		{"POST /proxies/{name}/toxics/{toxic}", a.tpUpdateToxic},
		{"DELETE /proxies/{name}/toxics/{toxic}", a.tpRemoveToxic},
	}
	for _, r := range routes {
		a.mux.HandleFunc(r.pattern, r.h)
	}
}

func (m *managed) tp() tpProxy {
	info := m.info()
	p := tpProxy{Name: m.name, Listen: info.Listen, Upstream: info.Upstream, Enabled: info.Enabled, Toxics: []toxic{}}
	for _, a := range m.target.Board().Active() {
		if t := m.meta[a.ID].toxic; t != nil {
			p.Toxics = append(p.Toxics, *t)
		} else if t, ok := asToxic(a); ok {
			p.Toxics = append(p.Toxics, t)
		}
	}
	return p
}

// asToxic shows a fault set through resctl's own API (or a scenario) as the
// toxic it amounts to, so Toxiproxy clients see it; refuse has no toxic.
func asToxic(a *inject.Activation) (toxic, bool) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var typ string
	var attrs map[string]any
	var cm inject.ConnMatch
	switch s := a.Spec.(type) {
	case *inject.TCPLatencySpec:
		typ, cm, attrs = "latency", s.ConnMatch, map[string]any{"latency": ms(s.Delay), "jitter": ms(s.Jitter)}
	case *inject.TCPBandwidthSpec:
		typ, cm, attrs = "bandwidth", s.ConnMatch, map[string]any{"rate": float64(s.Rate) / 1000}
	case *inject.SlowCloseSpec:
		typ, cm, attrs = "slow_close", s.ConnMatch, map[string]any{"delay": ms(s.Delay)}
	case *inject.BlackholeSpec:
		typ, cm, attrs = "timeout", s.ConnMatch, map[string]any{"timeout": ms(s.Timeout)}
	case *inject.ResetPeerSpec:
		typ, cm, attrs = "reset_peer", s.ConnMatch, map[string]any{"timeout": ms(s.Timeout)}
	case *inject.SlicerSpec:
		typ, cm, attrs = "slicer", s.ConnMatch, map[string]any{
			"average_size": float64(s.AverageSize), "size_variation": float64(s.SizeVariation), "delay": float64(s.Delay.Microseconds()),
		}
	case *inject.LimitDataSpec:
		typ, cm, attrs = "limit_data", s.ConnMatch, map[string]any{"bytes": float64(s.Bytes)}
	default:
		return toxic{}, false
	}
	stream := string(cm.Direction)
	if cm.Direction == inject.Both {
		stream = string(inject.Downstream) // Toxiproxy has no both; the closest
	}
	return toxic{Name: a.ID, Type: typ, Stream: stream, Toxicity: float32(cm.Percent.Fraction()), Attributes: attrs}, true
}

// tpGet finds a proxy for the Toxiproxy API; the caller then holds a.mu.
func (a *Admin) tpGet(w http.ResponseWriter, r *http.Request) (*managed, bool) {
	a.mu.Lock()
	m, ok := a.proxies[r.PathValue("name")]
	if !ok {
		a.mu.Unlock()
		tpFail(w, http.StatusNotFound, "proxy not found")
	}
	return m, ok
}

func (a *Admin) tpList(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	out := map[string]tpProxy{}
	for name, m := range a.proxies {
		out[name] = m.tp()
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) tpShow(w http.ResponseWriter, r *http.Request) {
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	p := m.tp()
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, p)
}

// tpInput is the body of proxy create and update.
type tpInput struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  *bool  `json:"enabled"`
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		tpFail(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

// checkProxyListen refuses a proxy listening beyond loopback unless the
// admin API itself does, with a token: otherwise whoever reaches the
// loopback-only API could open a relay into a loopback-only service for
// the whole network.
func (a *Admin) checkProxyListen(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", listen, err)
	}
	if isLoopback(host) || (a.open.Load() && a.opts.Token != "") {
		return nil
	}
	return fmt.Errorf("listen %s is beyond loopback: a proxy created through the API may listen there only when the admin API itself listens beyond loopback with a token", listen)
}

// createLocked starts a tcp proxy for the Toxiproxy API. a.mu is held.
func (a *Admin) createLocked(in tpInput) (*managed, int, error) {
	switch {
	case in.Name == "":
		return nil, http.StatusBadRequest, errors.New("missing required field: name")
	case in.Upstream == "":
		return nil, http.StatusBadRequest, errors.New("missing required field: upstream")
	}
	if _, ok := a.proxies[in.Name]; ok {
		return nil, http.StatusConflict, errors.New("proxy already exists")
	}
	listen := in.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if err := a.checkProxyListen(listen); err != nil {
		return nil, http.StatusForbidden, err
	}
	p, err := StartTCP(TCPOptions{Upstream: in.Upstream, Listen: listen, Board: inject.NewBoard(a.opts.Seed, nil), Logger: a.opts.Logger})
	if err != nil {
		return nil, http.StatusConflict, err
	}
	if in.Enabled != nil && !*in.Enabled {
		_ = p.SetEnabled(false)
	}
	_ = a.addLocked(in.Name, ProtocolTCP, p, true)
	return a.proxies[in.Name], 0, nil
}

func (a *Admin) tpCreate(w http.ResponseWriter, r *http.Request) {
	var in tpInput
	if !decodeJSON(w, r, &in) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m, code, err := a.createLocked(in)
	if err != nil {
		tpFail(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, m.tp())
}

func (a *Admin) tpPopulate(w http.ResponseWriter, r *http.Request) {
	var ins []tpInput
	if !decodeJSON(w, r, &ins) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []tpProxy{}
	for _, in := range ins {
		if m, ok := a.proxies[in.Name]; ok {
			if m.target.Upstream() == in.Upstream && (in.Listen == "" || m.target.Addr() == in.Listen) {
				out = append(out, m.tp())
				continue
			}
			if code, err := a.removeLocked(m); err != nil {
				writeJSON(w, code, map[string]any{"error": err.Error(), "status": code, "proxies": out})
				return
			}
		}
		m, code, err := a.createLocked(in)
		if err != nil {
			writeJSON(w, code, map[string]any{"error": err.Error(), "status": code, "proxies": out})
			return
		}
		out = append(out, m.tp())
	}
	writeJSON(w, http.StatusCreated, map[string]any{"proxies": out})
}

func (a *Admin) tpUpdate(w http.ResponseWriter, r *http.Request) {
	var in tpInput
	if !decodeJSON(w, r, &in) {
		return
	}
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	if in.Upstream != "" && in.Upstream != m.target.Upstream() {
		rt, ok := m.target.(retargetable)
		if !ok {
			tpFail(w, http.StatusConflict, "the upstream of a "+m.protocol+" proxy cannot change")
			return
		}
		if err := rt.SetUpstream(in.Upstream); err != nil {
			tpFail(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if in.Listen != "" && in.Listen != m.target.Addr() {
		tpFail(w, http.StatusConflict, "changing the listen address of a running proxy is not supported; delete and create it")
		return
	}
	if in.Enabled != nil {
		s, ok := m.target.(switchable)
		if !ok && !*in.Enabled {
			tpFail(w, http.StatusConflict, "only tcp proxies can be disabled")
			return
		}
		if ok && s.Enabled() != *in.Enabled {
			if err := s.SetEnabled(*in.Enabled); err != nil {
				tpFail(w, http.StatusConflict, err.Error())
				return
			}
			kind := ProxyDisabled
			if *in.Enabled {
				kind = ProxyEnabled
			}
			a.Record(Event{Proxy: m.name, Source: SourceProxy, Kind: kind})
		}
	}
	writeJSON(w, http.StatusOK, m.tp())
}

// removeLocked closes and forgets a proxy created through the API.
func (a *Admin) removeLocked(m *managed) (int, error) {
	if !m.owned {
		return http.StatusConflict, fmt.Errorf("proxy %q was configured at start and cannot be deleted", m.name)
	}
	a.clearLocked(m)
	m.unwatch()
	if c, ok := m.target.(*TCPProxy); ok {
		ctx, cancel := contextWithTimeout(DefaultDialTimeout)
		defer cancel()
		_ = c.Close(ctx)
	}
	delete(a.proxies, m.name)
	return 0, nil
}

func (a *Admin) tpDelete(w http.ResponseWriter, r *http.Request) {
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	if code, err := a.removeLocked(m); err != nil {
		tpFail(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Admin) tpToxics(w http.ResponseWriter, r *http.Request) {
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	p := m.tp()
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, p.Toxics)
}

// toxic finds an active fault shown as a toxic by name.
func (m *managed) toxic(name string) (toxic, bool) {
	ts := m.tp().Toxics
	i := slices.IndexFunc(ts, func(t toxic) bool { return t.Name == name })
	if i < 0 {
		return toxic{}, false
	}
	return ts[i], true
}

func (a *Admin) tpShowToxic(w http.ResponseWriter, r *http.Request) {
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	t, ok := m.toxic(r.PathValue("toxic"))
	if !ok {
		tpFail(w, http.StatusNotFound, "toxic not found")
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// toxicInput is a toxic as a client sends it: toxicity absent means 1.
type toxicInput struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   *float32       `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// toxicSpec turns a toxic into the tcp fault it means.
func toxicSpec(t toxic) (inject.Spec, error) {
	tk, ok := toxicKinds[t.Type]
	if !ok {
		return nil, fmt.Errorf("unknown toxic type: %s", t.Type)
	}
	if t.Stream != string(inject.Upstream) && t.Stream != string(inject.Downstream) {
		return nil, fmt.Errorf("invalid toxic stream: %s", t.Stream)
	}
	if !(t.Toxicity >= 0 && t.Toxicity <= 1) {
		return nil, fmt.Errorf("toxicity %v is outside 0..1", t.Toxicity)
	}
	params := map[string]any{"direction": t.Stream, "percent": math.Round(float64(t.Toxicity)*1e6) / 1e4}
	for name, v := range t.Attributes {
		attr, ok := tk.attrs[name]
		if !ok {
			return nil, fmt.Errorf("unknown attribute %q of toxic type %s", name, t.Type)
		}
		n, ok := v.(float64)
		if !ok {
			return nil, fmt.Errorf("attribute %s: expected a number, got %v", name, v)
		}
		switch {
		case attr.unit != "":
			params[attr.param] = fmt.Sprintf("%v%s", n*attr.factor, attr.unit)
		default:
			params[attr.param] = n * attr.factor
		}
	}
	raw, _ := json.Marshal(params)
	return inject.ParseSpecFor(inject.LayerTCP, tk.kind, raw)
}

func (a *Admin) tpAddToxic(w http.ResponseWriter, r *http.Request) {
	var in toxicInput
	if !decodeJSON(w, r, &in) {
		return
	}
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	if m.protocol != ProtocolTCP {
		tpFail(w, http.StatusConflict, fmt.Sprintf("toxics act on tcp proxies; %s speaks %s (use /api/v1)", m.name, m.protocol))
		return
	}
	t := toxic{Name: in.Name, Type: in.Type, Stream: in.Stream, Toxicity: 1, Attributes: in.Attributes}
	if t.Stream == "" {
		t.Stream = string(inject.Downstream)
	}
	if in.Toxicity != nil {
		t.Toxicity = *in.Toxicity
	}
	if t.Name == "" {
		t.Name = t.Type + "_" + t.Stream
	}
	if t.Attributes == nil {
		t.Attributes = map[string]any{}
	}
	spec, err := toxicSpec(t)
	if err != nil {
		tpFail(w, http.StatusBadRequest, err.Error())
		return
	}
	act, err := m.target.Board().ActivateWith(t.Name, spec, inject.ActivateOptions{TTL: a.opts.DefaultTTL})
	if err != nil {
		tpFail(w, http.StatusConflict, "toxic already exists")
		return
	}
	m.meta[t.Name] = faultMeta{ttl: a.opts.DefaultTTL, toxic: &t}
	a.faultEvent(m, FaultAdded, act, a.opts.DefaultTTL)
	writeJSON(w, http.StatusOK, t)
}

func (a *Admin) tpUpdateToxic(w http.ResponseWriter, r *http.Request) {
	var in toxicInput
	if !decodeJSON(w, r, &in) {
		return
	}
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	old, ok := m.toxic(r.PathValue("toxic"))
	if !ok {
		tpFail(w, http.StatusNotFound, "toxic not found")
		return
	}
	t := old
	t.Attributes = map[string]any{}
	for k, v := range old.Attributes {
		t.Attributes[k] = v
	}
	for k, v := range in.Attributes {
		t.Attributes[k] = v
	}
	if in.Toxicity != nil {
		t.Toxicity = *in.Toxicity
	}
	spec, err := toxicSpec(t)
	if err != nil {
		tpFail(w, http.StatusBadRequest, err.Error())
		return
	}
	act, err := m.target.Board().Replace(t.Name, spec, inject.ActivateOptions{TTL: a.opts.DefaultTTL})
	if err != nil {
		tpFail(w, http.StatusNotFound, "toxic not found")
		return
	}
	m.meta[t.Name] = faultMeta{ttl: a.opts.DefaultTTL, toxic: &t}
	a.faultEvent(m, FaultChanged, act, a.opts.DefaultTTL)
	writeJSON(w, http.StatusOK, t)
}

func (a *Admin) tpRemoveToxic(w http.ResponseWriter, r *http.Request) {
	m, ok := a.tpGet(w, r)
	if !ok {
		return
	}
	defer a.mu.Unlock()
	name := r.PathValue("toxic")
	if _, ok := m.toxic(name); !ok {
		tpFail(w, http.StatusNotFound, "toxic not found")
		return
	}
	act := m.target.Board().Deactivate(name)
	if act == nil {
		tpFail(w, http.StatusNotFound, "toxic not found")
		return
	}
	a.faultEvent(m, FaultRemoved, act, m.meta[name].ttl)
	delete(m.meta, name)
	w.WriteHeader(http.StatusNoContent)
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/internal/strictyaml"
)

// DefaultProxyName names the proxy of `resctl proxy` given by flags.
const DefaultProxyName = "default"

// ProxyConfig is one named proxy of a standalone harness.
type ProxyConfig struct {
	Name string `yaml:"name"`
	// Listen is the proxy's address; "127.0.0.1:0" picks a free port.
	Listen string `yaml:"listen"`
	// Upstream is a base URL for http, h2c and grpc, host:port for tcp.
	Upstream string `yaml:"upstream"`
	// Upstreams, instead of Upstream, are several instances of one
	// service (http, h2c and grpc), balanced by power of two choices with
	// passive ejection. Routes may have upstreams of their own too.
	Upstreams []string `yaml:"upstreams"`
	// Balance sets the ejection of failing upstreams and the connection
	// pools, for the proxy's upstreams and its routes' (http, h2c and
	// grpc), as a scenario's balance key does. Nil means
	// DefaultBalanceConfig; ReadProxyConfig gives the keys a file leaves
	// out their defaults.
	Balance *BalanceConfig `yaml:"balance"`
	// Protocol is http (the default), h2c, grpc or tcp.
	Protocol string `yaml:"protocol"`
	// Guard is the proxy-wide resilience chain and Routes the per-route
	// ones (http, h2c and grpc only). Serve re-reads them when the config file
	// changes and swaps them in, keeping every policy whose name, kind and
	// configuration are unchanged — with its state.
	Guard  []guard.Spec      `yaml:"guard"`
	Routes []guard.RouteSpec `yaml:"routes"`
	// TLSCert and TLSKey (PEM files, both or neither) make the proxy
	// serve TLS; UpstreamCA (PEM) holds the roots of an https://
	// upstream. See Options; http, h2c and grpc only.
	TLSCert    string `yaml:"tls_cert"`
	TLSKey     string `yaml:"tls_key"`
	UpstreamCA string `yaml:"upstream_ca"`
	// Limits bound the clients' connections; keys left out take
	// ServeOptions.Limits, then DefaultLimits. A tcp proxy takes
	// max_conns only.
	Limits ConnLimits `yaml:"limits"`
}

// balance is the proxy's Balance, or DefaultBalanceConfig without one.
func (p ProxyConfig) balance() BalanceConfig {
	if p.Balance == nil {
		return DefaultBalanceConfig()
	}
	return *p.Balance
}

// ConfigError lists every problem of a proxy config file, each with its
// place in the file.
type ConfigError struct {
	File     string
	Problems []strictyaml.Problem
}

func (e *ConfigError) Error() string {
	s := ""
	for i, p := range e.Problems {
		if i > 0 {
			s += "\n"
		}
		s += fmt.Sprintf("%s:%d:%d: ", e.File, p.Line, p.Col)
		if p.Path != "" {
			s += p.Path + ": "
		}
		s += p.Msg
	}
	return s
}

// ReadProxyConfig reads a YAML list of proxies, strictly: unknown keys,
// missing names or upstreams, duplicate names, unknown protocols,
// upstreams a proxy cannot forward to and impossible balance settings are
// all reported, with file:line:col.
func ReadProxyConfig(path string) ([]ProxyConfig, error) {
	_, root, err := strictyaml.ReadFile(context.Background(), path, strictyaml.Limits{})
	var de *strictyaml.DocumentError
	switch {
	case errors.As(err, &de):
		return nil, &ConfigError{File: path, Problems: []strictyaml.Problem{de.Problem}}
	case err != nil:
		return nil, err
	}
	d := strictyaml.New()
	var out []ProxyConfig
	if len(root.Content) == 0 {
		d.Add(strictyaml.Pos{Line: 1, Col: 1}, "", "empty file: list proxies as - {name: web, upstream: http://127.0.0.1:8080}")
	} else {
		d.Decode(root.Content[0], reflect.ValueOf(&out).Elem(), "")
	}
	seen := map[string]bool{}
	for i := range out {
		p := &out[i]
		path := fmt.Sprintf("[%d]", i)
		pos := strictyaml.NodePos(d.At[path])
		if p.Protocol == "" {
			p.Protocol = ProtocolHTTP
		}
		if p.Listen == "" {
			p.Listen = "127.0.0.1:0"
		}
		switch {
		case p.Name == "":
			d.Add(pos, path+".name", "every proxy needs a name")
		case seen[p.Name]:
			d.Add(pos, path+".name", "duplicate name %q", p.Name)
		}
		seen[p.Name] = true
		if err := checkProxyConfig(*p); err != nil {
			d.Add(pos, path, "%v", err)
		}
		checkUpstreams(*p, func(key string, err error) {
			d.Add(posOf(d, path+"."+key), path+"."+key, "%v", err)
		})
		checkBalance(d, path, p)
		checkGuard(d, path, p)
		checkLimits(d, path, p)
	}
	if len(d.Problems) > 0 {
		return nil, &ConfigError{File: path, Problems: d.Problems}
	}
	return out, nil
}

// checkGuard names the proxy's policies — after the proxy for its own
// chain, proxy/route for a route's, so names stay distinct across proxies —
// and reports their problems.
func checkGuard(d *strictyaml.Decoder, path string, p *ProxyConfig) {
	if p.Protocol == ProtocolTCP && (len(p.Guard) > 0 || len(p.Routes) > 0) {
		d.Add(strictyaml.NodePos(d.At[path]), path+".guard", "guard chains need an http, h2c or grpc proxy")
		return
	}
	report := func(q, msg string) { d.Add(posOf(d, q), q, "%s", msg) }
	guard.NameChain(path+".guard", p.Name, p.Guard, report)
	for i := range p.Routes {
		rt := &p.Routes[i]
		rp := fmt.Sprintf("%s.routes[%d]", path, i)
		if !strings.HasPrefix(rt.Match.Path, "/") {
			report(rp+".match.path", "must start with /, e.g. /api/orders")
		}
		if rt.Name == "" {
			rt.Name = rt.Match.Path
		}
		guard.NameChain(rp+".guard", p.Name+"/"+rt.Name, rt.Guard, report)
	}
}

// posOf is where the value at the key path q is in the file, or where its
// nearest enclosing value is when q itself is not there.
func posOf(d *strictyaml.Decoder, q string) strictyaml.Pos {
	for ; q != ""; q = q[:max(strings.LastIndexAny(q, ".["), 0)] {
		if n, ok := d.At[q]; ok {
			return strictyaml.NodePos(n)
		}
	}
	return strictyaml.Pos{Line: 1, Col: 1}
}

// checkUpstreams calls problem with the key (under the proxy) of every
// upstream of p that it cannot forward to, and of every upstream a list
// repeats. An upstream in two lists (the proxy's and a route's) is left to
// the proxy, which refuses it at start and at a reload. A proxy of an
// unknown protocol is not checked, since what its upstream should look
// like is unknown; checkProxyConfig reports it.
func checkUpstreams(p ProxyConfig, problem func(key string, err error)) {
	if !knownProtocol(p.Protocol) {
		return
	}
	if p.Upstream != "" {
		if err := CheckUpstream(p.Protocol, p.Upstream); err != nil {
			problem("upstream", err)
		}
	}
	if p.Protocol == ProtocolTCP {
		return // checkProxyConfig and checkGuard refuse the rest
	}
	list := func(key string, ups []string) {
		seen := map[string]bool{}
		for i, up := range ups {
			at := fmt.Sprintf("%s[%d]", key, i)
			if err := CheckUpstream(p.Protocol, up); err != nil {
				problem(at, err)
			} else if seen[up] {
				problem(at, fmt.Errorf("%q is listed twice", up))
			}
			seen[up] = true
		}
	}
	list("upstreams", p.Upstreams)
	for i, rt := range p.Routes {
		list(fmt.Sprintf("routes[%d].upstreams", i), rt.Upstreams)
	}
}

// checkBalance gives the balance keys the file leaves out, or leaves
// empty, their defaults, as a scenario's proxy gets them, and reports
// impossible values at their keys.
func checkBalance(d *strictyaml.Decoder, path string, p *ProxyConfig) {
	b := p.Balance
	if b == nil {
		return
	}
	bp := path + ".balance"
	if p.Protocol == ProtocolTCP {
		d.Add(posOf(d, bp), bp, "balance needs an http, h2c or grpc proxy; a tcp proxy forwards to one upstream")
		return
	}
	def := DefaultBalanceConfig()
	for _, k := range []struct {
		key string
		set func()
	}{
		{"ejection.consecutive_failures", func() { b.Ejection.ConsecutiveFailures = def.Ejection.ConsecutiveFailures }},
		{"ejection.base_time", func() { b.Ejection.BaseTime = def.Ejection.BaseTime }},
		{"ejection.max_time", func() { b.Ejection.MaxTime = def.Ejection.MaxTime }},
		{"ejection.max_percent", func() { b.Ejection.MaxPercent = def.Ejection.MaxPercent }},
		{"pool.idle_timeout", func() { b.Pool.IdleTimeout = def.Pool.IdleTimeout }},
	} {
		if n, ok := d.At[bp+"."+k.key]; !ok || n.Tag == "!!null" {
			k.set()
		}
	}
	b.Check(func(field, msg string) { d.Add(posOf(d, bp+"."+field), bp+"."+field, "%s", msg) })
}

// checkLimits reports impossible connection limits, and limits a tcp
// proxy has no use for, at their keys.
func checkLimits(d *strictyaml.Decoder, path string, p *ProxyConfig) {
	lp := path + ".limits"
	report := func(field, msg string) { d.Add(posOf(d, lp+"."+field), lp+"."+field, "%s", msg) }
	p.Limits.Check(report)
	if p.Protocol != ProtocolTCP {
		return
	}
	for _, k := range []string{"idle_timeout", "read_header_timeout", "max_header_bytes"} {
		if _, ok := d.At[lp+"."+k]; ok {
			report(k, "needs an http, h2c or grpc proxy; a tcp proxy takes max_conns only")
		}
	}
}

// guardSet builds a proxy's chains and keeps its policies across reloads.
type guardSet struct {
	b *guard.Builder
}

func (g *guardSet) build(pc ProxyConfig) (*guard.Chain, []Route, error) {
	var wide *guard.Chain
	var err error
	if len(pc.Guard) > 0 {
		if wide, err = g.b.Build(pc.Guard); err != nil {
			return nil, nil, err
		}
	}
	var routes []Route
	chains := []*guard.Chain{wide}
	for _, rt := range pc.Routes {
		c, err := g.b.Build(rt.Guard)
		if err != nil {
			return nil, nil, err
		}
		chains = append(chains, c)
		routes = append(routes, Route{Name: rt.Name, Path: rt.Match.Path, Method: rt.Match.Method, Chain: c, Upstreams: rt.Upstreams})
	}
	return wide, routes, nil
}

// retain makes the chains now serving the ones a next build reuses
// policies from.
func (g *guardSet) retain(wide *guard.Chain, routes []Route) {
	chains := []*guard.Chain{wide}
	for _, r := range routes {
		chains = append(chains, r.Chain)
	}
	g.b.Retain(chains...)
}

func knownProtocol(protocol string) bool {
	switch protocol {
	case ProtocolHTTP, ProtocolH2C, ProtocolGRPC, ProtocolTCP:
		return true
	}
	return false
}

func checkProxyConfig(p ProxyConfig) error {
	if !knownProtocol(p.Protocol) {
		return fmt.Errorf("protocol %q: use http, h2c, grpc or tcp", p.Protocol)
	}
	switch {
	case p.Upstream == "" && len(p.Upstreams) == 0:
		return errors.New("upstream is missing")
	case p.Upstream != "" && len(p.Upstreams) > 0:
		return errors.New("set upstream or upstreams, not both")
	case len(p.Upstreams) > 0 && p.Protocol == ProtocolTCP:
		return errors.New("upstreams needs an http, h2c or grpc proxy; a tcp proxy forwards to one upstream")
	}
	if (p.TLSCert == "") != (p.TLSKey == "") {
		return errors.New("tls_cert and tls_key go together")
	}
	if p.Protocol == ProtocolTCP && (p.TLSCert != "" || p.UpstreamCA != "") {
		return errors.New("TLS needs an http, h2c or grpc proxy; a tcp proxy passes TLS through as bytes")
	}
	return nil
}

// ServeOptions configure a standalone harness: several proxies and one
// admin API.
type ServeOptions struct {
	Proxies     []ProxyConfig
	AdminListen string
	Token       string
	// AdminAllowedHosts are the names, beyond loopback, that requests to
	// the admin API may carry in their Host header (AdminOptions).
	AdminAllowedHosts []string
	Seed              uint64
	Version           string
	Logger            *slog.Logger
	// ConfigPath, if set, is watched: when the file changes, the guard
	// chains of its http and h2c proxies are re-read and swapped in.
	// OnReload hears each attempt's outcome.
	ConfigPath string
	WatchEvery time.Duration // how often the file is checked; default 1s
	OnReload   func(error)
	// Limits are the connection limits of every proxy whose config
	// leaves them out; zero fields take DefaultLimits, which share the
	// file descriptors out among the proxies.
	Limits ConnLimits
	// OnEvent hears every event of the admin API's log (AdminOptions):
	// faults added, replaced, changed, removed, expired and cleared,
	// guard transitions, upstreams ejected and back, marks.
	OnEvent func(Event)
	// Processes, if set, are processes the host started (the demo target
	// of `resctl chaos --demo`), open to process faults through the API.
	Processes Processes
}

// Started describes a running standalone harness.
type Started struct {
	AdminURL string
	Proxies  []ProxyConfig // with their bound listen addresses
}

// Serve runs the proxies and the admin API until ctx ends (Ctrl-C), then
// clears every fault and closes everything. ready is called once all
// listen.
func Serve(ctx context.Context, opts ServeOptions, ready func(Started)) (err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckAdminListen(opts.AdminListen, opts.Token); err != nil {
		return err
	}
	admin := NewAdmin(AdminOptions{Token: opts.Token, Version: opts.Version, Seed: opts.Seed, Logger: logger, AllowedHosts: opts.AdminAllowedHosts, OnEvent: opts.OnEvent})
	if opts.Processes != nil {
		admin.SetProcesses(opts.Processes)
	}
	// The admin /metrics serves the process's Go and process metrics once,
	// the tcp proxies' fault boards, and every other proxy's own registry,
	// each series labelled with its proxy's name.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gatherers := prometheus.Gatherers{reg}

	var closers []func(context.Context) error
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		admin.Reset() // every fault off before anything closes
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i](cctx))
		}
	}()
	started := Started{}
	guarded := map[string]guardedProxy{}
	defaults := opts.Limits.Or(DefaultLimits(len(opts.Proxies)))
	for _, pc := range opts.Proxies {
		lim := pc.Limits.Or(defaults)
		if err := checkProxyConfig(pc); err != nil {
			return fmt.Errorf("proxy %q: %w", pc.Name, err)
		}
		var bad []error
		checkUpstreams(pc, func(key string, err error) { bad = append(bad, fmt.Errorf("%s: %w", key, err)) })
		if err := errors.Join(bad...); err != nil {
			return fmt.Errorf("proxy %q: %w", pc.Name, err)
		}
		board := inject.NewBoard(opts.Seed, nil)
		var t Target
		if pc.Protocol == ProtocolTCP {
			p, err := StartTCP(TCPOptions{Upstream: pc.Upstream, Listen: pc.Listen, Board: board, Logger: logger, MaxConns: lim.MaxConns})
			if err != nil {
				return fmt.Errorf("proxy %q: %w", pc.Name, err)
			}
			closers = append(closers, p.Close)
			t = p
			prometheus.WrapRegistererWith(prometheus.Labels{proxyLabel: pc.Name}, reg).MustRegister(board, p.Collector())
		} else {
			gs := &guardSet{b: guard.NewBuilder(guard.Options{Seed: opts.Seed, Observer: admin.Observer(pc.Name)})}
			wide, routes, err := gs.build(pc)
			if err != nil {
				return fmt.Errorf("proxy %q: %w", pc.Name, err)
			}
			gs.retain(wide, routes)
			p, err := Start(Options{
				Upstream: pc.Upstream, Upstreams: pc.Upstreams, Balance: pc.balance(),
				Listen: pc.Listen, Protocol: pc.Protocol, Board: board, Logger: logger, Guard: wide, Routes: routes,
				TLSCert: pc.TLSCert, TLSKey: pc.TLSKey, UpstreamCA: pc.UpstreamCA, Seed: opts.Seed, Limits: lim,
				Observer: admin.upstreamObserver(pc.Name),
			})
			if err != nil {
				return fmt.Errorf("proxy %q: %w", pc.Name, err)
			}
			closers = append(closers, p.Close)
			t = p
			guarded[pc.Name] = guardedProxy{p, gs, pc}
			// The proxy's registry carries its board, its guard chains and
			// its balancers as SetGuard last swapped them in, so these
			// metrics follow a reload.
			gatherers = append(gatherers, proxyMetrics{name: pc.Name, reg: p.Registry()})
		}
		if err := admin.Add(pc.Name, pc.Protocol, t); err != nil {
			return err
		}
		pc.Listen = t.Addr()
		started.Proxies = append(started.Proxies, pc)
	}
	closers = append(closers, admin.Close)
	srv, err := ListenAdmin(opts.AdminListen, admin, promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
	if err != nil {
		return err
	}
	closers = append(closers, srv.Close)
	started.AdminURL = srv.URL()
	if ready != nil {
		ready(started)
	}
	var wg sync.WaitGroup
	if opts.ConfigPath != "" {
		wg.Go(func() {
			guard.Watch(ctx, opts.ConfigPath, opts.WatchEvery, func() {
				err := reloadGuards(opts.ConfigPath, guarded)
				if opts.OnReload != nil {
					opts.OnReload(err)
				}
			})
		})
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

type guardedProxy struct {
	p       *Proxy
	gs      *guardSet
	started ProxyConfig // as the proxy started with it, before its listener was resolved
}

// RestartNeededError is what a reload reports when it swapped in every
// guard chain of the file, but the file also changed what a running
// proxy keeps until a restart: its listener, protocol, upstreams (beside
// its routes') or balance, or a proxy it adds. Changes says which, one
// phrase each.
type RestartNeededError struct{ Changes []string }

func (e *RestartNeededError) Error() string {
	return "guard chains reloaded; until a restart, the running proxies keep what else changed: " + strings.Join(e.Changes, "; ")
}

// proxyLabel names the proxy a series of the admin /metrics comes from.
const proxyLabel = "proxy"

// proxyMetrics gathers a proxy's registry for the admin /metrics, with a
// proxy label on every series, so that the proxies' series stay apart
// (resctl_proxy_requests_total has no other label that tells them apart).
// The registry's Go and process metrics are left out: they are the same
// process's, and the admin registry serves them once.
type proxyMetrics struct {
	name string
	reg  prometheus.Gatherer
}

// Gather implements prometheus.Gatherer.
func (g proxyMetrics) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.reg.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "go_") || strings.HasPrefix(mf.GetName(), "process_") {
			continue
		}
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: new(proxyLabel), Value: new(g.name)})
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		out = append(out, mf)
	}
	return out, err
}

// reloadGuards re-reads the config and swaps in each http proxy's new
// chains. A config with problems changes nothing; proxies added, and
// listeners, protocols, upstreams and balance settings changed, need a
// restart, and say so (*RestartNeededError).
func reloadGuards(path string, guarded map[string]guardedProxy) error {
	pcs, err := ReadProxyConfig(path)
	if err != nil {
		return err
	}
	// Routes' upstreams are checked for every proxy before any chain is
	// built or swapped: a refused file changes nothing anywhere.
	for _, pc := range pcs {
		if g, ok := guarded[pc.Name]; ok {
			var routes []Route
			for _, rt := range pc.Routes {
				routes = append(routes, Route{Name: rt.Name, Upstreams: rt.Upstreams})
			}
			if err := g.p.checkRoutes(routes); err != nil {
				return fmt.Errorf("proxy %q: %w", pc.Name, err)
			}
		}
	}
	// Then every chain is built before any is swapped in.
	type swap struct {
		name   string
		g      guardedProxy
		wide   *guard.Chain
		routes []Route
	}
	var swaps []swap
	var missing, changes []string
	for _, pc := range pcs {
		g, ok := guarded[pc.Name]
		if !ok {
			if pc.Protocol != ProtocolTCP {
				missing = append(missing, pc.Name)
			}
			continue
		}
		was := g.started
		for _, c := range []struct {
			changed bool
			what    string
		}{
			{pc.Listen != was.Listen, fmt.Sprintf("its listen address (%s, not %s)", was.Listen, pc.Listen)},
			{pc.Protocol != was.Protocol, fmt.Sprintf("its protocol (%s, not %s)", was.Protocol, pc.Protocol)},
			{pc.Upstream != was.Upstream || !slices.Equal(pc.Upstreams, was.Upstreams), "its upstreams"},
			{pc.balance() != was.balance(), "its balance"},
		} {
			if c.changed {
				changes = append(changes, fmt.Sprintf("proxy %s keeps %s", pc.Name, c.what))
			}
		}
		wide, routes, err := g.gs.build(pc)
		if err != nil {
			return fmt.Errorf("proxy %q: %w", pc.Name, err)
		}
		swaps = append(swaps, swap{pc.Name, g, wide, routes})
	}
	for _, sw := range swaps {
		if err := sw.g.p.SetGuard(sw.wide, sw.routes); err != nil {
			return fmt.Errorf("proxy %q: %w", sw.name, err) // checked above: not expected
		}
		sw.g.gs.retain(sw.wide, sw.routes)
	}
	if len(missing) > 0 {
		changes = append(changes, fmt.Sprintf("new proxies %s start on a restart", strings.Join(missing, ", ")))
	}
	if len(changes) > 0 {
		return &RestartNeededError{Changes: changes}
	}
	return nil
}

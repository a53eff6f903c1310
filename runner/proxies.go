package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/scenario"
)

// runProxy is a started harness proxy of a run, whatever its protocol.
type runProxy interface {
	URL() string
	AdminURL() string
	Close(context.Context) error
}

// proxyRun is one proxy of the run: its fault board, how early the phase
// clock switches its faults, and, once started, the proxy.
type proxyRun struct {
	scenario.NamedProxy
	board *inject.Board
	// lead is faultLead for a proxy the load goes through, whose requests
	// carry their phase; 0 for bytes and for a dependency's requests from
	// the service under test, which carry none: their faults are switched
	// exactly at the phase boundaries.
	lead time.Duration
	p    runProxy
	// link carries the proxy's upstream connections when it has network
	// faults; linkErr says why it could not be made.
	link    *netem.Link
	linkErr error
}

// dial is how the proxy reaches its upstreams: across its link, if any.
func (pr *proxyRun) dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if pr.link == nil {
		return nil
	}
	return pr.link.DialContext
}

// addr is the proxy's host:port.
func (pr *proxyRun) addr() string {
	return strings.TrimPrefix(pr.p.URL(), "http://")
}

// proxySet is every proxy of a run, in the scenario's order.
type proxySet struct {
	list   []*proxyRun
	admin  *harness.Admin
	gd     *guards
	logger *slog.Logger
	seed   uint64
}

func newProxySet(s *scenario.Scenario, admin *harness.Admin, gd *guards, logger *slog.Logger) *proxySet {
	ps := &proxySet{admin: admin, gd: gd, logger: logger, seed: s.Seed}
	for _, np := range s.AllProxies() {
		gd.addUpstreams(np.UpstreamStates())
		board := inject.NewBoard(s.Seed, nil)
		board.ScopeByHeader(load.PhaseHeader)
		pr := &proxyRun{NamedProxy: np, board: board}
		if np.FrontsTarget() && np.Protocol != harness.ProtocolTCP {
			pr.lead = faultLead
		}
		ps.list = append(ps.list, pr)
	}
	return ps
}

// byName returns the proxy of that name, or nil.
func (ps *proxySet) byName(name string) *proxyRun {
	for _, pr := range ps.list {
		if pr.Name == name {
			return pr
		}
	}
	return nil
}

// front is the proxy in front of the target, or nil when the load goes
// straight to the target.
func (ps *proxySet) front() *proxyRun {
	for _, pr := range ps.list {
		if pr.FrontsTarget() {
			return pr
		}
	}
	return nil
}

// startDependencies starts the proxies in front of dependencies: they
// need only their upstreams, and the target needs their addresses.
func (ps *proxySet) startDependencies() error {
	for _, pr := range ps.list {
		if pr.FrontsTarget() {
			continue
		}
		up := pr.Upstream // "" with upstreams, which start takes from pr
		if pr.Protocol == harness.ProtocolTCP {
			up = "tcp://" + up
		}
		if err := ps.start(pr, up); err != nil {
			return err
		}
	}
	return nil
}

// templateData is what the target's templates see: every started proxy.
func (ps *proxySet) templateData() scenario.TemplateData {
	d := scenario.TemplateData{Proxies: map[string]scenario.ProxyAddr{}}
	for _, pr := range ps.list {
		if pr.p == nil {
			continue
		}
		a := scenario.ProxyAddr{Addr: pr.addr(), URL: pr.p.URL()}
		d.Proxies[pr.Name] = a
		if pr.Name == scenario.MainProxy {
			d.Proxy = a
		}
	}
	return d
}

// start starts one proxy in front of upstream and registers it with the
// admin API under its name.
func (ps *proxySet) start(pr *proxyRun, upstream string) error {
	chains := ps.gd.chains[pr.Name]
	lim := connLimits(pr.Limits).Or(harness.DefaultLimits(len(ps.list)))
	if pr.Protocol == harness.ProtocolTCP {
		u, err := url.Parse(upstream)
		if err != nil {
			return fmt.Errorf("tcp proxy %s upstream %q: %w", pr.Name, upstream, err)
		}
		p, err := harness.StartTCP(harness.TCPOptions{Upstream: u.Host, Listen: pr.Listen, Board: pr.board, Logger: ps.logger, Dial: pr.dial(), MaxConns: lim.MaxConns})
		if err != nil {
			return fmt.Errorf("proxy %s: %w", pr.Name, err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), pr.board, p.Collector())
		srv, err := harness.ListenAdmin(pr.Admin, ps.admin, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if err != nil {
			_ = p.Close(context.Background())
			return fmt.Errorf("proxy %s: %w", pr.Name, err)
		}
		tp := &tcpRunProxy{p: p, admin: srv}
		if err := ps.admin.Add(pr.Name, harness.ProtocolTCP, p); err != nil {
			_ = tp.Close(context.Background())
			return err
		}
		pr.p = tp
		return nil
	}
	protocol := harness.ProtocolHTTP
	if pr.Protocol == harness.ProtocolH2C || pr.Protocol == harness.ProtocolGRPC {
		protocol = pr.Protocol
	}
	opts := harness.Options{
		Admin:       ps.admin,
		Upstream:    upstream,
		Balance:     balanceConfig(pr.Balance),
		Seed:        ps.seed,
		Listen:      pr.Listen,
		AdminListen: pr.Admin,
		Protocol:    protocol,
		Board:       pr.board,
		Logger:      ps.logger,
		Dial:        pr.dial(),
		Guard:       chains.proxyWide,
		Routes:      chains.routes,
		Limits:      lim,
	}
	if len(pr.Upstreams) > 0 {
		opts.Upstream, opts.Upstreams = "", pr.Upstreams
	}
	if addrs := pr.UpstreamAddrs(); len(addrs) > 0 {
		opts.Observer = ps.gd.upstreamObserver(pr.Name, addrs, pr.UpstreamStates())
	}
	p, err := harness.Start(opts)
	if err != nil {
		return fmt.Errorf("proxy %s: %w", pr.Name, err)
	}
	if err := ps.admin.Add(pr.Name, protocol, p); err != nil {
		_ = p.Close(context.Background())
		return err
	}
	pr.p = p
	return nil
}

// metricsURL is where the named proxy serves its metrics.
func (ps *proxySet) metricsURL(name string) string {
	if pr := ps.byName(name); pr != nil && pr.p != nil {
		return pr.p.AdminURL() + "/metrics"
	}
	return ""
}

// describe writes a line per started proxy in front of a dependency.
func (ps *proxySet) describe(w io.Writer) {
	for _, pr := range ps.list {
		if pr.p != nil && !pr.FrontsTarget() {
			fmt.Fprintf(w, "resctl: proxy %s (%s) %s → %s (admin API and metrics %s)\n", pr.Name, pr.Protocol, pr.addr(), cmp.Or(pr.Upstream, strings.Join(pr.Upstreams, ", ")), pr.p.AdminURL())
		}
	}
}

// clear switches every fault of every proxy off, network faults included.
func (ps *proxySet) clear() {
	for _, pr := range ps.list {
		pr.board.ClearAll()
		if pr.link != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = pr.link.Clear(ctx)
			cancel()
		}
	}
}

// close stops every started proxy and removes their links.
func (ps *proxySet) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, pr := range ps.list {
		if pr.p != nil {
			_ = pr.p.Close(ctx)
		}
	}
	ps.closeLinks()
}

// closeLinks removes the proxies' network links and the connections
// across them, once the load is over: an upstream stopping gracefully
// would otherwise wait on connections the relays opened to it.
func (ps *proxySet) closeLinks() {
	for _, pr := range ps.list {
		if pr.link != nil {
			_ = pr.link.Close()
		}
	}
}

// tcpRunProxy is a tcp proxy with the admin listener a run gives it.
type tcpRunProxy struct {
	p     *harness.TCPProxy
	admin *harness.AdminServer
}

// URL is where the load goes: HTTP over the proxied connection.
func (t *tcpRunProxy) URL() string      { return "http://" + t.p.Addr() }
func (t *tcpRunProxy) AdminURL() string { return t.admin.URL() }
func (t *tcpRunProxy) Close(ctx context.Context) error {
	return errors.Join(t.admin.Close(ctx), t.p.Close(ctx))
}

// connLimits is a scenario's limits key as the harness takes it.
func connLimits(l scenario.ConnLimits) harness.ConnLimits {
	return harness.ConnLimits{MaxConns: l.MaxConns, IdleTimeout: l.IdleTimeout, ReadHeaderTimeout: l.ReadHeaderTimeout, MaxHeaderBytes: l.MaxHeaderBytes}
}

// balanceConfig is a scenario's balance key as the harness takes it.
func balanceConfig(b scenario.Balance) harness.BalanceConfig {
	return harness.BalanceConfig{
		Ejection: harness.EjectionConfig{
			ConsecutiveFailures: b.Ejection.ConsecutiveFailures,
			BaseTime:            b.Ejection.BaseTime,
			MaxTime:             b.Ejection.MaxTime,
			MaxPercent:          b.Ejection.MaxPercent,
		},
		Pool: harness.PoolConfig{MaxConns: b.Pool.MaxConns, IdleTimeout: b.Pool.IdleTimeout, MaxLifetime: b.Pool.MaxLifetime},
	}
}

// addUpstreams makes upstreams stateful things SLAs read, healthy until an
// ejection: state("upstream", name).
func (g *guards) addUpstreams(names []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range names {
		k := stateKey{scenario.UpstreamStateKind, n}
		g.changes[k] = nil
		g.initial[k] = harness.UpstreamHealthy
	}
}

// upstreamObserver records a proxy's ejections and returns as transitions
// of its upstreams, named as SLAs name them: the balancer names each by
// its address, names[i] is the state name of addrs[i].
func (g *guards) upstreamObserver(proxy string, addrs, names []string) guard.Observer {
	byAddr := make(map[string]string, len(addrs))
	for i, a := range addrs {
		byAddr[a] = names[i]
	}
	return guard.ObserverFunc(func(addr, from, to string, at time.Time) {
		g.transition(scenario.UpstreamStateKind, proxy, byAddr[addr], from, to, at)
	})
}

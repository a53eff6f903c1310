package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/inject"
)

// Protocols the proxy speaks.
const (
	// ProtocolHTTP accepts HTTP/1.1 and h2c from clients and speaks
	// HTTP/1.1 to the upstream.
	ProtocolHTTP = "http"
	// ProtocolH2C accepts HTTP/1.1 and h2c and speaks h2c upstream.
	ProtocolH2C = "h2c"
)

// ErrorHeader marks responses the proxy produced itself because the
// upstream could not be reached.
const ErrorHeader = "X-Resctl-Error"

// Options configure a proxy.
type Options struct {
	// Upstream is the target's base URL.
	Upstream string
	// Upstreams, instead of Upstream, are several instances of it; each
	// request (each attempt of a retry or hedge) goes to the one a
	// Balancer picks. Balance configures ejection and, with one upstream
	// or several, the connection pools. Observer hears upstreams ejected
	// and back, Seed makes the picks reproducible, and Clock (nil: the
	// system's) times ejections.
	Upstreams []string
	Balance   BalanceConfig
	Observer  guard.Observer
	Seed      uint64
	Clock     guard.Clock
	// Listen and AdminListen are the proxy's and the admin endpoint's
	// addresses; "127.0.0.1:0" picks a free port.
	Listen      string
	AdminListen string
	// Protocol is ProtocolHTTP, ProtocolH2C or ProtocolGRPC.
	Protocol string
	// TLSCert and TLSKey, PEM files, make the proxy serve TLS to its
	// clients — h2 by ALPN, as gRPC clients need, or HTTP/1.1; both or
	// neither. UpstreamCA, a PEM file, holds the roots an https://
	// upstream's certificate must chain to; empty means the system's.
	TLSCert, TLSKey string
	UpstreamCA      string
	// Board holds the faults applied to proxied requests; nil means none.
	Board *inject.Board
	// Admin, when set, serves the admin API on the admin listener beside
	// /metrics and /healthz. An AdminListen beyond loopback then needs
	// the Admin's token. An empty AdminListen means no admin listener.
	Admin *Admin
	// Logger receives upstream errors; nil discards them.
	Logger *slog.Logger
	// Dial, when set, makes the connections to the upstreams (a network
	// link with faults of its own, say); nil dials directly.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Guard is the proxy-wide resilience chain and Routes the per-route
	// ones (see SetGuard); their metrics are served on /metrics.
	Guard  *guard.Chain
	Routes []Route
	// Limits bound the clients' connections; zero fields take
	// DefaultLimits(1).
	Limits ConnLimits
}

// Proxy is a running harness proxy.
type Proxy struct {
	srv, admin *http.Server
	// h1, for a plaintext http proxy, serves its clients' HTTP/1.x
	// itself and hands h2c to srv.
	h1         *h1Server
	ln, adminL net.Listener
	closeIdle  func() // closes the idle upstream connections
	registry   *prometheus.Registry
	board      *inject.Board
	upstream   string
	balancer   *Balancer
	// routeBal are the balancers of the routes with upstreams of their
	// own, by route name, as SetGuard last built them (under guardMu);
	// routeUps the upstream lists they were built from, and balOpts how.
	routeBal map[string]*Balancer
	routeUps map[string][]string
	balOpts  balancerOptions
	balC     *swapCollector
	tls      bool // clients speak TLS
	traffic  *traffic

	// inner is what the guard chains wrap: the fault board and the
	// reverse proxy. guarded is the whole chain, swapped atomically.
	inner   http.Handler
	guarded atomic.Pointer[http.Handler]
	guardMu sync.Mutex
	guardC  *swapCollector
	chains  atomic.Pointer[[]*guard.Chain] // as setGuard last swapped them in

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start listens on both addresses and serves in the background until Close.
func Start(opts Options) (*Proxy, error) {
	bal, err := newProxyBalancer(opts)
	if err != nil {
		return nil, err
	}
	board := opts.Board
	if board == nil {
		board = inject.NewBoard(0, nil)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	if opts.Admin != nil && opts.AdminListen != "" {
		if err := CheckAdminListen(opts.AdminListen, opts.Admin.opts.Token); err != nil {
			return nil, err
		}
	}
	srvTLS, upTLS, err := proxyTLS(opts)
	if err != nil {
		return nil, err
	}
	balOpts := balancerOptions{ejection: opts.Balance.Ejection, o: guard.Options{Clock: opts.Clock, Seed: opts.Seed, Observer: opts.Observer}}
	routeBal, routeUps, err := newRouteBalancers(opts.Routes, bal, nil, nil, balOpts)
	if err != nil {
		return nil, err
	}
	p := &Proxy{registry: prometheus.NewRegistry(), board: board, upstream: upstreamList(bal), balancer: bal,
		routeBal: routeBal, routeUps: routeUps, balOpts: balOpts, balC: &swapCollector{}, tls: srvTLS != nil}
	p.balC.set(balancerCollectors(bal, routeBal))
	p.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		board,
		p.balC,
	)
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			w.WriteHeader(499) // the client went away; nobody reads this
			return
		}
		logger.Debug("upstream error", "err", err, "path", r.URL.Path)
		if isGRPC(r) {
			writeGRPCUpstreamError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(ErrorHeader, "upstream")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, `{"error":%q}`, "upstream unreachable: "+err.Error())
	}
	dial := (&net.Dialer{Timeout: upstreamDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	if opts.Dial != nil {
		// Bounded as the default dialer is. (The h2c and grpc proxies'
		// http.Transport does not cancel a dial with the request that
		// asked for it; the http proxy's pool does.)
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, upstreamDialTimeout)
			defer cancel()
			return opts.Dial(ctx, network, addr)
		}
	}
	var rp http.Handler
	switch opts.Protocol {
	case ProtocolH2C, ProtocolGRPC:
		rp = p.reverseProxy(opts, bal, upTLS, dial, logger, onError)
	default:
		pool := newH1Pool(dial, upTLS, opts.Balance.Pool, opts.Clock)
		p.closeIdle = pool.closeIdle
		rp = &forwarder{pool: pool, bal: bal, logger: logger, onError: onError}
	}

	var now func() time.Time
	if opts.Clock != nil {
		now = opts.Clock.Now
	}
	p.traffic = newTraffic(now)
	m := newMetrics(p.registry, p.traffic)
	p.inner = m.countAttempts(board.Middleware(rp))
	p.setGuard(opts.Guard, opts.Routes)
	handler := m.middleware(newGRPCCalls(p.registry).middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*p.guarded.Load()).ServeHTTP(w, r)
	})))
	lim := opts.Limits.Or(DefaultLimits(1))
	conns := newConnCounter(lim.MaxConns)
	p.registry.MustRegister(conns)
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("proxy listen %s: %w", opts.Listen, err)
	}
	p.ln = &limitListener{Listener: ln, c: conns}
	if (opts.Protocol == ProtocolH2C || opts.Protocol == ProtocolGRPC) && srvTLS == nil {
		p.ln = bufferedListener{p.ln}
	}
	if opts.AdminListen != "" {
		if p.adminL, err = listenAdmin(opts.AdminListen); err != nil {
			p.ln.Close()
			return nil, fmt.Errorf("proxy admin listen %s: %w", opts.AdminListen, err)
		}
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	protos.SetHTTP2(srvTLS != nil)
	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	p.srv = &http.Server{
		Handler: handler, Protocols: &protos, ErrorLog: errLog, TLSConfig: srvTLS,
		IdleTimeout: lim.IdleTimeout, ReadHeaderTimeout: lim.ReadHeaderTimeout, MaxHeaderBytes: lim.MaxHeaderBytes,
	}

	if opts.Protocol != ProtocolH2C && opts.Protocol != ProtocolGRPC && srvTLS == nil {
		p.h1 = newH1Server(handler, lim, p.srv)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	if opts.Admin != nil {
		opts.Admin.listening(opts.AdminListen)
		mux.Handle("/", opts.Admin)
	}
	p.admin = newAdminServer(mux, errLog)

	p.serve(p.srv, p.ln)
	if p.adminL != nil {
		p.serve(p.admin, p.adminL)
	}
	return p, nil
}

func (p *Proxy) serve(s *http.Server, ln net.Listener) {
	if s == p.srv && p.h1 != nil {
		p.wg.Go(func() { _ = p.h1.Serve(ln) })
		return
	}
	if s == p.srv && p.tls {
		p.wg.Go(func() { _ = s.ServeTLS(ln, "", "") })
		return
	}
	p.wg.Go(func() { _ = s.Serve(ln) })
}

// Addr is the address clients send requests to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's base URL.
func (p *Proxy) URL() string {
	if p.tls {
		return "https://" + p.Addr()
	}
	return "http://" + p.Addr()
}

// AdminURL is the base URL of the proxy's admin endpoint (/metrics, and
// the admin API when the proxy has one); empty without an admin listener.
func (p *Proxy) AdminURL() string {
	if p.adminL == nil {
		return ""
	}
	return "http://" + p.adminL.Addr().String()
}

// Board is the proxy's fault board.
func (p *Proxy) Board() *inject.Board { return p.board }

// Upstream is the target's base URL; with several upstreams, their URLs
// joined by commas.
func (p *Proxy) Upstream() string { return p.upstream }

// Balancer is what picks the upstream of each request, for its Stats.
func (p *Proxy) Balancer() *Balancer { return p.balancer }

// Registry is the registry behind the proxy's /metrics, for callers that
// add collectors of their own.
func (p *Proxy) Registry() *prometheus.Registry { return p.registry }

// guardChains are the chains serving now, proxy-wide first.
func (p *Proxy) guardChains() []*guard.Chain { return *p.chains.Load() }

// Close stops both listeners, waits up to the context's deadline for
// requests in flight, and closes idle upstream connections. It is safe to
// call more than once.
func (p *Proxy) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		var front interface {
			Shutdown(context.Context) error
			Close() error
		} = p.srv
		if p.h1 != nil {
			front = p.h1
		}
		err1 := front.Shutdown(ctx)
		err2 := p.admin.Shutdown(ctx)
		if err1 != nil {
			front.Close()
		}
		if err2 != nil {
			p.admin.Close()
		}
		p.wg.Wait()
		p.closeIdle()
		p.closeErr = errors.Join(err1, err2)
	})
	return p.closeErr
}

// reverseProxy is the reverse proxy of the h2c and grpc proxies, whose
// upstreams speak HTTP/2: httputil.ReverseProxy over an http.Transport.
func (p *Proxy) reverseProxy(opts Options, bal *Balancer, upTLS *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	logger *slog.Logger, onError func(http.ResponseWriter, *http.Request, error)) http.Handler {
	dial = coalescingDials(dial)
	transport := upstreamTransport(opts.Protocol, dial)
	transport.TLSClientConfig = upTLS
	p.closeIdle = transport.CloseIdleConnections
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			b := bal
			if rb, ok := r.In.Context().Value(routeBalancerKey{}).(*Balancer); ok {
				b = rb
			}
			rewrite(b, r, b != bal)
			r.SetXForwarded()
			rewriteGRPC(r)
		},
		Transport:     &balancedTransport{next: opts.Balance.Pool.Transport(transport, guard.Options{Clock: opts.Clock}), b: bal},
		FlushInterval: -1, // stream responses as they come; faults may slow them
		BufferPool:    &bufferPool{},
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		ErrorHandler:  onError,
	}
}

// upstreamDialTimeout bounds a connect to an upstream.
const upstreamDialTimeout = 5 * time.Second

// upstreamTransport is the h2c and grpc proxies' way upstream: HTTP/2,
// over TLS too for grpc's https:// upstreams.
func upstreamTransport(protocol string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the client's own timeout
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true) // http:// upstreams
	if protocol == ProtocolGRPC {
		protos.SetHTTP2(true) // https:// upstreams
	}
	tr.Protocols = &protos
	return tr
}

type metrics struct {
	requests *prometheus.CounterVec
	// byCode are the requests' children by status code, each looked up
	// once: a lookup by label per request costs more than the count.
	byCode   [600]atomic.Pointer[prometheus.Counter]
	attempts prometheus.Counter
	duration prometheus.Histogram
	inFlight prometheus.Gauge
	traffic  *traffic
}

func newMetrics(reg prometheus.Registerer, t *traffic) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resctl_proxy_requests_total",
			Help: "Requests the harness proxy answered, by status code.",
		}, []string{"code"}),
		attempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resctl_proxy_attempts_total",
			Help: "Attempts the guard chain sent on towards the upstream — every try of a request, retries and hedges included, whether the upstream or a fault answered it. Over resctl_proxy_requests_total it is the retry and hedge amplification.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resctl_proxy_request_duration_seconds",
			Help:    "Time from a request's arrival at the proxy to the end of its response.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resctl_proxy_in_flight_requests",
			Help: "Requests the harness proxy is handling now.",
		}),
		traffic: t,
	}
	reg.MustRegister(m.requests, m.attempts, m.duration, m.inFlight)
	return m
}

// countAttempts counts each attempt that leaves the guard chain, before a
// fault can answer it.
func (m *metrics) countAttempts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.attempts.Inc()
		next.ServeHTTP(w, r)
	})
}

func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		returned := false // the handler panics when a response is cut
		defer func() {
			d := time.Since(start)
			var gc string
			if isGRPC(r) {
				gc = grpcCode(sw.Header())
			}
			// Before the metrics: a request counted there is in its second.
			m.traffic.record(sw.code, gc, !returned || sw.code >= 500 || (gc != "" && gc != "OK"), d)
			m.inFlight.Dec()
			m.requestsWith(sw.code).Inc()
			m.duration.Observe(d.Seconds())
		}()
		next.ServeHTTP(sw, r)
		returned = true
	})
}

// requestsWith is the requests counter of a status code.
func (m *metrics) requestsWith(code int) prometheus.Counter {
	if code < 0 || code >= len(m.byCode) {
		return m.requests.WithLabelValues(strconv.Itoa(code))
	}
	if c := m.byCode[code].Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(strconv.Itoa(code))
	m.byCode[code].Store(&c)
	return c
}

// statusWriter remembers the status code written through it. Unwrap lets
// http.ResponseController reach the underlying writer's Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	// Informational responses (103 Early Hints, which the reverse proxy
	// passes on) precede the real status; 101 is final, as in net/http.
	informational := code >= 100 && code < 200 && code != http.StatusSwitchingProtocols
	if !w.wrote && !informational {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// SetGuard swaps in a new proxy-wide chain and new routes. Requests in
// flight finish under the chains they entered; new requests meet the new
// ones. A caller that keeps a policy's state across a reload passes the
// same Policy values in the new chains. Routes' upstreams follow too: a
// route whose upstreams did not change keeps its balancer (latencies,
// ejections), others get new ones. Upstreams that cannot be balanced (an
// address malformed, or already the proxy's or another route's) are an
// error, and nothing changes.
func (p *Proxy) SetGuard(proxyWide *guard.Chain, routes []Route) error {
	p.guardMu.Lock()
	defer p.guardMu.Unlock()
	bals, ups, err := newRouteBalancers(routes, p.balancer, p.routeBal, p.routeUps, p.balOpts)
	if err != nil {
		return err
	}
	p.routeBal, p.routeUps = bals, ups
	p.balC.set(balancerCollectors(p.balancer, bals))
	p.setGuard(proxyWide, routes)
	return nil
}

// checkRoutes reports whether SetGuard would take the routes' upstreams,
// without changing anything.
func (p *Proxy) checkRoutes(routes []Route) error {
	p.guardMu.Lock()
	defer p.guardMu.Unlock()
	_, _, err := newRouteBalancers(routes, p.balancer, p.routeBal, p.routeUps, p.balOpts)
	return err
}

func (p *Proxy) setGuard(proxyWide *guard.Chain, routes []Route) {
	h := guarded(p.inner, proxyWide, routes, p.routeBal)
	p.guarded.Store(&h)
	var chains []*guard.Chain
	if proxyWide != nil {
		chains = append(chains, proxyWide)
	}
	for _, r := range routes {
		chains = append(chains, r.Chain)
	}
	p.chains.Store(&chains)
	if p.guardC == nil {
		p.guardC = &swapCollector{}
		p.registry.MustRegister(p.guardC)
	}
	cs := make([]prometheus.Collector, len(chains))
	for i, c := range chains {
		cs[i] = c.Collector()
	}
	p.guardC.set(cs)
}

// swapCollector serves the metrics of a set of collectors that SetGuard
// replaces on reload: the guard chains, the balancers. It is unchecked
// (Describe sends nothing), since what it reports changes.
type swapCollector struct {
	mu sync.Mutex
	c  []prometheus.Collector
}

func (s *swapCollector) set(cs []prometheus.Collector) {
	s.mu.Lock()
	s.c = cs
	s.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (s *swapCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (s *swapCollector) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	cs := s.c
	s.mu.Unlock()
	for _, c := range cs {
		c.Collect(ch)
	}
}

package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/resctl/resctl/inject/agent"
)

// DefaultListen is the address the standalone demo target listens on.
const DefaultListen = "127.0.0.1:8080"

// maxBodyBytes bounds POST bodies.
const maxBodyBytes = 64 << 10

// statusClientClosed is recorded when the client gives up before the
// response is ready (nginx's "client closed request").
const statusClientClosed = 499

// Options configures a demo Server.
type Options struct {
	Seed   int64        // seeds latency sampling; 0 means a fixed default so runs are reproducible
	Logger *slog.Logger // nil = discard
	// AllowedHosts are names, beyond loopback and its own address, that
	// the runtime-fault agent answers to (agent.Options.AllowedHosts).
	AllowedHosts []string
}

// Server is the demo service: an http.Handler with its own Prometheus
// registry, serving gRPC calls as well as the HTTP API.
type Server struct {
	log     *slog.Logger
	mux     *http.ServeMux
	reg     *prometheus.Registry
	metrics *metrics
	sampler *sampler
	// delay picks the latency for a request; tests may replace it before
	// the server handles any request.
	delay  func(latencyProfile) time.Duration
	nextID atomic.Int64
	// agent takes runtime faults (goroutines, memory, CPU, GC) from
	// resctl at /debug/resctl, as a real service would mount it.
	agent *agent.Agent
	// grpc serves the calls ServeHTTP recognises as gRPC.
	grpc *grpc.Server
}

var _ http.Handler = (*Server)(nil)

// New builds a demo Server. Several servers may coexist in one process.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	s := &Server{
		log:     log,
		mux:     http.NewServeMux(),
		reg:     reg,
		metrics: newMetrics(reg),
		sampler: newSampler(opts.Seed),
	}
	s.delay = s.sampler.sample
	s.nextID.Store(1000)

	routes := []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /api/orders", s.listOrders},
		{"GET /api/orders/{id}", s.getOrder},
		{"POST /api/orders", s.createOrder},
		{"GET /api/users/{id}", s.getUser},
		{"GET /api/slow", s.slow},
		{"GET /healthz", s.healthz},
	}
	for _, rt := range routes {
		s.mux.HandleFunc(rt.pattern, rt.h)
		s.metrics.duration.WithLabelValues(rt.pattern) // expose zeroed histograms
	}
	s.mux.Handle("GET /metrics", metricsHandler(reg, log))
	s.agent = agent.New(agent.Options{AllowedHosts: opts.AllowedHosts})
	s.mux.Handle(agent.MountPath+"/", http.StripPrefix(agent.MountPath, s.agent))
	s.grpc = newGRPCServer(s, newGRPCMetrics(reg, log))
	return s
}

// ServeHTTP hands gRPC calls to the gRPC server (which records demo_grpc_*
// metrics), routes the rest and records demo_http_* metrics. The route
// label is the matched mux pattern (or "unmatched"), never the raw path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isGRPC(r) {
		s.grpc.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()

	h, pattern := s.mux.Handler(r)
	route := pattern
	rec := &statusRecorder{ResponseWriter: w}
	if pattern == "" {
		route = routeUnmatched
		s.unmatched(rec, r, h)
	} else {
		// Dispatch through the mux (not h) so path values are populated.
		s.mux.ServeHTTP(rec, r)
	}

	code := rec.status()
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(methodLabel(r.Method), route, strconv.Itoa(code)).Inc()
	s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "route", route,
		"code", code, "duration", elapsed)
}

// unmatched turns the mux's plain-text 404/405 into a JSON error, keeping
// the status and Allow header the mux chose.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &headerProbe{header: make(http.Header)}
	h.ServeHTTP(probe, r)
	code := probe.code
	if code == 0 || code == http.StatusOK {
		code = http.StatusNotFound
	}
	if allow := probe.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	writeError(w, code, http.StatusText(code))
}

// headerProbe is a ResponseWriter that keeps the status and headers and
// discards the body.
type headerProbe struct {
	header http.Header
	code   int
}

func (p *headerProbe) Header() http.Header { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) {
	if p.code == 0 {
		p.code = http.StatusOK
	}
	return len(b), nil
}
func (p *headerProbe) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

// pause applies the sampled latency for p. It sets X-Demo-Latency and
// returns false (after recording 499) if the client went away first.
func (s *Server) pause(w http.ResponseWriter, r *http.Request, p latencyProfile) bool {
	d := s.delay(p)
	w.Header().Set("X-Demo-Latency", d.String())
	if wait(r.Context(), d) {
		return true
	}
	s.log.Debug("request cancelled during delay", "path", r.URL.Path, "delay", d,
		"cause", context.Cause(r.Context()))
	w.Header().Del("X-Demo-Latency")
	w.WriteHeader(statusClientClosed)
	return false
}

// --- data model ---------------------------------------------------------

// Item is one line of an order.
type Item struct {
	SKU        string `json:"sku"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// Order is the demo service's order resource.
type Order struct {
	ID         int64     `json:"id"`
	CustomerID int64     `json:"customer_id"`
	Status     string    `json:"status"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Currency   string    `json:"currency"`
	CreatedAt  time.Time `json:"created_at"`
}

// User is the demo service's user resource.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// epoch anchors synthetic timestamps so responses are stable.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	skus     = []string{"WIDGET-1", "GADGET-7", "SPROCKET-3", "GIZMO-42", "DOOHICKEY-9"}
	statuses = []string{"pending", "paid", "shipped", "delivered"}
	names    = []string{"Ada Lovelace", "Alan Turing", "Grace Hopper", "Barbara Liskov", "Ken Thompson", "Radia Perlman"}
)

// orderFor synthesises a stable order for id.
func orderFor(id int64) Order {
	n := int(id % 3)
	items := make([]Item, 0, n+1)
	for i := 0; i <= n; i++ {
		k := (id + int64(i)) % int64(len(skus))
		items = append(items, Item{
			SKU:        skus[k],
			Quantity:   1 + int((id+int64(i))%4),
			PriceCents: 499 + 250*k,
		})
	}
	return Order{
		ID:         id,
		CustomerID: 1 + id%50,
		Status:     statuses[id%int64(len(statuses))],
		Items:      items,
		TotalCents: total(items),
		Currency:   "EUR",
		CreatedAt:  epoch.Add(time.Duration(id%100000) * time.Minute),
	}
}

func userFor(id int64) User {
	name := names[id%int64(len(names))]
	return User{
		ID:        id,
		Name:      name,
		Email:     fmt.Sprintf("user%d@example.com", id),
		CreatedAt: epoch.Add(time.Duration(id%100000) * time.Hour),
	}
}

func total(items []Item) int64 {
	var t int64
	for _, it := range items {
		t += int64(it.Quantity) * it.PriceCents
	}
	return t
}

// --- handlers -------------------------------------------------------------

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	if !s.pause(w, r, latOrdersList) {
		return
	}
	orders := make([]Order, 0, 5)
	for id := int64(1); id <= 5; id++ {
		orders = append(orders, orderFor(id))
	}
	writeJSON(w, http.StatusOK, orders)
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r.PathValue("id"))
	if !s.pause(w, r, latOrderGet) {
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "order not found")
		return
	}
	writeJSON(w, http.StatusOK, orderFor(id))
}

// createOrderRequest is the accepted POST body.
type createOrderRequest struct {
	CustomerID int64  `json:"customer_id"`
	Items      []Item `json:"items"`
	Currency   string `json:"currency"`
}

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	req, code, msg := decodeCreate(w, r)
	if !s.pause(w, r, latOrderCreate) {
		return
	}
	if code != 0 {
		writeError(w, code, msg)
		return
	}
	if req.Items == nil {
		req.Items = []Item{}
	}
	if req.Currency == "" {
		req.Currency = "EUR"
	}
	o := Order{
		ID:         s.nextID.Add(1),
		CustomerID: req.CustomerID,
		Status:     "created",
		Items:      req.Items,
		TotalCents: total(req.Items),
		Currency:   req.Currency,
		CreatedAt:  time.Now().UTC().Truncate(time.Millisecond),
	}
	w.Header().Set("Location", "/api/orders/"+strconv.FormatInt(o.ID, 10))
	writeJSON(w, http.StatusCreated, o)
}

// decodeCreate reads and validates the POST body. A non-zero code is the
// error status to return.
func decodeCreate(w http.ResponseWriter, r *http.Request) (createOrderRequest, int, string) {
	var req createOrderRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return req, http.StatusRequestEntityTooLarge, "request body exceeds 64 KiB"
		}
		return req, http.StatusBadRequest, "cannot read request body"
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, http.StatusBadRequest, "invalid JSON: " + err.Error()
	}
	for _, it := range req.Items {
		if it.Quantity < 0 || it.PriceCents < 0 {
			return req, http.StatusBadRequest, "item quantity and price must not be negative"
		}
	}
	return req, 0, ""
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(r.PathValue("id"))
	if !s.pause(w, r, latUserGet) {
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	writeJSON(w, http.StatusOK, userFor(id))
}

func (s *Server) slow(w http.ResponseWriter, r *http.Request) {
	if !s.pause(w, r, latSlow) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "endpoint": "slow"})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok")
}

// parseID accepts positive decimal integers only.
func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// --- responses ------------------------------------------------------------

type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg, Status: code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"internal error","status":500}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

package demo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/resctl/resctl/internal/demo/demopb"
)

// maxListLimit bounds ListOrders, as the HTTP list is bounded.
const maxListLimit = 100

// defaultListLimit is what ListOrders streams when no limit is asked for,
// the same five orders GET /api/orders returns.
const defaultListLimit = 5

// isGRPC reports whether r is a gRPC call: HTTP/2 with a gRPC content type
// (application/grpc, application/grpc+proto, …). Anything else is the HTTP API.
func isGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// newGRPCServer builds the demo's gRPC server: the Orders service and server
// reflection, every call counted in m. It serves through ServeHTTP on the
// HTTP server's connections, so it owns no listener.
func newGRPCServer(s *Server, m *grpcMetrics) *grpc.Server {
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(m.unary),
		grpc.ChainStreamInterceptor(m.stream),
	)
	demopb.RegisterOrdersServer(gs, &orders{s: s})
	reflection.Register(gs)
	for _, md := range demopb.Orders_ServiceDesc.Methods {
		m.zero(demopb.Orders_ServiceDesc.ServiceName + "/" + md.MethodName)
	}
	for _, sd := range demopb.Orders_ServiceDesc.Streams {
		m.zero(demopb.Orders_ServiceDesc.ServiceName + "/" + sd.StreamName)
	}
	return gs
}

// orders implements demopb.OrdersServer on the demo's data model, with the
// latencies of the matching HTTP endpoints.
type orders struct {
	demopb.UnimplementedOrdersServer
	s *Server
}

func (o *orders) GetOrder(ctx context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
	if err := o.s.pauseRPC(ctx, latOrderGet); err != nil {
		return nil, err
	}
	if req.GetId() <= 0 {
		return nil, status.Errorf(codes.NotFound, "order %d not found", req.GetId())
	}
	return orderPB(orderFor(req.GetId())), nil
}

func (o *orders) ListOrders(req *demopb.ListOrdersRequest, stream grpc.ServerStreamingServer[demopb.Order]) error {
	limit := int64(req.GetLimit())
	if limit < 0 || limit > maxListLimit {
		return status.Errorf(codes.InvalidArgument, "limit %d is outside 0..%d", limit, maxListLimit)
	}
	if limit == 0 {
		limit = defaultListLimit
	}
	if err := o.s.pauseRPC(stream.Context(), latOrdersList); err != nil {
		return err
	}
	for id := int64(1); id <= limit; id++ {
		if err := stream.Send(orderPB(orderFor(id))); err != nil {
			return err
		}
	}
	return nil
}

func (o *orders) RecordOrders(stream grpc.ClientStreamingServer[demopb.Order, demopb.RecordOrdersResponse]) error {
	var resp demopb.RecordOrdersResponse
	for {
		order, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for _, it := range order.GetItems() {
			if it.GetQuantity() < 0 || it.GetPriceCents() < 0 {
				return status.Error(codes.InvalidArgument, "item quantity and price must not be negative")
			}
			resp.TotalCents += int64(it.GetQuantity()) * it.GetPriceCents()
		}
		resp.Count++
	}
	if err := o.s.pauseRPC(stream.Context(), latOrderCreate); err != nil {
		return err
	}
	return stream.SendAndClose(&resp)
}

func (o *orders) Track(stream grpc.BidiStreamingServer[demopb.TrackRequest, demopb.TrackUpdate]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := o.s.pauseRPC(stream.Context(), latOrderGet); err != nil {
			return err
		}
		id := req.GetOrderId()
		if id <= 0 {
			return status.Errorf(codes.NotFound, "order %d not found", id)
		}
		if err := stream.Send(&demopb.TrackUpdate{OrderId: id, Status: orderFor(id).Status}); err != nil {
			return err
		}
	}
}

// pauseRPC applies the sampled latency for p. A call its client abandons
// during the delay ends with the context's status (CANCELLED or
// DEADLINE_EXCEEDED), as an HTTP request ends with 499.
func (s *Server) pauseRPC(ctx context.Context, p latencyProfile) error {
	if wait(ctx, s.delay(p)) {
		return nil
	}
	return status.FromContextError(ctx.Err()).Err()
}

func orderPB(o Order) *demopb.Order {
	items := make([]*demopb.Item, len(o.Items))
	for i, it := range o.Items {
		items[i] = &demopb.Item{Sku: it.SKU, Quantity: int32(it.Quantity), PriceCents: it.PriceCents}
	}
	return &demopb.Order{
		Id:         o.ID,
		CustomerId: o.CustomerID,
		Status:     o.Status,
		Items:      items,
		TotalCents: o.TotalCents,
		Currency:   o.Currency,
		CreatedAt:  timestamppb.New(o.CreatedAt),
	}
}

// grpcMetrics count the gRPC calls the demo target handles. The method
// label is a registered method ("resctl.demo.v1.Orders/GetOrder"; the
// reflection service's calls count too): gRPC answers unknown methods
// before any interceptor runs, so arbitrary names cannot reach a label.
type grpcMetrics struct {
	log      *slog.Logger
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newGRPCMetrics(reg *prometheus.Registry, log *slog.Logger) *grpcMetrics {
	m := &grpcMetrics{
		log: log,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demo_grpc_requests_total",
			Help: "gRPC calls handled by the demo target, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "demo_grpc_request_duration_seconds",
			Help:    "Time spent handling gRPC calls in the demo target, by method; a stream's whole life.",
			Buckets: durationBuckets,
		}, []string{"method"}),
	}
	reg.MustRegister(m.calls, m.duration)
	return m
}

// zero exposes method's histogram before its first call.
func (m *grpcMetrics) zero(method string) { m.duration.WithLabelValues(method) }

func (m *grpcMetrics) observe(fullMethod string, err error, elapsed time.Duration) {
	method := strings.TrimPrefix(fullMethod, "/")
	code := status.Code(err)
	m.calls.WithLabelValues(method, code.String()).Inc()
	m.duration.WithLabelValues(method).Observe(elapsed.Seconds())
	m.log.Debug("rpc", "method", method, "code", code.String(), "duration", elapsed)
}

func (m *grpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, err, time.Since(start))
	return resp, err
}

func (m *grpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, err, time.Since(start))
	return err
}

// Command grpc-client is an orders service that calls a payments service
// over gRPC, its client guarded by resctl's guard package: the unary and
// stream client interceptors run a fallback, a breaker, a retry with a
// budget and a per-call timeout (sent to payments as grpc-timeout), read
// from YAML, around every call. Its /metrics shows the policies, so a scenario
// (testdata/scenarios/example-grpc-client.yaml) can check that the
// service's own breaker opens when payments slow down.
//
// The payments service is the standard gRPC health service, which the
// same binary serves with ROLE=payments; the orders service checks
// payments' health on every order.
//
//	ROLE=payments LISTEN=127.0.0.1:18093 grpc-client &
//	LISTEN=127.0.0.1:18092 PAYMENTS_ADDR=127.0.0.1:18093 grpc-client
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/resctl/resctl/guard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "grpc-client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	listen := os.Getenv("LISTEN")
	if listen == "" {
		return errors.New("set LISTEN")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if os.Getenv("ROLE") == "payments" {
		return servePayments(ctx, ln)
	}
	payments := os.Getenv("PAYMENTS_ADDR")
	if payments == "" {
		return errors.New("set PAYMENTS_ADDR")
	}
	return serve(ctx, ln, payments)
}

// servePayments serves the gRPC health service, reporting "payments" as
// serving, until ctx ends.
func servePayments(ctx context.Context, ln net.Listener) error {
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("payments", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() {
		<-ctx.Done()
		gs.Stop()
	}()
	return gs.Serve(ln)
}

// paymentsGuard guards the calls to payments, outermost first, written as
// a scenario's guard: key writes a chain: a fallback answers a failed or
// refused Check with its body, an empty message, whose status is UNKNOWN;
// a breaker opens for a second when half of the last 20 calls failed or
// took over 200 ms; a retry sends an UNAVAILABLE call once more within a
// budget of 20% of the calls; a timeout gives each attempt 300 ms.
const paymentsGuard = `
- fallback: {}
- breaker: {window: 20, min_calls: 10, slow_call: {over: 200ms, rate: 50%}, open_for: 1s, backoff: {max: 2s}}
- retry: {attempts: 2, backoff: {base: 10ms, max: 50ms}, budget: 20%}
- timeout: 300ms
`

func paymentsChain() (*guard.Chain, error) {
	specs, err := guard.Parse([]byte(paymentsGuard), "payments")
	if err != nil {
		return nil, err
	}
	return guard.NewBuilder(guard.Options{}).Build(specs)
}

// serve answers /api/orders from ln until ctx ends, with payments' health
// as the gRPC client at payments sees it through its guard.
func serve(ctx context.Context, ln net.Listener, payments string) error {
	chain, err := paymentsChain()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("passthrough:///"+payments,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(chain)),
		grpc.WithStreamInterceptor(guard.StreamClientInterceptor(chain)))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	reg := prometheus.NewRegistry()
	unknown := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_payments_unknown_total", Help: "Orders for which payments' state was unknown (the fallback's answer)."})
	reg.MustRegister(collectors.NewGoCollector(), chain.Collector(), unknown)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Check(r.Context(), &healthpb.HealthCheckRequest{Service: "payments"})
		if err != nil {
			// Only a caller that went away gets here: the fallback
			// answers every failure and refusal.
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_UNKNOWN {
			unknown.Inc()
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"orders":[{"id":1}],"payments":%q}`+"\n", resp.GetStatus())
	})

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Command http-client is an orders service whose outgoing HTTP client is
// guarded by resctl's guard package: every call to its payments API goes
// through a guard.Transport running a fallback, a breaker, a retry with a
// budget and a per-attempt timeout. Its /metrics shows the policies, so a
// scenario (testdata/scenarios/example-http-client.yaml) can check that the
// service's own breaker opens when payments slow down, and that its users
// are served from the fallback meanwhile.
//
//	LISTEN=127.0.0.1:18090 PAYMENTS_URL=http://127.0.0.1:8080 http-client
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/resctl/resctl/guard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv("LISTEN"), os.Getenv("PAYMENTS_URL")); err != nil {
		fmt.Fprintln(os.Stderr, "http-client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, payments string) error {
	if listen == "" || payments == "" {
		return errors.New("set LISTEN and PAYMENTS_URL")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return serve(ctx, ln, payments)
}

// paymentsChain is the guard of the calls to payments, outermost first:
//   - a fallback answers for the whole chain: a stale but useful body
//     when payments fail or the breaker refuses;
//   - a breaker opens for a second when half of the last 20 calls failed
//     or took over 200 ms;
//   - a retry sends a failed GET once more, within a budget of 20% of the
//     calls, so that an outage does not double the load on payments;
//   - a timeout bounds each attempt to 300 ms, and tells payments so in
//     X-Request-Timeout.
func paymentsChain() (*guard.Chain, error) {
	fb := guard.DefaultFallbackConfig()
	fb.Body = `{"payments":"unavailable","stale":true}`
	br := guard.DefaultBreakerConfig()
	br.Window = guard.Window{Calls: 20}
	br.MinCalls = 10
	br.SlowCall = guard.SlowCallConfig{Over: 200 * time.Millisecond, Rate: 50}
	br.OpenFor = time.Second
	br.Backoff.Max = 2 * time.Second
	rt := guard.DefaultRetryConfig()
	rt.Attempts = 2
	rt.Backoff = guard.RetryBackoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2, Jitter: guard.JitterFull}
	rt.Budget.Ratio = 20
	to := guard.DefaultTimeoutConfig()
	to.After = 300 * time.Millisecond

	var ps []guard.Policy
	for _, c := range []guard.Config{&fb, &br, &rt, &to} {
		p, err := c.Build("payments", guard.Options{})
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return guard.NewChain(ps...), nil
}

// serve answers /api/orders with the order and what payments said, from
// ln, until ctx ends.
func serve(ctx context.Context, ln net.Listener, payments string) error {
	chain, err := paymentsChain()
	if err != nil {
		return err
	}
	client := &http.Client{Transport: guard.NewTransport(http.DefaultTransport, chain)}

	reg := prometheus.NewRegistry()
	fallbacks := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_fallbacks_total", Help: "Orders answered with the payments fallback."})
	reg.MustRegister(collectors.NewGoCollector(), chain.Collector(), fallbacks)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, payments+"/api/users/1", nil)
		resp, err := client.Do(req)
		if err != nil {
			// Only a caller that went away gets here: the fallback
			// answers every failure and refusal.
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if resp.Header.Get(guard.FallbackHeader) != "" {
			fallbacks.Inc()
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"orders":[{"id":1}],"payments":%s}`+"\n", body)
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

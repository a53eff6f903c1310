// Command orders is a small service written for resctl's dependency
// topology example: its /api/orders calls a downstream "payments" API
// through a circuit breaker built with resctl's guard package as a
// library, and answers from a fallback when the breaker is open or the call
// fails. Its /metrics shows the breaker's state, so a scenario can assert
// that *the service's own* breaker opened when its dependency slowed down.
//
//	LISTEN=127.0.0.1:18080 PAYMENTS_URL=http://127.0.0.1:9090 orders
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run() error {
	listen, payments := os.Getenv("LISTEN"), os.Getenv("PAYMENTS_URL")
	if listen == "" || payments == "" {
		return errors.New("set LISTEN and PAYMENTS_URL")
	}
	// Calls slower than 200 ms count as slow; half of the last 20 calls
	// slow (or failed) opens the breaker for a second.
	cfg := guard.DefaultBreakerConfig()
	cfg.Window = guard.Window{Calls: 20}
	cfg.MinCalls = 10
	cfg.SlowCall = guard.SlowCallConfig{Over: 200 * time.Millisecond, Rate: 50}
	cfg.OpenFor = time.Second
	cfg.Backoff.Max = 5 * time.Second
	breaker, err := guard.NewBreaker("payments", cfg, guard.Options{})
	if err != nil {
		return err
	}
	chain := guard.NewChain(breaker)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), chain.Collector())
	fallbacks := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_fallbacks_total", Help: "Orders answered from the fallback."})
	reg.MustRegister(fallbacks)

	client := &http.Client{Timeout: time.Second}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		err := chain.Do(r.Context(), &guard.Request{Route: "/payments", Method: http.MethodGet}, func(ctx context.Context) guard.Outcome {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, payments+"/api/users/1", nil)
			resp, err := client.Do(req)
			if err != nil {
				return guard.Outcome{Err: err}
			}
			defer resp.Body.Close()
			body, _ = io.ReadAll(resp.Body)
			if resp.StatusCode >= 500 {
				body = nil
			}
			return guard.Outcome{Status: resp.StatusCode}
		})
		w.Header().Set("Content-Type", "application/json")
		if err != nil || body == nil {
			fallbacks.Inc()
			fmt.Fprint(w, `{"orders":[],"payments":"unavailable","stale":true}`)
			return
		}
		fmt.Fprintf(w, `{"orders":[{"id":1}],"payments":%s}`, body)
	})

	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

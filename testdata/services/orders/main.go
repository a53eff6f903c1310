// Command orders is a small service written for resctl's dependency
// topology example: its /api/orders calls a downstream "payments" API
// through a circuit breaker built with resctl's guard package as a
// library, and answers from a fallback when the breaker is open or the call
// fails. Its /metrics shows the breaker's state, so a scenario can assert
// that *the service's own* breaker opened when its dependency slowed down.
// With STOCK_URL it also asks a second dependency, "stock", for every
// order, with a plain 300 ms timeout: a failed stock call makes the order's
// stock "unknown" and counts in orders_stock_errors_total, nothing more.
//
//	LISTEN=127.0.0.1:18080 PAYMENTS_URL=http://127.0.0.1:9090 [STOCK_URL=…] orders
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
	stockErrors := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_stock_errors_total", Help: "Stock calls that failed or timed out."})
	reg.MustRegister(fallbacks, stockErrors)
	stock := os.Getenv("STOCK_URL")
	stockClient := &http.Client{Timeout: 300 * time.Millisecond}
	// stockOf asks the stock service; any failure is "unknown".
	stockOf := func(ctx context.Context) string {
		if stock == "" {
			return `"not asked"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, stock+"/api/users/2", nil)
		resp, err := stockClient.Do(req)
		if err != nil {
			stockErrors.Inc()
			return `"unknown"`
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode >= 500 {
			stockErrors.Inc()
			return `"unknown"`
		}
		return `"known"`
	}

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
		st := stockOf(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if err != nil || body == nil {
			fallbacks.Inc()
			fmt.Fprintf(w, `{"orders":[],"payments":"unavailable","stock":%s,"stale":true}`, st)
			return
		}
		fmt.Fprintf(w, `{"orders":[{"id":1}],"payments":%s,"stock":%s}`, body, st)
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

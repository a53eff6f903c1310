// Command cache is a small service written for resctl's dependency
// topology example: /api/items/{id} reads the item from Redis, filling it
// on a miss, and answers 503 when Redis does not answer within 200 ms — it
// degrades rather than hangs. Its /metrics counts Redis errors, so a
// scenario can see the service notice a partition and recover from it.
//
//	LISTEN=127.0.0.1:18082 REDIS_ADDR=127.0.0.1:6379 cache
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cache:", err)
		os.Exit(1)
	}
}

func run() error {
	listen, addr := os.Getenv("LISTEN"), os.Getenv("REDIS_ADDR")
	if listen == "" || addr == "" {
		return errors.New("set LISTEN and REDIS_ADDR")
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1, // degrade at once; the caller decides
	})
	defer rdb.Close()

	reg := prometheus.NewRegistry()
	redisErrors := prometheus.NewCounter(prometheus.CounterOpts{Name: "cache_redis_errors_total", Help: "Redis calls that failed or timed out."})
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cache_lookups_total", Help: "Item lookups by result."}, []string{"result"})
	reg.MustRegister(redisErrors, hits)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /api/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		key := "item:" + r.PathValue("id")
		v, err := rdb.Get(r.Context(), key).Result()
		if errors.Is(err, redis.Nil) {
			hits.WithLabelValues("miss").Inc()
			v = fmt.Sprintf(`{"id":%q}`, r.PathValue("id"))
			err = rdb.Set(r.Context(), key, v, time.Minute).Err()
		} else if err == nil {
			hits.WithLabelValues("hit").Inc()
		}
		if err != nil {
			redisErrors.Inc()
			http.Error(w, `{"error":"cache unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, v)
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

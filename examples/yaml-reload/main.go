// Command yaml-reload is an orders service whose guard lives in a YAML
// file: the chain of its calls to payments is read with guard.OpenFile
// (the same YAML a scenario's guard: key takes) and reloaded when the
// file changes, as `resctl proxy --config` reloads a proxy's, keeping the
// state of every policy whose configuration is unchanged. Its /metrics
// shows the chain and counts the reloads.
//
//	LISTEN=127.0.0.1:18091 PAYMENTS_URL=http://127.0.0.1:8080 GUARD_FILE=examples/yaml-reload/guard.yaml yaml-reload
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
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
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "yaml-reload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	listen, payments, file := os.Getenv("LISTEN"), os.Getenv("PAYMENTS_URL"), os.Getenv("GUARD_FILE")
	if listen == "" || payments == "" || file == "" {
		return errors.New("set LISTEN, PAYMENTS_URL and GUARD_FILE")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return serve(ctx, ln, config{payments: payments, guardFile: file, watchEvery: time.Second})
}

// config is what the service is started with.
type config struct {
	payments, guardFile string
	// watchEvery is how often the guard file is looked at.
	watchEvery time.Duration
	// reloaded hears how each reload went (tests wait on it).
	reloaded func(error)
}

// serve answers /api/orders from ln until ctx ends, calling payments
// through the chain in the guard file.
func serve(ctx context.Context, ln net.Listener, cfg config) error {
	chain, err := guard.OpenFile(cfg.guardFile, "payments", guard.Options{})
	if err != nil {
		return err
	}
	defer chain.Close()
	client := &http.Client{Transport: guard.NewTransport(http.DefaultTransport, chain)}

	reg := prometheus.NewRegistry()
	fallbacks := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_fallbacks_total", Help: "Orders answered with the payments fallback."})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orders_guard_reloads_total", Help: "Reloads of the guard file, by result."}, []string{"result"})
	reg.MustRegister(collectors.NewGoCollector(), chain, fallbacks, reloads)

	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		chain.Watch(watchCtx, cfg.watchEvery, func(err error) {
			if err != nil {
				reloads.WithLabelValues("refused").Inc()
				log.Printf("guard file %s refused, the chain is unchanged:\n%v", cfg.guardFile, err)
			} else {
				reloads.WithLabelValues("ok").Inc()
			}
			if cfg.reloaded != nil {
				cfg.reloaded(err)
			}
		})
	}()
	defer func() { stopWatch(); <-watched }()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, cfg.payments+"/api/users/1", nil)
		resp, err := client.Do(req)
		if err != nil {
			// A chain without a fallback, or a caller that went away.
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

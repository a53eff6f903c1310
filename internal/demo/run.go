package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownTimeout bounds graceful shutdown; after it, connections are closed
// and in-flight handlers are cancelled.
const shutdownTimeout = 5 * time.Second

// Running is a demo Server serving in the background, returned by Start.
type Running struct {
	srv    *http.Server
	addr   string
	log    *slog.Logger
	cancel context.CancelFunc   // cancels every request's base context
	agent  interface{ Close() } // ends runtime faults on shutdown
	grpc   interface{ Stop() }  // ends gRPC calls still running after shutdown

	done     chan struct{} // closed when the serve goroutine exits
	serveErr error         // valid after done is closed

	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
func Start(addr string, opts Options) (*Running, error) {
	return start(addr, New(opts))
}

// start serves s on addr in the background.
func start(addr string, s *Server) (*Running, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: listen %s: %w", addr, err)
	}
	baseCtx, cancel := context.WithCancel(context.Background())
	r := &Running{
		srv:    newHTTPServer(s, baseCtx),
		addr:   ln.Addr().String(),
		log:    s.log,
		cancel: cancel,
		agent:  s.agent,
		grpc:   s.grpc,
		done:   make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.serveErr = fmt.Errorf("demo: serve: %w", err)
			r.log.Error("demo target serve failed", "addr", r.addr, "err", err)
		}
	}()
	r.log.Info("demo target listening", "addr", r.addr, "url", r.URL())
	return r, nil
}

// newHTTPServer configures an http.Server for s accepting HTTP/1.1 and h2c.
func newHTTPServer(s *Server, baseCtx context.Context) *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           s,
		Protocols:         &protos,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Well above the largest sampled delay (4 × p99 of /api/slow).
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return baseCtx },
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Addr returns the host:port actually bound.
func (r *Running) Addr() string { return r.addr }

// URL returns "http://" + Addr().
func (r *Running) URL() string { return "http://" + r.addr }

// Close shuts the server down gracefully, waiting at most shutdownTimeout
// for in-flight requests before closing connections, then waits for the
// serve goroutine. It is idempotent and safe for concurrent use.
func (r *Running) Close() error {
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		if err := r.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("demo: graceful shutdown: %w", err))
			r.cancel()
			if err := r.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("demo: close: %w", err))
			}
		}
		r.cancel()
		<-r.done
		r.grpc.Stop()
		r.agent.Close()
		if r.serveErr != nil {
			errs = append(errs, r.serveErr)
		}
		r.closeErr = errors.Join(errs...)
		r.log.Info("demo target stopped", "addr", r.addr)
	})
	return r.closeErr
}

// Serve listens on addr and serves until ctx is done, then shuts down
// gracefully. ready, if non-nil, is called with the bound address once
// listening. It returns nil after a clean shutdown.
func Serve(ctx context.Context, addr string, opts Options, ready func(addr string)) error {
	r, err := Start(addr, opts)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(r.Addr())
	}
	select {
	case <-ctx.Done():
		return r.Close()
	case <-r.done:
		// Serving failed on its own; Close reports the serve error.
		return r.Close()
	}
}

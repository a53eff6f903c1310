// Command target is the tiny upstream of make bench-compare: every HTTP
// request, over HTTP/1.1 or h2c, is answered 200 "ok" with nothing read
// or computed, and a gRPC listener of its own serves the standard health
// service (grpc.health.v1.Health/Check) and reflection, so ghz finds the
// method without a .proto file. The gRPC side is grpc-go's own server,
// not ServeHTTP, which is several times slower. It stops on SIGINT or
// SIGTERM.
//
//	target -http 127.0.0.1:18400 -grpc 127.0.0.1:18401
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

var ok = []byte("ok\n")

func main() {
	httpAddr := flag.String("http", "127.0.0.1:18400", "address of the HTTP/1.1 and h2c listener")
	grpcAddr := flag.String("grpc", "", "address of the gRPC listener (none if empty)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *httpAddr, *grpcAddr); err != nil {
		fmt.Fprintln(os.Stderr, "target:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, httpAddr, grpcAddr string) error {
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: http.HandlerFunc(answer), Protocols: &protocols}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(hl) }()
	if grpcAddr != "" {
		gl, err := net.Listen("tcp", grpcAddr)
		if err != nil {
			srv.Close()
			return err
		}
		gs := grpc.NewServer()
		healthpb.RegisterHealthServer(gs, health.NewServer())
		reflection.Register(gs)
		go func() { errc <- gs.Serve(gl) }()
		defer gs.Stop()
	}
	select {
	case <-ctx.Done():
		srv.Close()
		return nil
	case err := <-errc:
		srv.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

func answer(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = []string{"text/plain"}
	_, _ = w.Write(ok)
}

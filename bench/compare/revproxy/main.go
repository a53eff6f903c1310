// Command revproxy is make bench-compare's baseline of a Go reverse proxy
// with nothing added: the standard library's httputil.ReverseProxy in
// front of one upstream. Its transport is http.DefaultTransport's but for
// the idle pool, raised from 2 connections per host to 4096 as resctl's
// proxy keeps: with the default, 62 of 64 concurrent clients' upstream
// connections would be closed after every request and dialled again, and
// the figure would be the kernel's connection churn rather than the proxy.
// It stops on SIGINT or SIGTERM.
//
//	revproxy -listen 127.0.0.1:18410 -upstream http://127.0.0.1:18400
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18410", "the proxy's address")
	upstream := flag.String("upstream", "", "the upstream's URL")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "revproxy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream %q: want an http:// URL with a host", upstream)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 4096
	tr.MaxIdleConnsPerHost = 4096
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u) },
		Transport: tr,
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rp}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		srv.Close()
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

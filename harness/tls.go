package harness

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// serverTLS loads the proxy's certificate for clients that speak TLS: h2
// by ALPN for gRPC clients, HTTP/1.1 for the rest.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("proxy TLS: set both the certificate and the key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("proxy TLS: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// upstreamTLS is how the proxy checks an https:// upstream's certificate:
// against the system's roots, or those in caFile (PEM) when given.
func upstreamTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("proxy upstream CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("proxy upstream CA %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// proxyTLS reads the TLS files a proxy's options name.
func proxyTLS(opts Options) (server, upstream *tls.Config, err error) {
	if opts.TLSCert != "" || opts.TLSKey != "" {
		if server, err = serverTLS(opts.TLSCert, opts.TLSKey); err != nil {
			return nil, nil, err
		}
	}
	if upstream, err = upstreamTLS(opts.UpstreamCA); err != nil {
		return nil, nil, err
	}
	return server, upstream, nil
}

package harness_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
)

// Metadata keys the test service reads.
const (
	// echoKey's value comes back as a header of the same name and, with a
	// "t-" prefix, as the trailer trailerKey.
	echoKey    = "x-echo"
	trailerKey = "x-trailer"
	// hangKey makes a call wait, after what it was asked to send, until
	// its context ends; the service then reports the context's error.
	hangKey = "x-hang"
)

// testService is the upstream of the gRPC tests: grpc.testing.TestService
// as the interop suite defines it, answering what each request asks for
// (payload sizes, a status) and echoing metadata back as headers and
// trailers.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	calls atomic.Int64
	// ended hears, for every call that hung (hangKey), why its context
	// ended and whether it carried a deadline.
	ended chan hungCall
}

type hungCall struct {
	err         error
	hadDeadline bool
}

func newTestService() *testService { return &testService{ended: make(chan hungCall, 16)} }

// echo sends the call's echo header and trailer.
func (s *testService) echo(ctx context.Context, setHeader, setTrailer func(metadata.MD) error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(echoKey); len(v) > 0 {
		_ = setHeader(metadata.Pairs(echoKey, v[0]))
		_ = setTrailer(metadata.Pairs(trailerKey, "t-"+v[0]))
	}
}

// hang waits out the call's context when the call asks to.
func (s *testService) hang(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(hangKey)) == 0 {
		return
	}
	_, hadDeadline := ctx.Deadline()
	<-ctx.Done()
	s.ended <- hungCall{err: ctx.Err(), hadDeadline: hadDeadline}
}

func echoStatus(es *testgrpc.EchoStatus) error {
	if es == nil || es.Code == 0 {
		return nil
	}
	return status.Error(codes.Code(es.Code), es.Message)
}

func payload(n int32) *testgrpc.Payload { return &testgrpc.Payload{Body: make([]byte, n)} }

func (s *testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.calls.Add(1)
	s.echo(ctx, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) }, func(md metadata.MD) error { return grpc.SetTrailer(ctx, md) })
	s.hang(ctx)
	if err := echoStatus(req.ResponseStatus); err != nil {
		return nil, err
	}
	return &testgrpc.SimpleResponse{Payload: payload(req.ResponseSize)}, nil
}

func (s *testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	s.calls.Add(1)
	s.echo(stream.Context(), stream.SetHeader, func(md metadata.MD) error { stream.SetTrailer(md); return nil })
	for _, p := range req.ResponseParameters {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
			return err
		}
		if p.IntervalUs > 0 {
			time.Sleep(time.Duration(p.IntervalUs) * time.Microsecond)
		}
	}
	s.hang(stream.Context())
	return echoStatus(req.ResponseStatus)
}

func (s *testService) StreamingInputCall(stream grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	s.calls.Add(1)
	s.echo(stream.Context(), stream.SetHeader, func(md metadata.MD) error { stream.SetTrailer(md); return nil })
	var sum int32
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(req.GetPayload().GetBody()))
	}
}

func (s *testService) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	s.calls.Add(1)
	s.echo(stream.Context(), stream.SetHeader, func(md metadata.MD) error { stream.SetTrailer(md); return nil })
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range req.ResponseParameters {
			if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
				return err
			}
		}
		if err := echoStatus(req.ResponseStatus); err != nil {
			return err
		}
	}
}

// startGRPCUpstream serves svc on loopback and stops it at test end.
func startGRPCUpstream(t testing.TB, svc testgrpc.TestServiceServer, opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	testgrpc.RegisterTestServiceServer(s, svc)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String()
}

// startGRPCProxy starts a grpc proxy in front of the upstream address.
func startGRPCProxy(t testing.TB, upstream string, board *inject.Board) *harness.Proxy {
	t.Helper()
	return startProxy(t, harness.Options{Upstream: "http://" + upstream, Protocol: harness.ProtocolGRPC, Board: board})
}

// dialGRPC returns a TestService client of addr, closed at test end;
// without options it speaks h2c.
func dialGRPC(t testing.TB, addr string, opts ...grpc.DialOption) testgrpc.TestServiceClient {
	t.Helper()
	return testgrpc.NewTestServiceClient(dialConn(t, addr, opts...))
}

// dialConn returns a client connection to addr, closed at test end;
// without options it speaks h2c.
func dialConn(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// grpcFault activates a fault of the grpc layer on board, parsed as the
// admin API parses it.
func grpcFault(t testing.TB, board *inject.Board, kind, params string) *inject.Activation {
	t.Helper()
	s, err := inject.ParseSpecFor(inject.LayerGRPC, kind, []byte(params))
	if err != nil {
		t.Fatalf("grpc %s {%s}: %v", kind, params, err)
	}
	a, err := board.Activate(kind, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testCert writes a self-signed certificate for 127.0.0.1 and its key to a
// temporary directory; the certificate is its own root.
func testCert(t testing.TB) (certFile, keyFile string, cert tls.Certificate, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "resctl test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, cert, roots
}

// tlsCreds are client credentials that trust roots.
func tlsCreds(roots *x509.CertPool) grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
}

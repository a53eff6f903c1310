package harness_test

import (
	"testing"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// BenchmarkGRPCProxy_Unary compares a unary call made to the upstream
// directly with one made through a grpc proxy with no fault active, over
// loopback: the difference is what the proxy adds to a call.
func BenchmarkGRPCProxy_Unary(b *testing.B) {
	up := startGRPCUpstream(b, newTestService())
	p := startGRPCProxy(b, up, nil)
	for _, bb := range []struct{ name, addr string }{{"direct", up}, {"proxy", p.Addr()}} {
		b.Run(bb.name, func(b *testing.B) {
			c := dialGRPC(b, bb.addr)
			req := &testgrpc.SimpleRequest{ResponseSize: 100, Payload: payload(100)}
			for b.Loop() {
				if _, err := c.UnaryCall(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

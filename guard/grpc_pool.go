package guard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// GRPCPoolPolicy is the name of the gRPC load-balancing policy GRPCPool
// selects: it picks among a Balancer's upstreams.
const GRPCPoolPolicy = "resctl_pool"

// GRPCPool makes a gRPC client spread its calls over b's upstreams as
// PoolTransport spreads HTTP requests: each call (each attempt, under the
// client interceptors' retry or hedge) goes to the instance b picks —
// power of two choices by latency average × calls in flight, among those
// with a ready connection — and teaches b how it went, so an instance
// that fails UNAVAILABLE, INTERNAL, UNKNOWN or DATA_LOSS in a row is
// ejected and a slow one drawn from less. b's upstreams are base URLs, as
// for HTTP; the client connects to their host and port (80, or 443 for
// https, when none is given), and TLS credentials check each instance's
// certificate against its host name.
//
// It returns the target to dial and the option that resolves it: a
// resolver of b's upstreams whose service config selects GRPCPoolPolicy.
// Credentials and interceptors are the caller's:
//
//	target, pool := guard.GRPCPool(b)
//	conn, err := grpc.NewClient(target, pool,
//		grpc.WithTransportCredentials(insecure.NewCredentials()),
//		grpc.WithUnaryInterceptor(guard.UnaryClientInterceptor(chain)))
func GRPCPool(b *Balancer) (target string, opt grpc.DialOption) {
	r := &poolResolver{b: b, scheme: "resctl-pool-" + strconv.FormatUint(poolSchemes.Add(1), 10)}
	return r.scheme + ":///pool", grpc.WithResolvers(r)
}

// poolSchemes numbers the pools: each resolves under a scheme of its own.
var poolSchemes atomic.Uint64

// gRPC's registry of load-balancing policies is global and may only be
// written during initialization; the policy does nothing until a client's
// service config names it.
func init() {
	balancer.Register(base.NewBalancerBuilder(GRPCPoolPolicy, poolPickerBuilder{}, base.Config{}))
}

// poolServiceConfig selects the pool's policy for the connection.
const poolServiceConfig = `{"loadBalancingConfig": [{"` + GRPCPoolPolicy + `": {}}]}`

// poolRef is what each resolved address carries to the picker: the
// balancer and the upstream it stands for.
type poolRef struct {
	b *Balancer
	u *Upstream
}

type poolRefKey struct{}

// poolResolver resolves its scheme to the balancer's upstreams, once:
// the list is fixed, and ejection, not resolution, takes instances out.
type poolResolver struct {
	b      *Balancer
	scheme string
}

func (r *poolResolver) Scheme() string { return r.scheme }

func (r *poolResolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	addrs := make([]resolver.Address, 0, len(r.b.all))
	for _, u := range r.b.all {
		host := u.url.Host
		if u.url.Port() == "" {
			port := "80"
			if u.url.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(u.url.Hostname(), port)
		}
		// ServerName is what TLS credentials check the instance's
		// certificate against, rather than the target's "pool".
		addrs = append(addrs, resolver.Address{Addr: host, ServerName: u.url.Hostname(), Attributes: attributes.New(poolRefKey{}, poolRef{r.b, u})})
	}
	sc := cc.ParseServiceConfig(poolServiceConfig)
	if sc.Err != nil {
		return nil, fmt.Errorf("guard: the pool's service config: %w", sc.Err)
	}
	if err := cc.UpdateState(resolver.State{Addresses: addrs, ServiceConfig: sc}); err != nil {
		return nil, err
	}
	return nopResolver{}, nil
}

type nopResolver struct{}

func (nopResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (nopResolver) Close()                                {}

// poolPickerBuilder makes a picker over the upstreams that have a ready
// connection; gRPC builds a new one whenever that set changes.
type poolPickerBuilder struct{}

func (poolPickerBuilder) Build(info base.PickerBuildInfo) balancer.Picker {
	p := &poolPicker{ready: map[*Upstream]balancer.SubConn{}}
	for sc, sci := range info.ReadySCs {
		ref, ok := sci.Address.Attributes.Value(poolRefKey{}).(poolRef)
		if !ok {
			continue
		}
		p.b = ref.b
		p.ready[ref.u] = sc
	}
	if len(p.ready) == 0 {
		return base.NewErrPicker(balancer.ErrNoSubConnAvailable)
	}
	return p
}

type poolPicker struct {
	b     *Balancer
	ready map[*Upstream]balancer.SubConn
}

// Pick sends the call to the upstream the balancer picks, or, when that
// one has no ready connection (it is connecting, or gone), to the ready
// one of least cost — among those not ejected, if any is ready.
func (p *poolPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	u := p.b.Pick()
	sc, ok := p.ready[u]
	if !ok {
		now := p.b.clk.nanos()
		for _, cand := range *p.b.healthy.Load() {
			if csc, ok := p.ready[cand]; ok && (sc == nil || cand.cost(now) < u.cost(now)) {
				u, sc = cand, csc
			}
		}
		if sc == nil { // every ready one is ejected
			for cand, csc := range p.ready {
				if sc == nil || cand.cost(now) < u.cost(now) {
					u, sc = cand, csc
				}
			}
		}
	}
	p.b.Begin(u)
	start := time.Now()
	return balancer.PickResult{SubConn: sc, Done: func(d balancer.DoneInfo) {
		// A pick gRPC gave up before sending anything (the connection
		// was gone, and it picks again) says nothing of the instance.
		if d.Err != nil || d.BytesSent || d.BytesReceived {
			p.b.Observe(u, grpcCallOutcome(d.Err), time.Since(start))
		}
		p.b.End(u)
	}}, nil
}

// grpcCallOutcome judges a finished call as the proxy judges a gRPC
// status: see grpcUpstreamOutcome; a call its caller gave up on is
// neither the instance's success nor its failure.
func grpcCallOutcome(err error) UpstreamOutcome {
	if err == nil {
		return UpstreamSuccess
	}
	if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		return UpstreamCanceled
	}
	st, ok := status.FromError(err)
	if !ok {
		return UpstreamError
	}
	return grpcUpstreamOutcome(strconv.Itoa(int(st.Code())))
}

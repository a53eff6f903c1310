package guard

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// GRPCStatus makes a TimeoutError DEADLINE_EXCEEDED wherever it travels.
func (e *TimeoutError) GRPCStatus() *status.Status {
	return status.New(codes.DeadlineExceeded, e.Error())
}

// UnaryClientInterceptor guards the unary calls of a gRPC client with the
// chain: the full method name is the Route, outgoing metadata the Header,
// the call's status the Outcome. Retries and hedges follow the chain's
// retry_on (UNAVAILABLE and RESOURCE_EXHAUSTED by default) and the
// retry-after the server sends in its header; a hedge needs protobuf
// replies, since each attempt gets a reply of its own. A timeout's
// deadline travels to the server as grpc-timeout. A fallback answers
// with its body, one serialized reply message. A refused call fails with
// the *Rejection, whose status is UNAVAILABLE or RESOURCE_EXHAUSTED.
func UnaryClientInterceptor(chain ChainSource) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		u := &grpcUnary{method: method, req: req, reply: reply, cc: cc, invoker: invoker, opts: opts}
		res := chain.Chain().runOutgoing(ctx, Request{Route: method, Header: outgoingHeader(ctx)}, u)
		if res.err != nil {
			return res.err
		}
		if res.ans != reply {
			// A hedge's second attempt won, in a reply of its own.
			proto.Reset(reply.(proto.Message))
			proto.Merge(reply.(proto.Message), res.ans.(proto.Message))
		}
		return nil
	}
}

// outgoingHeader reads a client call's outgoing metadata as a Header.
func outgoingHeader(ctx context.Context) Header {
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		return metadataHeader(md)
	}
	return nil
}

// grpcUnary is one unary call of the client interceptor.
type grpcUnary struct {
	method     string
	req, reply any
	cc         *grpc.ClientConn
	invoker    grpc.UnaryInvoker
	opts       []grpc.CallOption

	mu             sync.Mutex
	lastRetryAfter string
}

var _ exchange = (*grpcUnary)(nil)

func (u *grpcUnary) send(ctx context.Context, x *outCall, n int) (any, Outcome, error) {
	// Every attempt after the first gets a reply of its own: a hedge's
	// may run beside the first, even as the first is judged the winner.
	// The winner's is merged into the caller's at the end.
	reply := u.reply
	if m, ok := reply.(proto.Message); ok && n > 1 {
		reply = m.ProtoReflect().New().Interface()
	}
	ctx = attemptMetadata(ctx, x, n)
	var hdr metadata.MD
	opts := u.opts
	if x.attemptHeader != "" || x.idHeader != "" {
		// A retry or a hedge reads the retry-after a refusal carries.
		opts = append(opts[:len(opts):len(opts)], grpc.Header(&hdr))
	}
	err := u.invoker(ctx, u.method, u.req, reply, u.cc, opts...)
	if err != nil {
		if v := hdr.Get("retry-after"); len(v) > 0 {
			u.mu.Lock()
			u.lastRetryAfter = v[0]
			u.mu.Unlock()
		}
		return nil, clientOutcome(ctx, err), err
	}
	return reply, Outcome{}, nil
}

// attemptMetadata adds the attempt's number and the call's id to the
// outgoing metadata, as the HTTP paths add their headers.
func attemptMetadata(ctx context.Context, x *outCall, n int) context.Context {
	var kv []string
	if x.attemptHeader != "" {
		kv = append(kv, x.attemptHeader, strconv.Itoa(n))
	}
	if x.idHeader != "" {
		if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get(x.idHeader)) == 0 {
			kv = append(kv, x.idHeader, x.id)
		}
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// clientOutcome is a client call's error as an Outcome: a call its own
// context cancelled says nothing of the server.
func clientOutcome(ctx context.Context, err error) Outcome {
	if err == nil {
		return Outcome{}
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return Outcome{Err: context.Canceled}
	}
	o := grpcOutcome(err)
	if o.GRPCCode == codes.DeadlineExceeded {
		o.Timeout = true
	}
	return o
}

func (u *grpcUnary) repeatable(*methodSet, int64) bool { return true }

func (u *grpcUnary) retryAfter(any) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	v := u.lastRetryAfter
	u.lastRetryAfter = ""
	return v
}

func (u *grpcUnary) drop(any)              {}
func (u *grpcUnary) hold(_ any, end ender) { end.end() }

func (u *grpcUnary) deadline(ctx context.Context, at int64) (context.Context, ender) {
	return withDeadline(ctx, at)
}

func (u *grpcUnary) concurrent() bool {
	_, ok := u.reply.(proto.Message)
	return ok
}

func (u *grpcUnary) fallback(f *Fallback) (any, bool) {
	m, ok := u.reply.(proto.Message)
	if !ok || proto.Unmarshal(f.body, m) != nil {
		return nil, false
	}
	return u.reply, true
}

// StreamClientInterceptor guards the streams of a gRPC client: the
// admission policies admit a stream and learn how it ended (its final
// status, and how long it lasted); the chain's first timeout bounds the
// whole stream; and its first retry retries opening the stream — before
// anything is sent or received, the only point at which a stream can be
// sent again without replaying its messages. Hedges and fallbacks act on
// unary calls only.
func StreamClientInterceptor(chain ChainSource) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		c := chain.Chain()
		r := Request{Route: method, Header: outgoingHeader(ctx)}
		permits, start, err := c.acquire(ctx, &r, nil)
		if err != nil {
			return nil, err
		}
		g := &guardedStream{c: c, permits: permits, start: start, desc: desc, cancel: func() {}}
		var retry *Retry
		for _, p := range c.policies {
			switch p := p.(type) {
			case *Timeout:
				if g.timeout == nil {
					g.timeout = p
					p.calls.Add(1)
					deadline := time.Now().Add(p.cfg.After)
					if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
						deadline = dl
					}
					ctx, g.cancel = context.WithDeadline(ctx, deadline)
				}
			case *Retry:
				if retry == nil {
					retry = p
				}
			}
		}
		cs, err := openStream(ctx, retry, func() (grpc.ClientStream, error) {
			return streamer(ctx, desc, cc, method, opts...)
		})
		if err != nil {
			g.finish(ctx, err)
			return nil, err
		}
		g.ClientStream, g.ctx = cs, ctx
		g.stop = context.AfterFunc(ctx, func() { g.finish(ctx, ctx.Err()) })
		return g, nil
	}
}

// openStream opens a stream, retrying while retry's judgement says so.
func openStream(ctx context.Context, retry *Retry, open func() (grpc.ClientStream, error)) (grpc.ClientStream, error) {
	if retry == nil {
		return open()
	}
	start := retry.begin()
	var wait time.Duration
	for n := 1; ; n++ {
		cs, err := open()
		w, again := retry.again(ctx, clientOutcome(ctx, err), false, nil, n, start, wait)
		if !again {
			return cs, err
		}
		if !sleep(ctx, &retry.clk, w) {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		wait = w
	}
}

// guardedStream is a client stream whose permits are handed back with
// its outcome when it ends: an error or io.EOF from RecvMsg, the one
// reply of a stream that is not server-streaming, or its context's end.
type guardedStream struct {
	grpc.ClientStream
	c       *Chain
	permits []Permit
	start   int64
	desc    *grpc.StreamDesc
	timeout *Timeout
	ctx     context.Context
	cancel  context.CancelFunc
	stop    func() bool
	ended   atomic.Bool
}

func (g *guardedStream) RecvMsg(m any) error {
	err := g.ClientStream.RecvMsg(m)
	switch {
	case err == io.EOF:
		g.finish(g.ctx, nil)
	case err != nil:
		g.finish(g.ctx, err)
	case !g.desc.ServerStreams:
		g.finish(g.ctx, nil)
	}
	return err
}

// finish hands the permits back once, with the stream's outcome.
func (g *guardedStream) finish(ctx context.Context, err error) {
	if !g.ended.CompareAndSwap(false, true) {
		return
	}
	if g.stop != nil {
		g.stop()
	}
	o := clientOutcome(ctx, err)
	if g.timeout != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && err != nil {
		g.timeout.timedOut.Add(1)
		o.Timeout = true
	}
	g.c.releaseAt(g.permits, g.c.timeCall(&o, g.start), &o)
	g.cancel()
}

package guard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPCStatus makes a Rejection a gRPC status error: status.Code(err) is
// its GRPC code wherever it travels.
func (r *Rejection) GRPCStatus() *status.Status {
	return status.New(r.GRPC, r.Error())
}

// WriteGRPC answers a gRPC call that reached an HTTP handler (the harness
// proxy) with the rejection: its gRPC code and message in a trailers-only
// response, with GuardHeader and Retry-After (whole seconds, rounded up)
// when known. The client reads those as trailers, since the response is
// trailers-only; the call wrappers (retry, hedge, fallback) read the code
// from the headers as they are written.
func (r *Rejection) WriteGRPC(w http.ResponseWriter) {
	h := w.Header()
	h.Set(GuardHeader, r.Policy)
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(r.RetryAfter.Seconds()))))
	}
	writeGRPCStatus(w, r.GRPCStatus())
}

// writeGRPCStatus writes a trailers-only gRPC response: HTTP 200 with the
// status in the headers and no message.
func writeGRPCStatus(w http.ResponseWriter, s *status.Status) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(s.Code())))
	h.Set("Grpc-Message", encodeGRPCMessage(s.Message()))
	w.WriteHeader(http.StatusOK)
}

// encodeGRPCMessage percent-encodes a status message for grpc-message:
// bytes outside printable ASCII, and '%', become %XX.
func encodeGRPCMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c >= ' ' && c <= '~' && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// metadataHeader reads gRPC metadata as a Header.
type metadataHeader metadata.MD

func (m metadataHeader) Get(key string) string {
	if v := metadata.MD(m).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func grpcRequest(ctx context.Context, fullMethod string) Request {
	r := Request{Route: fullMethod}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		r.Header = metadataHeader(md)
	}
	return r
}

// grpcOutcome turns a handler's error into an Outcome.
func grpcOutcome(err error) Outcome {
	if err == nil {
		return Outcome{}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Outcome{Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return Outcome{GRPCCode: codes.DeadlineExceeded, Timeout: true}
	}
	return Outcome{GRPCCode: status.Code(err)}
}

// rejectionMetadata is what a rejected gRPC call carries beside its status.
func rejectionMetadata(err error) (metadata.MD, error) {
	var rej *Rejection
	if !errors.As(err, &rej) {
		return nil, status.FromContextError(err).Err()
	}
	md := metadata.Pairs(GuardMetadata, rej.Policy)
	if rej.RetryAfter > 0 {
		md.Set("retry-after", strconv.Itoa(int(math.Ceil(rej.RetryAfter.Seconds()))))
	}
	return md, rej.GRPCStatus().Err()
}

// UnaryServerInterceptor guards unary gRPC calls: the full method name is
// the Route, incoming metadata the Header, the handler's status code the
// Outcome. A rejected call fails with UNAVAILABLE or RESOURCE_EXHAUSTED and
// GuardMetadata (and retry-after, in seconds, when known) in its header.
func (c *Chain) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		r := grpcRequest(ctx, info.FullMethod)
		var resp any
		var herr error
		err := c.Do(ctx, &r, func(ctx context.Context) Outcome {
			resp, herr = handler(ctx, req)
			return grpcOutcome(herr)
		})
		if err != nil {
			md, serr := rejectionMetadata(err)
			if md != nil {
				_ = grpc.SetHeader(ctx, md)
			}
			return nil, serr
		}
		return resp, herr
	}
}

// StreamServerInterceptor guards streaming gRPC calls as
// UnaryServerInterceptor does unary ones; a stream's Outcome is how it
// ended, and its Duration how long it lasted.
func (c *Chain) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		r := grpcRequest(ss.Context(), info.FullMethod)
		var herr error
		err := c.Do(ss.Context(), &r, func(context.Context) Outcome {
			herr = handler(srv, ss)
			return grpcOutcome(herr)
		})
		if err != nil {
			md, serr := rejectionMetadata(err)
			if md != nil {
				_ = ss.SetHeader(md)
			}
			return serr
		}
		return herr
	}
}

// isGRPC reports whether r is a gRPC call. gRPC-Web is not gRPC here: it
// carries its status in the body.
func isGRPC(r *http.Request) bool {
	rest, ok := strings.CutPrefix(headerGet(r.Header, "Content-Type"), "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

package guard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/resctl/resctl/guard"
)

// refusing is a policy that refuses every call with err.
type refusing struct{ err error }

func (refusing) Name() string { return "refusing" }
func (p refusing) Acquire(context.Context, *guard.Request) (guard.Permit, error) {
	return guard.Permit{}, p.err
}
func (refusing) Release(guard.Permit, guard.Outcome) {}

// TestChain_Middleware_GRPCRejection: a gRPC call refused by a policy on
// an HTTP path (the harness proxy) is answered in gRPC — a trailers-only
// response with the rejection's code — and an HTTP request as before.
func TestChain_Middleware_GRPCRejection(t *testing.T) {
	rej := &guard.Rejection{Policy: "orders-ünï", Kind: "bulkhead", Reason: "in_flight", RetryAfter: 1500 * time.Millisecond, Status: http.StatusServiceUnavailable, GRPC: codes.Unavailable}
	tests := []struct {
		name        string
		err         error
		contentType string
		wantStatus  int
		wantGRPC    string // grpc-status; "" for none
		wantHeader  map[string]string
	}{
		{"gRPC call, rejection", rej, "application/grpc", http.StatusOK, "14", map[string]string{
			"Content-Type": "application/grpc", guard.GuardHeader: "orders-ünï", "Retry-After": "2",
			"Grpc-Message": `guard bulkhead "orders-%C3%BCn%C3%AF": <nil> (in_flight), retry after 1.5s`,
		}},
		{"gRPC+proto call, rejection", rej, "application/grpc+proto", http.StatusOK, "14", nil},
		{"gRPC call, deadline passed while waiting", context.DeadlineExceeded, "application/grpc", http.StatusOK, "4", nil},
		{"gRPC call, client gone while waiting", context.Canceled, "application/grpc", http.StatusOK, "1", nil},
		{"HTTP request, rejection", rej, "application/json", http.StatusServiceUnavailable, "", map[string]string{guard.GuardHeader: "orders-ünï"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := guard.NewChain(refusing{tt.err}).Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("a refused request reached the handler")
			}))
			r := httptest.NewRequest(http.MethodPost, "/shop.Orders/Place", nil)
			r.Header.Set("Content-Type", tt.contentType)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus || w.Header().Get("Grpc-Status") != tt.wantGRPC {
				t.Errorf("answer %d, grpc-status %q; want %d, %q", w.Code, w.Header().Get("Grpc-Status"), tt.wantStatus, tt.wantGRPC)
			}
			if tt.wantGRPC != "" && w.Body.Len() != 0 {
				t.Errorf("a trailers-only answer has a body: %q", w.Body.String())
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

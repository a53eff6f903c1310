package load_test

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/internal/demo/demopb"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
)

// A gRPC call fails on its status, or on a check of its status or of its
// response message, each with its reason.
func TestRunGRPC_Checks(t *testing.T) {
	// Calls take turns: NOT_FOUND, a paid order, an order whose status
	// is left at its default.
	var n atomic.Int64
	addr, _ := startOrders(t, func(context.Context, *demopb.GetOrderRequest) (*demopb.Order, error) {
		switch n.Add(1) % 3 {
		case 1:
			return nil, status.Error(codes.NotFound, "no such order")
		case 2:
			return &demopb.Order{Id: 7, Status: "PAID"}, nil
		}
		return &demopb.Order{Id: 7}, nil
	})
	tests := []struct {
		name   string
		expect *check.Spec
		want   map[string]uint64
	}{
		{name: "no checks", want: map[string]uint64{"status: NotFound": 10}},
		{name: "NOT_FOUND allowed", expect: &check.Spec{Status: []check.Code{"OK", "NOT_FOUND"}}},
		{name: "status and fields", expect: &check.Spec{Status: []check.Code{"OK"},
			JSON: map[string]check.Value{"status": {JSON: `"PAID"`}, "customer_id": {JSON: `0`}, "id": {JSON: `7`}}},
			want: map[string]uint64{"check: status NotFound not in [OK]": 10, `check: json status is not "PAID"`: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.Store(0)
			steps := []load.Step{{Name: "only", Duration: time.Second, Rate: 30}}
			rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
			_, err := runGRPC(t, t.Context(), load.GRPCOptions{
				Target: addr, Call: "resctl.demo.v1.Orders/GetOrder", Data: `{"id": 7}`,
				Pacer: load.NewPacer(drained(steps...)), Recorder: rec, MaxInFlight: 1, WaitAtCap: true,
				Expect: tt.expect,
			})
			if err != nil {
				t.Fatal(err)
			}
			got := rec.Snapshot().PhaseStats[0]
			var failed uint64
			for _, v := range tt.want {
				failed += v
			}
			if got.Requests != 30 || got.Errors != failed || !maps.Equal(got.Reasons, tt.want) {
				t.Errorf("%d requests, %d errors, reasons %v; want 30, %d, %v", got.Requests, got.Errors, got.Reasons, failed, tt.want)
			}
		})
	}
}

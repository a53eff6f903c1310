package load_test

import (
	"context"
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"

	"github.com/resctl/resctl/internal/demo/demopb"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
)

// A gRPC results file reads in every vegeta command: `vegeta plot` wants
// send times that rise with the sequence numbers, `vegeta report` the
// sizes of responses; and the schedule's times ride along, so a reader can
// rebuild the response times resctl reports.
func TestRunGRPC_ResultsFileReadByVegeta(t *testing.T) {
	addr, _ := startOrders(t, func(_ context.Context, req *demopb.GetOrderRequest) (*demopb.Order, error) {
		return &demopb.Order{Id: req.GetId(), Status: "PAID", Currency: "EUR"}, nil
	})
	path := filepath.Join(t.TempDir(), "results.bin")
	rf, err := load.CreateResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Enough calls at once that ghz's workers take them out of order.
	steps := []load.Step{{Name: "only", Duration: time.Second, Rate: 400}}
	st, err := runGRPC(t, t.Context(), load.GRPCOptions{
		Target: addr, Call: "resctl.demo.v1.Orders/GetOrder", Data: `{"id": 12345}`,
		Pacer:    load.NewPacer(drained(steps...)),
		Recorder: record.NewRecorder(time.Now(), spans(steps), time.Second),
		Results:  rf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	results := decodeResults(t, path)
	if len(results) != int(st.Sent+st.Dropped) || len(results) == 0 {
		t.Fatalf("file holds %d results, the run sent %d and dropped %d", len(results), st.Sent, st.Dropped)
	}

	p := plot.New(plot.Title("grpc"))
	var m vegeta.Metrics
	for i := range results {
		if err := p.Add(&results[i]); err != nil {
			t.Fatalf("vegeta plot: result %d of the file: %v", i, err)
		}
		m.Add(&results[i])
	}
	p.Close()
	if _, err := p.WriteTo(io.Discard); err != nil {
		t.Fatalf("vegeta plot: %v", err)
	}
	m.Close()
	// GetOrder's answer, as protobuf encodes it: id 12345, "PAID", "EUR".
	const size = 3 + 6 + 5
	if m.Success != 1 || m.BytesIn.Total != uint64(size*len(results)) {
		t.Errorf("vegeta report: success %v, %d bytes in; want 1 and %d × %d bytes", m.Success, m.BytesIn.Total, len(results), size)
	}

	start, err := time.Parse(time.RFC3339Nano, results[0].Headers.Get(load.StartHeader))
	if err != nil {
		t.Fatalf("first result's %s: %v", load.StartHeader, err)
	}
	for _, r := range results {
		due, err := strconv.ParseInt(r.Headers.Get(load.DueHeader), 10, 64)
		if err != nil {
			t.Fatalf("result %d: %s: %v", r.Seq, load.DueHeader, err)
		}
		// A call goes out when it is due or later, never before.
		if at := start.Add(time.Duration(due)); r.Timestamp.Before(at.Add(-time.Millisecond)) {
			t.Errorf("result %d sent at %v, before it was due at %v", r.Seq, r.Timestamp, at)
		}
	}
}

package load_test

import (
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/load"
	"github.com/resctl/resctl/record"
)

// A status the checks allow is a success, whatever its code; a response
// that fails a check is a failure with the check's reason, in the
// recording and in the results file, which also has every body's size.
func TestRun_Checks(t *testing.T) {
	var n atomic.Int64
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not found"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}), false)
	path := filepath.Join(t.TempDir(), "results.bin")
	rf, err := load.CreateResultsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	steps := []load.Step{{Name: "only", Duration: time.Second, Rate: 20}}
	rec := record.NewRecorder(time.Now(), spans(steps), time.Second)
	if _, err := run(t, t.Context(), load.Options{
		BaseURL: srv.URL,
		Requests: []load.Request{{Method: http.MethodGet, Path: "/", Expect: &check.Spec{
			Status: []check.Code{"404"}, JSON: map[string]check.Value{"error": {JSON: `"not found"`}}}}},
		Pacer: load.NewPacer(drained(steps...)), Recorder: rec, Results: rf,
		MaxInFlight: 1, WaitAtCap: true, // one at a time: the server's turns are the requests'
	}); err != nil {
		t.Fatal(err)
	}
	if err := rf.Close(); err != nil {
		t.Fatal(err)
	}
	got := rec.Snapshot().Total.Counts
	want := map[string]uint64{"check: status 200 not in [404]": 10}
	if got.Requests != 20 || got.Successes != 10 || !maps.Equal(got.Reasons, want) {
		t.Errorf("recorded %+v, want 20 requests, 10 successes (the 404s), reasons %v", got, want)
	}
	for _, res := range decodeResults(t, path) {
		switch {
		case res.Code == 404 && (res.Error != "" || res.BytesIn != uint64(len(`{"error":"not found"}`))):
			t.Errorf("saved 404: error %q, %d bytes in; want a success of 21 bytes", res.Error, res.BytesIn)
		case res.Code == 200 && (!strings.HasPrefix(res.Error, "check: status 200") || res.BytesIn != uint64(len(`{"ok":true}`))):
			t.Errorf("saved 200: error %q, %d bytes in; want the check's reason and 11 bytes", res.Error, res.BytesIn)
		}
	}
}

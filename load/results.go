package load

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// ResultsFlushInterval bounds how much a killed run loses of its results
// file: at most the results of this long.
const ResultsFlushInterval = 250 * time.Millisecond

// ResultsFile streams every result to a file in vegeta's encoding (gob), as
// it happens, so `vegeta report`, `vegeta plot` and `resctl report merge`
// read it, and files from several machines combine. It is flushed every
// ResultsFlushInterval and on Close: a run killed mid-way leaves a file
// whose results up to then are readable. Safe for concurrent use.
type ResultsFile struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	enc   vegeta.Encoder
	timer *time.Timer // armed while written results wait for a flush
	err   error
	// started is true once StartHeader is written.
	started bool
}

// CreateResultsFile creates (or truncates) the file at path.
func CreateResultsFile(path string) (*ResultsFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &ResultsFile{f: f, w: w, enc: vegeta.NewEncoder(w)}, nil
}

// Headers resctl adds to saved results, so a reader can tell response
// times from the service times the file holds. A result's Timestamp is
// when it was really sent and its Latency runs from there (the service
// time); StartHeader, on the first result of the file, is the schedule's
// start, and DueHeader, on every result, is when the schedule meant it to
// go out, in nanoseconds from that start (absent when unknown). The
// response time that resctl's reports give is Timestamp + Latency - (start
// + due).
const (
	StartHeader = "X-Resctl-Start"
	DueHeader   = "X-Resctl-Due"
)

// Write appends one result: start is the schedule's start and due when
// the result was due (either zero when unknown). Response bodies and
// headers are left out — they would make the file grow with every header
// — except the fallback mark, which a merged report counts, and the
// schedule's times.
// The first error is kept, returned by Close; later results are dropped.
func (r *ResultsFile) Write(res vegeta.Result, start, due time.Time) {
	kept := http.Header{}
	if v := res.Headers.Get(FallbackHeader); v != "" {
		kept.Set(FallbackHeader, v)
	}
	if !start.IsZero() && !due.IsZero() {
		kept.Set(DueHeader, strconv.FormatInt(int64(due.Sub(start)), 10))
	}
	res.Body = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if !r.started && !start.IsZero() {
		kept.Set(StartHeader, start.UTC().Format(time.RFC3339Nano))
		r.started = true
	}
	res.Headers = kept
	if len(kept) == 0 {
		res.Headers = nil
	}
	if r.err = r.enc.Encode(&res); r.err != nil {
		return
	}
	// Flushed within ResultsFlushInterval of being written, whether or
	// not more results follow.
	if r.timer == nil {
		r.timer = time.AfterFunc(ResultsFlushInterval, r.flush)
	}
}

func (r *ResultsFile) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if r.err == nil && r.f != nil {
		r.err = r.w.Flush()
	}
}

// Close flushes and closes the file; it returns the first error of any
// write.
func (r *ResultsFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return r.err
	}
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if r.err == nil {
		r.err = r.w.Flush()
	}
	if err := r.f.Close(); r.err == nil {
		r.err = err
	}
	r.f = nil
	return r.err
}

// ReadResults decodes a results file with vegeta's decoder. A file cut
// short — a run killed mid-write — yields the results before the cut; a
// file that holds no result at all is an error.
func ReadResults(path string) ([]vegeta.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var out []vegeta.Result
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) || (len(out) > 0 && errors.Is(err, io.ErrUnexpectedEOF)) {
				return out, nil // the end, or the torn tail of a killed run
			}
			if len(out) > 0 {
				return nil, fmt.Errorf("%s: result %d: %w", path, len(out)+1, err)
			}
			return nil, fmt.Errorf("%s: not a results file: %w", path, err)
		}
		out = append(out, r)
	}
}

// DueTimes are when the schedule meant each of a file's results to go out,
// from StartHeader and DueHeader; zero for a result whose file does not
// say (a file of vegeta's own, or of an older resctl).
func DueTimes(rs []vegeta.Result) []time.Time {
	out := make([]time.Time, len(rs))
	var start time.Time
	for _, r := range rs {
		if v := r.Headers.Get(StartHeader); v != "" {
			start, _ = time.Parse(time.RFC3339Nano, v)
			break
		}
	}
	if start.IsZero() {
		return out
	}
	for i, r := range rs {
		if d, err := strconv.ParseInt(r.Headers.Get(DueHeader), 10, 64); err == nil {
			out[i] = start.Add(time.Duration(d))
		}
	}
	return out
}

// IsDropped says whether a saved result's error is a drop at the in-flight
// cap rather than a failed request.
func IsDropped(errText string) bool { return strings.HasSuffix(errText, ErrDropped.Error()) }

package load

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
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
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	enc    vegeta.Encoder
	flushd time.Time
	err    error
}

// CreateResultsFile creates (or truncates) the file at path.
func CreateResultsFile(path string) (*ResultsFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("results file: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &ResultsFile{f: f, w: w, enc: vegeta.NewEncoder(w), flushd: time.Now()}, nil
}

// Write appends one result. Response headers and bodies are left out: no
// report reads them, and they would make the file grow with every header.
// The first error is kept, returned by Close; later results are dropped.
func (r *ResultsFile) Write(res vegeta.Result) {
	res.Headers, res.Body = nil, nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if r.err = r.enc.Encode(&res); r.err != nil {
		return
	}
	if now := time.Now(); now.Sub(r.flushd) >= ResultsFlushInterval {
		r.flushd = now
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
			if errors.Is(err, io.EOF) || len(out) > 0 {
				return out, nil // the end, or the torn tail of a killed run
			}
			return nil, fmt.Errorf("%s: not a results file: %w", path, err)
		}
		out = append(out, r)
	}
}

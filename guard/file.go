package guard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resctl/resctl/internal/strictyaml"
)

// ParseError lists every problem of a chain's YAML, each with its place.
type ParseError struct {
	// File is the file read, or empty for Parse.
	File     string
	Problems []PlacedProblem
}

// PlacedProblem is one problem of a chain's YAML: the key path of the
// offending value ("[1].retry.attempts"), its line and column, and what
// is wrong.
type PlacedProblem struct {
	Path      string
	Line, Col int
	Msg       string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File != "" {
			b.WriteString(e.File + ":")
		}
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Col)
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// Parse reads a chain written as a scenario's guard: key writes it, a YAML
// list of policies applied in order —
//
//   - breaker: {failure_rate: 50%, open_for: 5s}
//   - retry: {attempts: 3, budget: 20%}
//   - timeout: 500ms
//
// — and names its policies after owner (with "#2", "#3" for a kind that
// repeats), as metrics, events and SLAs know them. Every problem is
// reported, in a *ParseError.
func Parse(data []byte, owner string) ([]Spec, error) {
	specs, err := parseSpecs(data, owner)
	var pe *ParseError
	if errors.As(err, &pe) {
		return nil, pe
	}
	return specs, err
}

// Load is Parse of the file at path.
func Load(path, owner string) ([]Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load guard %q: %w", path, err)
	}
	specs, err := parseSpecs(data, owner)
	var pe *ParseError
	if errors.As(err, &pe) {
		pe.File = path
		return nil, pe
	}
	return specs, err
}

func parseSpecs(data []byte, owner string) ([]Spec, error) {
	root, err := strictyaml.Parse(context.Background(), data, strictyaml.Limits{})
	var de *strictyaml.DocumentError
	if errors.As(err, &de) {
		p := de.Problem
		return nil, &ParseError{Problems: []PlacedProblem{{p.Path, p.Line, p.Col, p.Msg}}}
	}
	if err != nil {
		return nil, err
	}
	d := strictyaml.New()
	var specs []Spec
	if len(root.Content) == 0 {
		d.Add(strictyaml.Pos{Line: 1, Col: 1}, "", "%s", "empty chain: list policies as - breaker: {failure_rate: 50%}")
	} else {
		d.Decode(root.Content[0], reflect.ValueOf(&specs).Elem(), "")
	}
	NameChain("", owner, specs, func(path, msg string) {
		path = strings.TrimPrefix(path, ".")
		pos := strictyaml.Pos{Line: 1, Col: 1}
		for q := path; q != ""; q = q[:max(strings.LastIndexAny(q, ".["), 0)] {
			if n, ok := d.At[q]; ok {
				pos = strictyaml.NodePos(n)
				break
			}
		}
		d.Add(pos, path, "%s", msg)
	})
	if len(d.Problems) > 0 {
		pe := &ParseError{}
		for _, p := range d.Problems {
			pe.Problems = append(pe.Problems, PlacedProblem{p.Path, p.Line, p.Col, p.Msg})
		}
		return nil, pe
	}
	return specs, nil
}

// File is a chain kept in a YAML file (as Parse reads it), rebuilt when
// the file changes: a service's guard lives in its configuration and is
// tuned without a restart, as `resctl proxy --config` reloads a proxy's.
// A reload keeps every policy whose name, kind and configuration are
// unchanged, with its state (an open breaker stays open); a file with
// problems changes nothing. File is a ChainSource for Transport and the
// client interceptors, and a prometheus.Collector of its current chain.
type File struct {
	path, owner string
	b           *Builder
	mu          sync.Mutex // serializes reloads
	cur         atomic.Pointer[Chain]
}

var (
	_ ChainSource          = (*File)(nil)
	_ prometheus.Collector = (*File)(nil)
)

// OpenFile reads the chain in the file at path, naming its policies after
// owner; its policies take o.
func OpenFile(path, owner string, o Options) (*File, error) {
	f := &File{path: path, owner: owner, b: NewBuilder(o)}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Chain implements ChainSource: the chain last loaded.
func (f *File) Chain() *Chain { return f.cur.Load() }

// Reload reads the file again and swaps in its chain. Policies dropped
// from the file are closed as they are swapped out (a rate limiter's
// Redis connection): a call still under way with one may see it closed.
func (f *File) Reload() error {
	specs, err := Load(f.path, f.owner)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.b.Build(specs)
	if err != nil {
		return fmt.Errorf("load guard %q: %w", f.path, err)
	}
	if old := f.cur.Swap(c); old != nil {
		f.b.Retain(c)
		closeDropped(old, c)
	}
	return nil
}

// closeDropped closes the policies of old that c no longer runs.
func closeDropped(old, c *Chain) {
	keep := map[Policy]bool{}
	for _, p := range c.policies {
		keep[p] = true
	}
	var dropped []Policy
	for _, p := range old.policies {
		if !keep[p] {
			dropped = append(dropped, p)
		}
	}
	_ = NewChain(dropped...).Close()
}

// Watch reloads the file whenever it changes, until ctx ends, checking
// every interval (a second when 0), and tells reloaded how each reload
// went.
func (f *File) Watch(ctx context.Context, every time.Duration, reloaded func(error)) {
	Watch(ctx, f.path, every, func() {
		err := f.Reload()
		if reloaded != nil {
			reloaded(err)
		}
	})
}

// Close closes the current chain's policies.
func (f *File) Close() error { return f.Chain().Close() }

// Describe implements prometheus.Collector: the chain's metrics change
// with the file, so they are described by none.
func (f *File) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector with the current chain's
// metrics.
func (f *File) Collect(ch chan<- prometheus.Metric) { f.Chain().Collector().Collect(ch) }

// Watch calls changed whenever the file's modification time or size
// changes, and returns when ctx ends. Polling keeps it portable and needs
// no signal handling outside main. A change counts once the file has held
// still for one poll, so a file an editor writes in place is read whole,
// not in the instant between truncating and writing it.
func Watch(ctx context.Context, path string, every time.Duration, changed func()) {
	if every <= 0 {
		every = time.Second
	}
	stamp := func() string {
		fi, err := os.Stat(path)
		if err != nil {
			return ""
		}
		return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	}
	last, pending := stamp(), ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch s := stamp(); {
		case s == last || s == "":
			pending = ""
		case s != pending:
			pending = s
		default:
			last, pending = s, ""
			changed()
		}
	}
}

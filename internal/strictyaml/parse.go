package strictyaml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Default limits. A scenario is a few kilobytes and a few hundred nodes;
// these leave room for files a hundred times that, and refuse what only an
// accident or an attack produces (a YAML alias bomb: a few kilobytes whose
// aliases expand to billions of nodes).
const (
	DefaultMaxBytes = 1 << 20 // 1 MiB
	DefaultMaxNodes = 100_000
)

// Limits bound what one document may cost to decode, so that no input,
// from a file or an API request, can take the memory or the time of the
// process reading it.
type Limits struct {
	// MaxBytes is the largest document read; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxNodes is the most nodes a document may have with every alias
	// expanded, as the decoder visits them; 0 means DefaultMaxNodes.
	MaxNodes int
}

func (l Limits) maxBytes() int64 {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

func (l Limits) maxNodes() int {
	if l.MaxNodes <= 0 {
		return DefaultMaxNodes
	}
	return l.MaxNodes
}

// DocumentError is a document that cannot be decoded at all: it is not
// valid YAML, or it is over a limit.
type DocumentError struct {
	Problem Problem
	// Limit says the document is over a limit, not invalid.
	Limit bool
}

// Error says what is wrong on one line, for an API response or a flag's
// message; a file's reader prints Problem with its file name instead.
func (e *DocumentError) Error() string {
	if e.Limit {
		return fmt.Sprintf("line %d: %s", e.Problem.Line, e.Problem.Msg)
	}
	return fmt.Sprintf("not valid JSON or YAML: line %d: %s", e.Problem.Line, strings.TrimPrefix(e.Problem.Msg, syntaxPrefix))
}

const syntaxPrefix = "YAML syntax error: "

// ParseValue parses a small document, such as an API request's parameters,
// with the default limits, and returns its value: nil for an empty one.
func ParseValue(data []byte) (*yaml.Node, error) {
	root, err := Parse(context.Background(), data, Limits{})
	if err != nil || len(root.Content) == 0 {
		return nil, err
	}
	return root.Content[0], nil
}

// ReadFile reads and parses the file at path within lim (see Parse). A
// file that cannot be read is an *os.PathError; a file over MaxBytes is
// refused without being read whole.
func ReadFile(ctx context.Context, path string, lim Limits) ([]byte, *yaml.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := ReadAll(f, lim)
	if err != nil {
		return nil, nil, err
	}
	root, err := Parse(ctx, data, lim)
	return data, root, err
}

// ReadAll reads a document from r, refusing one over lim's MaxBytes
// without reading more than one byte beyond it.
func ReadAll(r io.Reader, lim Limits) ([]byte, error) {
	max := lim.maxBytes()
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, tooLarge(max)
	}
	return data, nil
}

func tooLarge(max int64) *DocumentError {
	return &DocumentError{Limit: true, Problem: Problem{Line: 1, Col: 1,
		Msg: fmt.Sprintf("the document is larger than the limit of %s", byteSize(max))}}
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Parse reads the first YAML document of data into a node tree, within
// lim, and gives up when ctx is done (returning ctx's error). A document
// that is not valid YAML or is over a limit is a *DocumentError; an empty
// one is a document node without content. Its time is linear in the size
// of data, its memory linear in the size of data and in MaxNodes.
func Parse(ctx context.Context, data []byte, lim Limits) (*yaml.Node, error) {
	if int64(len(data)) > lim.maxBytes() {
		return nil, tooLarge(lim.maxBytes())
	}
	root, last, err := parse(ctx, data)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &DocumentError{Problem: syntaxProblem(ctx, data, err, last)}
	}
	c := counter{max: lim.maxNodes(), size: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	c.count(root)
	switch {
	case c.cycle != nil:
		return nil, &DocumentError{Problem: Problem{Line: c.cycle.Line, Col: c.cycle.Column,
			Msg: fmt.Sprintf("alias *%s is inside the value it names", c.cycle.Value)}}
	case c.over != nil:
		return nil, &DocumentError{Limit: true, Problem: Problem{Line: c.over.Line, Col: c.over.Column,
			Msg: fmt.Sprintf("the document has more than the limit of %d nodes, every alias expanded", c.max)}}
	}
	return root, nil
}

// parse decodes the first document of data, feeding the YAML library one
// line at a time: a syntax error then leaves behind the number of the
// last line the library read, which is where, or just after where, the
// document stops being valid.
func parse(ctx context.Context, data []byte) (root *yaml.Node, last int, err error) {
	r := &lineReader{ctx: ctx, data: data}
	root = &yaml.Node{}
	err = yaml.NewDecoder(r).Decode(root)
	if errors.Is(err, io.EOF) {
		return &yaml.Node{Kind: yaml.DocumentNode}, 0, nil
	}
	return root, r.lines, err
}

// lineReader gives its data one line per Read, and stops with ctx's error
// once ctx is done.
type lineReader struct {
	ctx   context.Context
	data  []byte
	reads int
	lines int  // lines begun so far
	mid   bool // the last Read ended inside a line
}

func (r *lineReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.reads++; r.reads%64 == 0 {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
	}
	n := len(r.data)
	if i := bytes.IndexByte(r.data, '\n'); i >= 0 {
		n = i + 1
	}
	n = copy(p, r.data[:n])
	if !r.mid {
		r.lines++
	}
	r.mid = r.data[n-1] != '\n'
	r.data = r.data[n:]
	return n, nil
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxProblem places a YAML syntax error. The library gives no column
// and, for many errors, the line of the construct that encloses the
// mistake, so the line reported is the first at which the file stops being
// valid YAML for the same reason, which is where a person has to look:
// prefixes of the file are parsed again, from the first line up, when that
// costs at most a budget of bytes proportional to the file's size.
// Otherwise (a late mistake in a large file) it is searched for down from
// the last line the library read, a few prefixes at most, as the mistake
// is on that line or just before it; past those, the last line checked is
// reported. Either way a late mistake costs a few parses of the file, not
// one per line.
func syntaxProblem(ctx context.Context, data []byte, err error, last int) Problem {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return Problem{Line: 1, Col: 1, Msg: syntaxPrefix + err.Error()}
	}
	msg := m[2]
	ends := lineEnds(data)
	last = min(max(last, 1), len(ends))
	fails := func(k int) bool {
		_, _, err := parse(ctx, data[:ends[k-1]])
		if err == nil {
			return false
		}
		m := yamlLine.FindStringSubmatch(err.Error())
		return m != nil && m[2] == msg
	}
	cost := int64(0) // of parsing every prefix up to last
	for _, e := range ends[:last] {
		cost += int64(e)
	}
	line := 0
	if cost <= int64(4<<20)+4*int64(len(data)) {
		for k := 1; k <= last && ctx.Err() == nil; k++ {
			if fails(k) {
				line = k
				break
			}
		}
	} else {
		line = last
		for k := last - 1; k >= 1 && last-k <= maxDownward && ctx.Err() == nil && fails(k); k-- {
			line = k
		}
	}
	if line == 0 {
		line, _ = strconv.Atoi(m[1])
		line = min(max(line, 1), len(ends))
	}
	start := 0
	if line > 1 {
		start = ends[line-2]
	}
	text := data[start:ends[line-1]]
	col := len(text) - len(bytes.TrimLeft(text, " ")) + 1
	return Problem{Line: line, Col: col, Msg: syntaxPrefix + msg}
}

// maxDownward is how many lines before the last line read a syntax error
// in a large file is searched for.
const maxDownward = 8

// lineEnds returns the offset just past each line of data.
func lineEnds(data []byte) []int {
	var ends []int
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	return ends
}

// counter counts a tree's nodes as the decoder visits them, every alias
// expanded, in time linear in the tree: a value with an anchor is counted
// once and its size added at every alias of it.
type counter struct {
	max   int
	size  map[*yaml.Node]int // anchored nodes' expanded sizes
	open  map[*yaml.Node]bool
	over  *yaml.Node // where the count first passed max
	cycle *yaml.Node // an alias inside the value it names
}

// count returns n's expanded size, at most max+1.
func (c *counter) count(n *yaml.Node) int {
	if c.over != nil || c.cycle != nil {
		return c.max + 1
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if c.open[n.Alias] {
			c.cycle = n
			return c.max + 1
		}
		s, ok := c.size[n.Alias]
		if !ok {
			s = c.count(n.Alias)
		}
		return c.add(n, 1+s)
	}
	if n.Anchor != "" {
		c.open[n] = true
		defer delete(c.open, n)
	}
	s := 1
	for _, ch := range n.Content {
		s += c.count(ch)
		if s > c.max {
			return c.add(n, c.max+1)
		}
	}
	if n.Anchor != "" {
		c.size[n] = s
	}
	return s
}

func (c *counter) add(n *yaml.Node, s int) int {
	if s > c.max && c.over == nil {
		c.over = n
	}
	return min(s, c.max+1)
}

// Package strictyaml decodes YAML node trees into Go values strictly: a key
// that matches no field is a problem, every problem is collected with the
// key path and the line and column it comes from, and scalar values may use
// ${VAR} expansion. The scenario file, the admin API's JSON bodies (JSON is
// YAML) and the CLI's fault flags all decode through it, so they accept the
// same spellings ("300ms", "50%") and report problems in the same words.
//
// It imports nothing of resctl's but internal/suggest.
package strictyaml

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/internal/suggest"
)

// Problem is one thing wrong with a document.
type Problem struct {
	// Path is the key path of the offending value, e.g.
	// "phases[1].faults[0].latency.percent"; empty for document-level
	// problems.
	Path string
	// Line and Col locate the problem, 1-based.
	Line, Col int
	Msg       string
}

// Pos is a position in a document.
type Pos struct{ Line, Col int }

// NodePos is where a node starts.
func NodePos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

// Decoder turns a YAML node tree into Go values, recording where every value
// came from and collecting every problem instead of stopping at the first.
type Decoder struct {
	Problems []Problem
	// At maps a key path to its value's node.
	At map[string]*yaml.Node

	paths map[string]bool // paths with a problem
}

// New returns an empty Decoder.
func New() *Decoder { return &Decoder{At: map[string]*yaml.Node{}, paths: map[string]bool{}} }

// Add records a problem at p.
func (d *Decoder) Add(p Pos, path, format string, args ...any) {
	d.Problems = append(d.Problems, Problem{Path: path, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
	d.paths[path] = true
}

// Reported says whether a problem was recorded at path, in constant time,
// so checks that follow decoding can leave a value that did not decode
// alone however many problems a document has.
func (d *Decoder) Reported(path string) bool { return d.paths[path] }

// NodeDecoder is implemented by types that decode themselves from a node,
// such as a fault whose key selects the type of its value.
type NodeDecoder interface {
	DecodeNode(d *Decoder, n *yaml.Node, path string)
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	nodeDecoderType     = reflect.TypeFor[NodeDecoder]()
)

// Decode decodes n into v, which must be settable; path names n in problems.
func (d *Decoder) Decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.At[path] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
			v.Addr().Interface().(NodeDecoder).DecodeNode(d, n, path)
		}
		return // "key:" with no value keeps the default
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$") {
		v, err := ExpandEnv(n.Value, LookupEnv)
		if err != nil {
			d.Add(NodePos(n), path, "%v", err)
			return
		}
		c := *n
		c.Value = v
		n = &c
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(NodeDecoder).DecodeNode(d, n, path)
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		d.decodeDuration(n, v, path)
		return
	case v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType):
		if !d.Expect(n, yaml.ScalarNode, path) {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.Add(NodePos(n), path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.Decode(n, v.Elem(), path)
	case reflect.Struct:
		d.DecodeStruct(n, v, path)
	case reflect.Slice:
		if !d.Expect(n, yaml.SequenceNode, path) {
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.Decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if !d.Expect(n, yaml.MappingNode, path) {
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			elem := reflect.New(t.Elem()).Elem()
			d.Decode(val, elem, Join(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value), elem)
		}
		v.Set(m)
	case reflect.String:
		if d.Expect(n, yaml.ScalarNode, path) {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		if !d.Expect(n, yaml.ScalarNode, path) {
			return
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			d.Add(NodePos(n), path, "expected true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !d.Expect(n, yaml.ScalarNode, path) {
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, t.Bits())
		if err != nil {
			d.Add(NodePos(n), path, "expected a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !d.Expect(n, yaml.ScalarNode, path) {
			return
		}
		u, err := strconv.ParseUint(n.Value, 0, t.Bits())
		if err != nil {
			d.Add(NodePos(n), path, "expected a whole number of at least 0, got %q", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if !d.Expect(n, yaml.ScalarNode, path) {
			return
		}
		f, err := strconv.ParseFloat(n.Value, t.Bits())
		if err != nil {
			d.Add(NodePos(n), path, "expected a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.Add(NodePos(n), path, "cannot decode into %s", t)
	}
}

func (d *Decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if !d.Expect(n, yaml.ScalarNode, path) {
		return
	}
	s := strings.TrimSpace(n.Value)
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		d.Add(NodePos(n), path, "duration %q needs a unit, e.g. %ss or %sms", s, s, s)
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.Add(NodePos(n), path, "invalid duration %q: write it like 300ms, 10s or 1m30s", s)
		return
	}
	if dur > MaxDuration {
		d.Add(NodePos(n), path, "duration %s is over the maximum of 168h (a week)", s)
		return
	}
	v.SetInt(int64(dur))
}

// MaxDuration is the longest duration a document may give. No experiment,
// fault, TTL or policy needs more than a week, and a value near
// time.Duration's range (292 years) overflows the first deadline or sum
// made of it.
const MaxDuration = 7 * 24 * time.Hour

// fieldsOf maps the YAML keys of a struct to field index paths, following
// `yaml:",inline"` embedding. Keys tagged "-" are not decodable.
func fieldsOf(t reflect.Type) (map[string][]int, []string) {
	fields := map[string][]int{}
	var names []string
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			idx := append(append([]int{}, prefix...), i)
			if opts == "inline" {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = idx
			names = append(names, name)
		}
	}
	walk(t, nil)
	return fields, names
}

// DecodeStruct decodes a mapping into the struct v, strictly.
func (d *Decoder) DecodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if !d.Expect(n, yaml.MappingNode, path) {
		return
	}
	fields, names := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := Join(path, k.Value)
		if seen[k.Value] {
			d.Add(NodePos(k), kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.unknownKey(n, k, path, names)
			continue
		}
		d.Decode(val, v.FieldByIndex(idx), kp)
	}
}

// unknownKey reports a key k of the map m at path that its struct has
// not. Where it is close to a known key the map lacks, the known key's
// path counts as reported too: k is most likely that key misspelt, and a
// check that finds the known key missing ("rate is required") would tell
// the same mistake twice.
func (d *Decoder) unknownKey(m, k *yaml.Node, path string, known []string) {
	kp := Join(path, k.Value)
	if s, ok := suggest.Closest(k.Value, known); ok {
		d.Add(NodePos(k), kp, "unknown key %q (did you mean %q?)", k.Value, s)
		if !hasKey(m, s) {
			d.paths[Join(path, s)] = true
		}
		return
	}
	d.Add(NodePos(k), kp, "unknown key %q; known keys: %s", k.Value, strings.Join(known, ", "))
}

var kindNames = map[yaml.Kind]string{
	yaml.ScalarNode:   "a single value",
	yaml.SequenceNode: "a list",
	yaml.MappingNode:  "a map of keys",
}

// Expect reports a problem unless n is of kind k.
func (d *Decoder) Expect(n *yaml.Node, k yaml.Kind, path string) bool {
	if n.Kind == k {
		return true
	}
	d.Add(NodePos(n), path, "expected %s, got %s", kindNames[k], kindNames[n.Kind])
	return false
}

// hasKey says whether the mapping m has the key.
func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// Join appends a key to a path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// OneKey reads a one-key map from a kind to its parameters, as faults and
// policies are written (`- latency: {delay: 300ms}`), or a bare kind
// (`- abort`) meaning all defaults, whose parameters are then a null node.
// what names the item in messages ("fault", "policy") and example shows
// one. It reports what is wrong and returns ok false.
func (d *Decoder) OneKey(n *yaml.Node, path, what, example string) (kind, params *yaml.Node, ok bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.Add(NodePos(n), path, "empty %s: name a kind with its parameters, e.g. `%s`", what, example)
		return nil, nil, false
	}
	if n.Kind == yaml.ScalarNode {
		null := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		return n, null, true
	}
	if !d.Expect(n, yaml.MappingNode, path) {
		return nil, nil, false
	}
	if len(n.Content) != 2 {
		d.Add(NodePos(n), path, "a %s is one kind with its parameters, e.g. `%s`; found %d keys", what, example, len(n.Content)/2)
		return nil, nil, false
	}
	return n.Content[0], n.Content[1], true
}

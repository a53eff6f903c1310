package scenario

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

// pos is a position in the scenario file.
type pos struct{ line, col int }

func nodePos(n *yaml.Node) pos { return pos{n.Line, n.Column} }

// decoder turns a YAML node tree into Go values, recording where every value
// came from and collecting every problem instead of stopping at the first.
// It is strict: a key that matches no field is a problem.
type decoder struct {
	problems []Problem
	at       map[string]*yaml.Node // key path → its value's node
}

func newDecoder() *decoder { return &decoder{at: map[string]*yaml.Node{}} }

func (d *decoder) problem(p pos, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, args...)})
}

// nodeDecoder is implemented by types that decode themselves from a node,
// such as Fault, whose key selects the type of its value.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	nodeDecoderType     = reflect.TypeFor[nodeDecoder]()
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.at[path] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
			v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		}
		return // "key:" with no value keeps the default
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "$") {
		v, err := expandEnv(n.Value, lookupEnv)
		if err != nil {
			d.problem(nodePos(n), path, "%v", err)
			return
		}
		c := *n
		c.Value = v
		n = &c
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		d.decodeDuration(n, v, path)
		return
	case v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType):
		if !d.expect(n, yaml.ScalarNode, path) {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.problem(nodePos(n), path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if !d.expect(n, yaml.SequenceNode, path) {
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if !d.expect(n, yaml.MappingNode, path) {
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			elem := reflect.New(t.Elem()).Elem()
			d.decode(val, elem, join(path, k.Value))
			m.SetMapIndex(reflect.ValueOf(k.Value), elem)
		}
		v.Set(m)
	case reflect.String:
		if d.expect(n, yaml.ScalarNode, path) {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		if !d.expect(n, yaml.ScalarNode, path) {
			return
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			d.problem(nodePos(n), path, "expected true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !d.expect(n, yaml.ScalarNode, path) {
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, t.Bits())
		if err != nil {
			d.problem(nodePos(n), path, "expected a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !d.expect(n, yaml.ScalarNode, path) {
			return
		}
		u, err := strconv.ParseUint(n.Value, 0, t.Bits())
		if err != nil {
			d.problem(nodePos(n), path, "expected a whole number of at least 0, got %q", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		if !d.expect(n, yaml.ScalarNode, path) {
			return
		}
		f, err := strconv.ParseFloat(n.Value, t.Bits())
		if err != nil {
			d.problem(nodePos(n), path, "expected a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.problem(nodePos(n), path, "cannot decode into %s", t)
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.ScalarNode, path) {
		return
	}
	s := strings.TrimSpace(n.Value)
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		d.problem(nodePos(n), path, "duration %q needs a unit, e.g. %ss or %sms", s, s, s)
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.problem(nodePos(n), path, "invalid duration %q: write it like 300ms, 10s or 1m30s", s)
		return
	}
	v.SetInt(int64(dur))
}

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

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if !d.expect(n, yaml.MappingNode, path) {
		return
	}
	fields, names := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if seen[k.Value] {
			d.problem(nodePos(k), kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.unknownKey(k, kp, names)
			continue
		}
		d.decode(val, v.FieldByIndex(idx), kp)
	}
}

func (d *decoder) unknownKey(k *yaml.Node, path string, known []string) {
	if s, ok := suggest.Closest(k.Value, known); ok {
		d.problem(nodePos(k), path, "unknown key %q (did you mean %q?)", k.Value, s)
		return
	}
	d.problem(nodePos(k), path, "unknown key %q; known keys: %s", k.Value, strings.Join(known, ", "))
}

var kindNames = map[yaml.Kind]string{
	yaml.ScalarNode:   "a single value",
	yaml.SequenceNode: "a list",
	yaml.MappingNode:  "a map of keys",
}

func (d *decoder) expect(n *yaml.Node, k yaml.Kind, path string) bool {
	if n.Kind == k {
		return true
	}
	d.problem(nodePos(n), path, "expected %s, got %s", kindNames[k], kindNames[n.Kind])
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"slices"
	"strconv"
	"testing"
)

// xmlNode is a parsed XML element, enough to check a document's shape.
type xmlNode struct {
	name     string
	attrs    map[string]string
	children []*xmlNode
	text     string
}

func parseXML(t *testing.T, data []byte) *xmlNode {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, data)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if root == nil {
		t.Fatal("no root element")
	}
	return root
}

// xsdChild is a child element a schema sequence allows, and how many
// times it may occur (0 = unbounded).
type xsdChild struct {
	name string
	max  int
}

// junitShape is Jenkins' junit-10.xsd, the schema CI test reporters agree
// on, as data: per element its attributes (required ones marked) and its
// children in the order the schema's sequence allows.
var junitShape = map[string]struct {
	required, optional []string
	children           []xsdChild
	text               bool // mixed or simple content allowed
}{
	"testsuites": {optional: []string{"name", "time", "tests", "failures", "disabled", "errors"},
		children: []xsdChild{{"testsuite", 0}}},
	"testsuite": {required: []string{"name", "tests"},
		optional: []string{"failures", "errors", "time", "disabled", "skipped", "timestamp", "hostname", "id", "package"},
		children: []xsdChild{{"properties", 1}, {"testcase", 0}, {"system-out", 1}, {"system-err", 1}}},
	"properties": {children: []xsdChild{{"property", 0}}},
	"property":   {required: []string{"name", "value"}},
	"testcase": {required: []string{"name"}, optional: []string{"assertions", "time", "classname", "status"},
		children: []xsdChild{{"skipped", 1}, {"error", 0}, {"failure", 0}, {"system-out", 0}, {"system-err", 0}}},
	"failure":    {optional: []string{"type", "message"}, text: true},
	"error":      {optional: []string{"type", "message"}, text: true},
	"skipped":    {optional: []string{"message"}, text: true},
	"system-out": {text: true},
	"system-err": {text: true},
}

// validateJUnit checks a JUnit document against junitShape and that the
// counts add up, and returns it parsed.
func validateJUnit(t *testing.T, data []byte) *xmlNode {
	t.Helper()
	root := parseXML(t, data)
	if root.name != "testsuites" {
		t.Fatalf("root is <%s>, want <testsuites>", root.name)
	}
	var check func(n *xmlNode, path string)
	check = func(n *xmlNode, path string) {
		shape, ok := junitShape[n.name]
		if !ok {
			t.Errorf("%s: element <%s> is not in the JUnit schema", path, n.name)
			return
		}
		for _, a := range shape.required {
			if _, ok := n.attrs[a]; !ok {
				t.Errorf("%s: missing required attribute %q", path, a)
			}
		}
		for a := range n.attrs {
			if !slices.Contains(shape.required, a) && !slices.Contains(shape.optional, a) {
				t.Errorf("%s: attribute %q is not in the JUnit schema", path, a)
			}
		}
		pos, count := 0, 0
		for _, c := range n.children {
			for pos < len(shape.children) && shape.children[pos].name != c.name {
				pos, count = pos+1, 0
			}
			if pos == len(shape.children) {
				t.Errorf("%s: child <%s> not allowed here (allowed, in order: %v)", path, c.name, shape.children)
				break
			}
			count++
			if m := shape.children[pos].max; m > 0 && count > m {
				t.Errorf("%s: more than %d <%s>", path, m, c.name)
			}
			check(c, path+"/"+c.name)
		}
		if !shape.text && len(bytes.TrimSpace([]byte(n.text))) > 0 {
			t.Errorf("%s: text content not allowed", path)
		}
	}
	check(root, "testsuites")

	var tests, failures, errs int
	for _, s := range root.children {
		cases, f, e := 0, 0, 0
		for _, c := range s.children {
			if c.name != "testcase" {
				continue
			}
			cases++
			for _, p := range c.children {
				switch p.name {
				case "failure":
					f++
				case "error":
					e++
				}
			}
		}
		if s.attrs["tests"] != itoa(cases) || s.attrs["failures"] != itoa(f) || s.attrs["errors"] != itoa(e) {
			t.Errorf("suite %q counts tests=%s failures=%s errors=%s, but holds %d cases, %d failures, %d errors",
				s.attrs["name"], s.attrs["tests"], s.attrs["failures"], s.attrs["errors"], cases, f, e)
		}
		for _, num := range []string{"time"} {
			if v, ok := s.attrs[num]; ok {
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					t.Errorf("suite %s=%q is not a number", num, v)
				}
			}
		}
		tests, failures, errs = tests+cases, failures+f, errs+e
	}
	if root.attrs["tests"] != itoa(tests) || root.attrs["failures"] != itoa(failures) || root.attrs["errors"] != itoa(errs) {
		t.Errorf("testsuites counts %v disagree with its suites (%d, %d, %d)", root.attrs, tests, failures, errs)
	}
	return root
}

func itoa(n int) string { return strconv.Itoa(n) }

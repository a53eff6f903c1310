package scenario

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/scenario.schema.json and scenario/schema_docs.json")

// schemaSources are the packages whose types scenario files are made of,
// by their directory from here.
var schemaSources = []string{".", "../check", "../guard", "../inject", "../inject/agent", "../inject/netem", "../inject/process", "../quantity"}

// sourceDocs reads the doc comments of every type and struct field of the
// schema's packages, by typeKey and fieldKey.
func sourceDocs(t *testing.T) map[string]string {
	t.Helper()
	docs := map[string]string{}
	for _, dir := range schemaSources {
		pkg := "github.com/resctl/resctl/" + strings.TrimPrefix(dir, "../")
		if dir == "." {
			pkg = "github.com/resctl/resctl/scenario"
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					doc := ts.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					key := pkg + "." + ts.Name.Name
					docs[key] = doc.Text()
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					for _, fld := range st.Fields.List {
						text := fld.Doc.Text()
						if text == "" {
							text = fld.Comment.Text()
						}
						for _, n := range fld.Names {
							docs[key+"."+n.Name] = text
						}
					}
				}
			}
		}
	}
	return docs
}

// The checked-in schema is what JSONSchema generates, and the doc
// comments it carries are the source's: regenerate both with
// go test ./scenario -run TestJSONSchema -update.
func TestJSONSchema_InSync(t *testing.T) {
	docs := sourceDocs(t)
	got, looked, err := jsonSchema(docs)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	used := map[string]string{}
	for k := range looked {
		if strings.TrimSpace(docs[k]) != "" {
			used[k] = docs[k]
		}
	}
	usedJSON, err := json.MarshalIndent(used, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	usedJSON = append(usedJSON, '\n')
	const schemaPath, docsPath = "../docs/scenario.schema.json", "schema_docs.json"
	if *update {
		for path, b := range map[string][]byte{schemaPath: got, docsPath: usedJSON} {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, b := range map[string][]byte{schemaPath: got, docsPath: usedJSON} {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s is out of date: run go test ./scenario -run TestJSONSchema -update", path)
		}
	}
	embedded, err := embeddedDocs()
	if err != nil {
		t.Fatal(err)
	}
	if !*update && !maps.Equal(embedded, used) {
		t.Errorf("the compiled-in schema_docs.json is not the source's: run go test ./scenario -run TestJSONSchema -update")
	}
}

// Every key of a scenario has a description for editors to show, from the
// doc comment of its Go field (or of its type).
func TestJSONSchema_EveryPropertyDescribed(t *testing.T) {
	raw, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var missing []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if props, ok := x["properties"].(map[string]any); ok {
				for name, p := range props {
					pm, _ := p.(map[string]any)
					if d, _ := pm["description"].(string); d == "" && len(props) > 1 {
						missing = append(missing, path+"."+name)
					}
				}
			}
			for k, c := range x {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", root)
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("no description: %s", m)
	}
}

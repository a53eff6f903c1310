package verify_test

import (
	"os"
	"strings"
	"testing"

	"github.com/resctl/resctl/verify"
)

// TestDocs_ExamplesParse keeps the language reference honest: every
// example expression in docs/sla.md (its indented lines, up to the
// grammar, except observed output) must parse.
func TestDocs_ExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../docs/sla.md")
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(doc), "\n## Grammar")
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		src, ok := strings.CutPrefix(line, "    ")
		if !ok || strings.HasPrefix(src, "observed ") || strings.TrimSpace(src) == "" {
			continue
		}
		n++
		if _, err := verify.Parse(src); err != nil {
			t.Errorf("docs/sla.md example %q: %v", src, err)
		}
	}
	if n < 20 {
		t.Errorf("found %d examples in docs/sla.md; has its layout changed?", n)
	}
}

package strictyaml

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// aliasBomb is a "billion laughs": a few kilobytes whose aliases, each
// level ten of the one before, expand to 10^depth nodes.
func aliasBomb(depth int) string {
	var b strings.Builder
	b.WriteString("a: &a [x, x, x, x, x, x, x, x, x, x]\n")
	prev := "a"
	for i := 1; i < depth; i++ {
		name := fmt.Sprintf("l%d", i)
		fmt.Fprintf(&b, "%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	return b.String()
}

func TestParse_limits(t *testing.T) {
	tests := []struct {
		name string
		src  string
		lim  Limits
		want string // "" for no error; else "line:col: message substring"
	}{
		{name: "within the limits", src: "a: [1, 2, 3]\nb: {c: d}\n"},
		{name: "aliases within the limit", src: aliasBomb(3), lim: Limits{MaxNodes: 2000}},
		{name: "too large", src: strings.Repeat("# x\n", 300), lim: Limits{MaxBytes: 1 << 10}, want: "1:1: larger than the limit of 1 KiB"},
		{name: "too many nodes", src: "a: [" + strings.Repeat("1, ", 200) + "1]\n", lim: Limits{MaxNodes: 100}, want: "1:4: more than the limit of 100 nodes"},
		{name: "alias bomb", src: aliasBomb(9), want: "5:5: more than the limit of 100000 nodes"},
		{name: "alias inside its own value", src: "a: &a [1, *a]\n", want: "1:11: alias *a is inside the value it names"},
		{name: "syntax error after an alias bomb", src: aliasBomb(9) + "- x\n", want: "10:1: YAML syntax error: did not find expected key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := Parse(context.Background(), []byte(tt.src), tt.lim)
			if tt.want == "" {
				if err != nil || root == nil {
					t.Fatalf("Parse = %v, %v; want a tree", root, err)
				}
				return
			}
			var de *DocumentError
			if !errors.As(err, &de) {
				t.Fatalf("Parse error = %v, want a *DocumentError", err)
			}
			got := fmt.Sprintf("%d:%d: %s", de.Problem.Line, de.Problem.Col, de.Problem.Msg)
			pos, msg, _ := strings.Cut(tt.want, ": ")
			if !strings.HasPrefix(got, pos+": ") || !strings.Contains(got, msg) {
				t.Errorf("problem %q, want %q", got, tt.want)
			}
		})
	}
}

// A syntax error is placed on the first line at which the document stops
// being valid YAML for the same reason, not on the line of the construct
// around it, which is all the YAML library gives for many errors.
func TestParse_syntaxErrorLine(t *testing.T) {
	tests := []struct {
		name, src string
		line, col int
	}{
		{"block entry in a mapping", "name: t\n- a\n", 2, 1},
		{"key less indented", "a:\n  b: c\n d: e\n", 3, 2},
		{"unclosed quote", "a: 'unclosed\nb: c\nd: e\n", 1, 1},
		{"unclosed flow sequence", "a: [1, 2\nb: c\n", 1, 1},
		{"tab indentation", "a:\n\tb: c\n", 2, 1},
		{"late in a large file", "name: t\n" + strings.Repeat("k: "+strings.Repeat("x", 2000)+"\n", 1000) + "- a\n", 1002, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(context.Background(), []byte(tt.src), Limits{MaxBytes: 64 << 20})
			var de *DocumentError
			if !errors.As(err, &de) {
				t.Fatalf("Parse error = %v, want a *DocumentError", err)
			}
			if de.Problem.Line != tt.line || de.Problem.Col != tt.col || !strings.HasPrefix(de.Problem.Msg, "YAML syntax error: ") {
				t.Errorf("problem %d:%d %q, want at %d:%d", de.Problem.Line, de.Problem.Col, de.Problem.Msg, tt.line, tt.col)
			}
		})
	}
}

func TestParse_canceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src := strings.Repeat("k: v\n", 10_000)
	if _, err := Parse(ctx, []byte(src), Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Parse with a canceled context = %v, want context.Canceled", err)
	}
}

func TestReadAll_limit(t *testing.T) {
	data, err := ReadAll(strings.NewReader(strings.Repeat("x", 100)), Limits{MaxBytes: 100})
	if err != nil || len(data) != 100 {
		t.Fatalf("ReadAll at the limit = %d bytes, %v", len(data), err)
	}
	var de *DocumentError
	if _, err := ReadAll(strings.NewReader(strings.Repeat("x", 101)), Limits{MaxBytes: 100}); !errors.As(err, &de) || !de.Limit {
		t.Fatalf("ReadAll over the limit = %v, want a limit *DocumentError", err)
	}
}

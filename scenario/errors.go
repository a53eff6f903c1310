package scenario

import (
	"fmt"
	"strings"

	"github.com/resctl/resctl/internal/strictyaml"
)

// Problem is one thing wrong with a scenario file: its key path, line,
// column and message.
type Problem = strictyaml.Problem

// ValidationError lists every problem found in a scenario file. Its message
// prints one problem per line as "file:line:col: path: message".
type ValidationError struct {
	File     string
	Problems []Problem

	lines []string // the file's text, for Detailed
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		e.writeProblem(&b, p)
	}
	return b.String()
}

// writeProblem writes "file:line:col: path: message".
func (e *ValidationError) writeProblem(b *strings.Builder, p Problem) {
	fmt.Fprintf(b, "%s:%d:%d: ", e.File, p.Line, p.Col)
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
}

// Detailed prints every problem like Error, each followed by the line of
// the file it is on and a caret under its column, so a person sees the
// mistake in place without opening the file.
func (e *ValidationError) Detailed() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		e.writeProblem(&b, p)
		if p.Line >= 1 && p.Line <= len(e.lines) {
			line := strings.TrimRight(e.lines[p.Line-1], "\r")
			if strings.TrimSpace(line) == "" {
				continue
			}
			// Tabs keep their width so the caret lines up.
			var pad strings.Builder
			for j, r := range []rune(line) {
				if j >= p.Col-1 {
					break
				}
				if r == '\t' {
					pad.WriteRune('\t')
				} else {
					pad.WriteByte(' ')
				}
			}
			fmt.Fprintf(&b, "\n    %s\n    %s^", line, pad.String())
		}
	}
	return b.String()
}

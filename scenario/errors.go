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
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, p.Line, p.Col)
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

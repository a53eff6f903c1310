package strictyaml

import (
	"fmt"
	"os"
	"strings"
)

// ExpandEnv replaces ${NAME} and ${NAME:-default} in a scalar value with the
// environment's values, so one scenario can serve several environments
// (a CI job sets TARGET_URL, a laptop uses the default). "$$" is a literal
// "$". A variable that is unset and has no default is an error, never a
// silent empty string.
func ExpandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", s)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !ValidEnvName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${%s}", name, expr)
		}
		v, ok := lookup(name)
		switch {
		case ok && v != "":
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		case ok:
		default:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
		}
		i += 2 + end
	}
	return b.String(), nil
}

// ValidEnvName reports whether name is a valid variable name.
func ValidEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		if r != '_' && !('A' <= r && r <= 'Z') && !('a' <= r && r <= 'z') && !(i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// LookupEnv looks variables up; tests replace it.
var LookupEnv = os.LookupEnv

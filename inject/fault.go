package inject

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/resctl/resctl/quantity"
)

// Spec is the configuration of one fault, as written in a scenario under the
// fault's kind name. Specs are plain data; Build turns one into a live fault.
type Spec interface {
	// Kind is the name the scenario uses for this fault, e.g. "latency".
	Kind() string
	// Selector says which requests the fault applies to.
	Selector() Match
	// Check reports every problem with the configuration, naming the
	// offending field by its YAML key.
	Check(problem func(field, msg string))
	// Build returns the fault the configuration describes. It is only
	// called on a Spec whose Check reported nothing.
	Build() HTTPFault
}

// HTTPFault acts on one HTTP request that the Board selected for it.
type HTTPFault interface {
	// Inject applies the fault. It returns true when it answered the request
	// itself, so the request must not be forwarded upstream. Inject must
	// return promptly once the request's context is done.
	Inject(w http.ResponseWriter, r *http.Request) (answered bool)
}

// Match selects the requests a fault applies to. Every fault kind embeds it,
// so every kind takes the same selection keys.
type Match struct {
	// Path is a path prefix; empty matches every path.
	Path string `yaml:"path"`
	// Method is an HTTP method; empty matches every method.
	Method string `yaml:"method"`
	// Percent is the share of matching requests the fault acts on.
	Percent quantity.Percent `yaml:"percent"`
}

// DefaultPercent is the share of matching requests a fault acts on when the
// scenario does not say.
const DefaultPercent = quantity.Percent(100)

func defaultMatch() Match { return Match{Percent: DefaultPercent} }

// Selector returns the match itself, so kinds that embed Match satisfy that
// part of Spec without repeating it.
func (m Match) Selector() Match { return m }

func (m Match) matches(r *http.Request) bool {
	if m.Method != "" && !strings.EqualFold(m.Method, r.Method) {
		return false
	}
	return m.Path == "" || strings.HasPrefix(r.URL.Path, m.Path)
}

func (m Match) check(problem func(field, msg string)) {
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		problem("path", "must start with /")
	}
	// Specs decoded from YAML are range-checked as they are parsed; specs
	// built in code or from JSON are checked here.
	if p := float64(m.Percent); !(p >= 0 && p <= 100) {
		problem("percent", fmt.Sprintf("%v is outside 0%%..100%%", p))
	}
}

// kinds is the registry from a scenario's fault name to a constructor of its
// Spec, pre-filled with the kind's defaults.
var kinds = map[string]func() Spec{
	"latency": func() Spec { return &LatencySpec{Match: defaultMatch()} },
	"abort":   func() Spec { return &AbortSpec{Match: defaultMatch(), Status: DefaultAbortStatus} },
}

// NewSpec returns an empty Spec of the named kind with its defaults filled in,
// ready to be decoded into.
func NewSpec(kind string) (Spec, bool) {
	f, ok := kinds[kind]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Kinds lists the fault kind names a scenario may use, sorted.
func Kinds() []string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

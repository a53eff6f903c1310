package session

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/internal/suggest"
	"github.com/resctl/resctl/quantity"
)

// Command is one line of a session, parsed. Verb is a fault kind or one of
// the session's own verbs (clear, load, mark, save, report, help, quit,
// faults).
type Command struct {
	Verb string
	// Fault commands: the proxy (or "target" for runtime faults into the
	// target's agent), the parameters as the scenario writes them, the
	// fault's TTL (0: the session's default) and its id ("": its kind).
	Proxy  string
	Params map[string]any
	TTL    time.Duration
	ID     string
	// Args are the other verbs' arguments, unquoted.
	Args []string
}

// Runtime says whether the command is a runtime fault, which goes to a
// service's agent rather than to a proxy.
func (c Command) Runtime() bool { return slices.Contains(agent.Kinds(), c.Verb) }

// Fault says whether the command adds a fault.
func (c Command) Fault() bool { return c.Params != nil }

// Verbs are the session's own commands, with their one-line usage.
var Verbs = []struct{ Name, Usage string }{
	{"clear", "clear [ID|PROXY|all]   switch off one fault, a proxy's, or every fault the session can see"},
	{"load", "load RATE DURATION [PATH]   send open-loop load through the proxy, e.g. load 100/s 30s /api/orders; load stop"},
	{"mark", `mark "TEXT"   put a mark on the timeline, e.g. mark "deploy v2"`},
	{"faults", "faults   list the active faults"},
	{"save", "save FILE   write the session as a scenario resctl run replays"},
	{"report", "report FILE   write the session's recovery report (.html, .json, .md or .xml for JUnit)"},
	{"wait", "wait DURATION|load   pause before the next command (in scripts), or until the load ends"},
	{"help", "help [COMMAND|KIND]   this help, or one command's"},
	{"quit", "quit   end the session, clearing its faults"},
}

// faultUsage is the grammar every fault kind shares.
const faultUsage = "KIND PROXY [VALUE ...] [key=value ...] [for=DURATION] [id=NAME]"

// slots say where a fault kind's bare values go: its main duration, whole
// number, byte size and gRPC code parameters. A bare percentage is always
// `percent`; a duration beyond the kind's own is the fault's TTL.
type slots struct{ duration, number, size, code string }

var kindSlots = map[string]slots{
	"latency":      {duration: "delay"},
	"delay":        {duration: "delay"},
	"slow_close":   {duration: "delay"},
	"abort":        {number: "status", code: "code"},
	"stream_error": {code: "code"},
	"reset":        {size: "after"},
	"bandwidth":    {size: "rate"},
	"truncate":     {size: "bytes"},
	"limit_data":   {size: "bytes"},
	"blackhole":    {},
	"goroutines":   {number: "count"},
	"memory":       {size: "bytes"},
	"cpu":          {number: "workers"},
	"gc":           {duration: "interval"},
}

// Kinds lists every fault kind a session can add.
func Kinds() []string {
	var ks []string
	for _, l := range []inject.Layer{inject.LayerHTTP, inject.LayerGRPC, inject.LayerTCP} {
		ks = append(ks, inject.KindsFor(l)...)
	}
	ks = append(ks, agent.Kinds()...)
	slices.Sort(ks)
	return slices.Compact(ks)
}

// ParseError is a line the session cannot read, with a hint where one is
// known.
type ParseError struct {
	Msg, Hint string
}

func (e *ParseError) Error() string {
	if e.Hint == "" {
		return e.Msg
	}
	return e.Msg + " (" + e.Hint + ")"
}

func parseErr(hint, format string, a ...any) error {
	return &ParseError{Msg: fmt.Sprintf(format, a...), Hint: hint}
}

// MaxLine bounds a command line: a longer one is refused, not read.
const MaxLine = 4096

// Parse reads one command line. An empty line or a comment (#) is a
// Command with no Verb.
func Parse(line string) (Command, error) {
	if len(line) > MaxLine {
		return Command{}, parseErr("", "line of %d bytes: at most %d", len(line), MaxLine)
	}
	words, err := split(line)
	if err != nil {
		return Command{}, err
	}
	if len(words) == 0 || strings.HasPrefix(words[0], "#") {
		return Command{}, nil
	}
	verb, args := strings.ToLower(words[0]), words[1:]
	switch verb {
	case "exit", "q":
		verb = "quit"
	case "?":
		verb = "help"
	case "list", "ls":
		verb = "faults"
	}
	for _, v := range Verbs {
		if v.Name == verb {
			return parseVerb(verb, args)
		}
	}
	if slices.Contains(Kinds(), verb) {
		return parseFault(verb, args)
	}
	names := Kinds()
	for _, v := range Verbs {
		names = append(names, v.Name)
	}
	if near, ok := suggest.Closest(verb, names); ok {
		return Command{}, parseErr("type help for every command", "unknown command %q: did you mean %s?", words[0], near)
	}
	return Command{}, parseErr("type help for every command", "unknown command %q", words[0])
}

func parseVerb(verb string, args []string) (Command, error) {
	c := Command{Verb: verb, Args: args}
	switch verb {
	case "clear":
		if len(args) > 1 {
			return c, parseErr(usageOf(verb), "clear takes at most one fault id or proxy name")
		}
	case "load":
		if len(args) == 1 && args[0] == "stop" {
			return c, nil
		}
		if len(args) < 2 || len(args) > 3 {
			return c, parseErr(usageOf(verb), "load needs a rate and a duration")
		}
		var r quantity.Rate
		if err := r.UnmarshalText([]byte(args[0])); err != nil || r <= 0 {
			return c, parseErr("e.g. 100/s", "load: rate %q is not a rate above zero", args[0])
		}
		d, err := time.ParseDuration(args[1])
		if err != nil || d <= 0 {
			return c, parseErr("e.g. 30s or 2m", "load: duration %q is not a positive duration", args[1])
		}
		if len(args) == 3 && !strings.HasPrefix(args[2], "/") {
			return c, parseErr("e.g. /api/orders", "load: path %q must start with /", args[2])
		}
	case "mark":
		if len(args) == 0 {
			return c, parseErr(usageOf(verb), "mark needs a text")
		}
		c.Args = []string{strings.Join(args, " ")}
	case "save", "report":
		if len(args) != 1 {
			return c, parseErr(usageOf(verb), "%s needs one file name", verb)
		}
	case "wait":
		if len(args) != 1 {
			return c, parseErr(usageOf(verb), "wait needs a duration or load")
		}
		if d, err := time.ParseDuration(args[0]); args[0] != "load" && (err != nil || d <= 0 || d > MaxDuration) {
			return c, parseErr("e.g. wait 10s or wait load", "wait: %q is not a positive duration of at most %v", args[0], MaxDuration)
		}
	case "help":
		if len(args) > 1 {
			return c, parseErr("", "help takes at most one command")
		}
	case "quit", "faults":
		if len(args) > 0 {
			return c, parseErr("", "%s takes no arguments", verb)
		}
	}
	return c, nil
}

func usageOf(verb string) string {
	for _, v := range Verbs {
		if v.Name == verb {
			u, _, _ := strings.Cut(v.Usage, "   ")
			return "usage: " + u
		}
	}
	return "usage: " + verb + " " + strings.TrimPrefix(faultUsage, "KIND ")
}

var (
	percentRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?%$`)
	numberRE  = regexp.MustCompile(`^[0-9]+$`)
	codeRE    = regexp.MustCompile(`^[A-Z][A-Z_]+$`)
	keyRE     = regexp.MustCompile(`^[a-z][a-z_]*$`)
)

func parseFault(kind string, args []string) (Command, error) {
	c := Command{Verb: kind, Params: map[string]any{}}
	if len(args) == 0 || strings.Contains(args[0], "=") {
		return c, parseErr("usage: "+strings.Replace(faultUsage, "KIND", kind, 1), "%s needs a proxy name first", kind)
	}
	c.Proxy, args = args[0], args[1:]
	sl := kindSlots[kind]
	set := func(key string, v any, word string) error {
		if _, dup := c.Params[key]; dup {
			return parseErr("give each parameter once", "%s: %q sets %s a second time", kind, word, key)
		}
		c.Params[key] = v
		return nil
	}
	for _, w := range args {
		if k, v, ok := strings.Cut(w, "="); ok {
			switch {
			case k == "for" || k == "ttl":
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return c, parseErr("e.g. for=30s", "%s: %s=%s is not a positive duration", kind, k, v)
				}
				c.TTL = d
			case k == "id":
				c.ID = v
			case keyRE.MatchString(k):
				if err := set(k, yamlValue(v), w); err != nil {
					return c, err
				}
			default:
				return c, parseErr("parameters are key=value, e.g. path=/api", "%s: %q is not a parameter", kind, w)
			}
			continue
		}
		var err error
		switch {
		case percentRE.MatchString(w):
			err = set("percent", strings.TrimSuffix(w, "%"), w)
		case numberRE.MatchString(w) && sl.number != "":
			n, _ := strconv.Atoi(w)
			err = set(sl.number, n, w)
		case codeRE.MatchString(w) && sl.code != "":
			err = set(sl.code, w, w)
		case isDuration(w):
			if _, taken := c.Params[sl.duration]; sl.duration != "" && !taken {
				err = set(sl.duration, w, w)
			} else if c.TTL == 0 {
				c.TTL, _ = time.ParseDuration(w)
			} else {
				err = parseErr("", "%s: a third duration %q: name it, e.g. jitter=%s", kind, w, w)
			}
		case isSize(w) && sl.size != "":
			err = set(sl.size, w, w)
		default:
			err = parseErr("usage: "+strings.Replace(faultUsage, "KIND", kind, 1)+"; help "+kind, "%s: cannot place %q", kind, w)
		}
		if err != nil {
			return c, err
		}
	}
	// percent as a number, as the scenario writes it.
	if p, ok := c.Params["percent"].(string); ok {
		f, _ := strconv.ParseFloat(p, 64)
		c.Params["percent"] = f
	}
	return c, nil
}

func isDuration(w string) bool {
	d, err := time.ParseDuration(w)
	return err == nil && d > 0 && !numberRE.MatchString(w)
}

func isSize(w string) bool {
	var b quantity.Bytes
	return b.UnmarshalText([]byte(w)) == nil
}

// yamlValue keeps a key=value's value as the scenario would read it: a
// number as a number, anything else as text the fault's own decoder reads.
func yamlValue(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f
	}
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	return v
}

// split cuts a line into words; double or single quotes keep spaces in a
// word.
func split(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote, started := false, rune(0), false
	for _, r := range line {
		switch {
		case in && r == quote:
			in = false
		case in:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			in, quote, started = true, r, true
		case r == ' ' || r == '\t':
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if in {
		return nil, &ParseError{Msg: "unclosed quote", Hint: `e.g. mark "deploy v2"`}
	}
	if started {
		words = append(words, cur.String())
	}
	return words, nil
}

// ErrQuit is returned by a session's Exec for quit.
var ErrQuit = errors.New("quit")

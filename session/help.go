package session

import (
	"fmt"
	"slices"
	"strings"

	"github.com/resctl/resctl/inject/agent"
)

// Help is the text of `help` and `help COMMAND`.
func Help(args []string) string {
	if len(args) == 1 {
		name := strings.ToLower(args[0])
		for _, v := range Verbs {
			if v.Name == name {
				return v.Usage
			}
		}
		if slices.Contains(Kinds(), name) {
			return faultHelp(name)
		}
		return fmt.Sprintf("no command %q; help lists them", args[0])
	}
	var b strings.Builder
	b.WriteString("Faults: " + faultUsage + "\n")
	b.WriteString("  e.g. latency default 200ms 30%   abort default 503 10% path=/api   blackhole db 20s\n")
	b.WriteString("  kinds: " + strings.Join(Kinds(), ", ") + "\n")
	b.WriteString("  runtime kinds (" + strings.Join(agent.Kinds(), ", ") + ") go to target: goroutines target 10000 30s\n")
	b.WriteString("  every fault ends after for= (default 5m); the same id again replaces it\n")
	for _, v := range Verbs {
		b.WriteString(v.Usage + "\n")
	}
	b.WriteString("Keys: Tab completes, ↑/↓ history, Esc clears the line, Ctrl-C quits\n")
	b.WriteString("  PgUp/PgDn select a fault, F2 switches it off (or back on), F3 clears all, F4 pauses the view")
	return b.String()
}

func faultHelp(kind string) string {
	sl := kindSlots[kind]
	var bare []string
	if sl.duration != "" {
		bare = append(bare, "a duration is "+sl.duration)
	}
	if sl.number != "" {
		bare = append(bare, "a whole number is "+sl.number)
	}
	if sl.code != "" {
		bare = append(bare, "an UPPER_CASE word is the gRPC "+sl.code)
	}
	if sl.size != "" {
		bare = append(bare, "a size (64KiB) is "+sl.size)
	}
	bare = append(bare, "N% is percent", "another duration is how long it lasts")
	proxy := "PROXY"
	if slices.Contains(agent.Kinds(), kind) {
		proxy = "target"
	}
	return fmt.Sprintf("%s %s [VALUE ...] [key=value ...] [for=DURATION] [id=NAME]\n  bare values: %s\n  every parameter of the kind as key=value: docs/faults.md#%s",
		kind, proxy, strings.Join(bare, "; "), kind)
}

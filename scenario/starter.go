package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/resctl/resctl/quantity"
)

// SchemaURL is where editors find the JSON Schema of scenario files, as a
// starter scenario's yaml-language-server comment names it; `resctl
// schema` prints the same schema for the version at hand.
const SchemaURL = "https://raw.githubusercontent.com/resctl/resctl/main/docs/scenario.schema.json"

// Defaults of a starter scenario.
const (
	DefaultStarterRate   = quantity.Rate(20)
	DefaultStarterPhase  = 10 * time.Second
	DefaultStarterWarmUp = 2 * time.Second
	DefaultStarterListen = "http://127.0.0.1:8080"
)

// StarterOptions say what a starter scenario runs against. Exactly one of
// Demo, URL alone, or Command (with URL, where it will listen) is the
// target.
type StarterOptions struct {
	Name string
	// Demo is the built-in demo service.
	Demo bool
	// URL is the service's base URL: one already running, or where
	// Command's service will listen.
	URL string
	// Command starts the service under test.
	Command []string
	// Path is the request the load sends (default: /api/orders on the
	// demo, / elsewhere).
	Path string
	Rate quantity.Rate
	// Phase is the length of the baseline, fault and recovery phases;
	// the SLAs' windows are drawn from it.
	Phase time.Duration
}

// Starter writes a commented scenario to start from: a warm-up, a
// baseline, half of the requests slowed at the proxy, a recovery, SLAs
// that say the service was healthy before, kept serving during and
// recovered after, and the HTML report. It parses as it is: options
// that would make a scenario resctl refuses are refused here, naming the
// option.
func Starter(o StarterOptions) ([]byte, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# yaml-language-server: $schema=%s", SchemaURL)
	p("#")
	p("# A resctl scenario, read top to bottom as it runs (docs/scenario.md).")
	p("# Check it with `resctl validate FILE`, run it with `resctl run FILE`:")
	p("# the exit code is 0 when every SLA passed, 3 when one failed.")
	p("name: %s", quote(o.Name))
	p("seed: 1                       # every random choice is reproducible")
	p("")
	switch {
	case o.Demo:
		p("# The built-in demo service, started and stopped by resctl.")
		p("target:")
		p("  builtin: demo")
	case len(o.Command) > 0:
		cmd := make([]string, len(o.Command))
		for i, a := range o.Command {
			cmd[i] = quote(a)
		}
		p("# resctl starts the service, waits until it is ready, and stops it (and")
		p("# its children) at the end, however the run ends. Its stdout and stderr")
		p("# go to the output directory.")
		p("target:")
		p("  url: %s   # where it listens", quote(o.URL))
		p("  command: [%s]", strings.Join(cmd, ", "))
		p("  # env: {PAYMENTS_URL: \"{{ .Proxies.payments.URL }}\"}   # a dependency through a proxy (docs/topologies.md)")
		p("  # ready: %s/healthz        # default: its port accepts connections", strings.TrimSuffix(o.URL, "/"))
	default:
		p("# A service that is already running.")
		p("target:")
		p("  url: %s", quote(o.URL))
	}
	p("")
	p("# The harness proxy in front of the target: the load goes through it, and")
	p("# the faults act there.")
	p("proxy:")
	p("  protocol: http")
	p("")
	p("# Open-loop load: requests go out on schedule whether or not earlier")
	p("# ones have answered.")
	p("load:")
	p("  rate: %s", o.Rate)
	p("  timeout: 5s")
	p("  requests:")
	p("    - {method: GET, path: %s}", quote(o.Path))
	p("")
	warmUp := min(DefaultStarterWarmUp, o.Phase)
	p("phases:")
	p("  # Connections open and caches fill: no SLA reads this phase, so a")
	p("  # slow first second cannot fail the baseline.")
	p("  - {name: warmup, duration: %s}", fmtDuration(warmUp))
	p("  - {name: baseline, duration: %s}", fmtDuration(o.Phase))
	p("  - name: fault")
	p("    duration: %s", fmtDuration(o.Phase))
	p("    faults:                    # docs/faults.md lists every kind")
	p("      - latency: {delay: 1s, percent: 50}")
	p("  - {name: recovery, duration: %s}", fmtDuration(o.Phase))
	p("")
	p("# Fail the run when the fault never acted on a request: an experiment")
	p("# whose fault missed proves nothing.")
	p("require_faults_fired: true")
	p("")
	hold, limit := wholeSeconds(o.Phase*3/10), wholeSeconds(o.Phase/2)
	p("# SLAs in resctl's language (docs/sla.md). The latencies leave room for")
	p("# a busy machine; tighten them to your service's (the summary of a")
	p("# first run gives its p90) and its fault to what it must survive.")
	p("slas:")
	p("  - name: healthy before the fault")
	p("    during: baseline")
	p("    steady_state: true         # if not, stop before any fault")
	p("    expect: success_rate >= 99%% and p90 < 800ms")
	p("  - name: the slowdown showed within 2 s of the fault starting")
	p("    expect: time_to(p90 > 800ms, from=fault) < 2s")
	p("  - name: still serving during the fault")
	p("    during: fault")
	p("    expect: success_rate >= 99%%")
	p("  - name: recovered within %s of the fault ending, and stayed so for %s", fmtDuration(limit), fmtDuration(hold))
	p("    expect: recovery_time(success_rate >= 99%% and p90 < 800ms, hold=%s) < %s", fmtDuration(hold), fmtDuration(limit))
	p("")
	p("# report.json always; report.html is the recovery report, one file that")
	p("# opens offline.")
	p("output:")
	p("  dir: resctl-out")
	p("  formats: [html]")
	out := []byte(b.String())
	// What the options make must be a scenario resctl runs: a URL that
	// is not one, a path without its slash or a rate over the limits is
	// told now, by the option's name, not by the file later. Options
	// that name variables (${TARGET_URL}) are for the runs to come, where
	// they are set: written as given, they are checked then.
	if o.namesVariables() {
		return out, nil
	}
	if _, err := Parse("starter", out); err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		var msgs []string
		for _, pr := range ve.Problems {
			if m := starterOption(pr.Path) + ": " + pr.Msg; !slices.Contains(msgs, m) {
				msgs = append(msgs, m)
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrStarterInvalid, strings.Join(msgs, "; "))
	}
	return out, nil
}

// namesVariables says whether an option holds a ${VAR} to expand when
// the scenario is read.
func (o StarterOptions) namesVariables() bool {
	if strings.Contains(o.URL+o.Path+o.Name, "${") {
		return true
	}
	return slices.ContainsFunc(o.Command, func(a string) bool { return strings.Contains(a, "${") })
}

// ErrStarterInvalid is returned by Starter for options that make a
// scenario resctl would refuse; the message names each option and why.
var ErrStarterInvalid = errors.New("these options make a scenario that does not validate")

// starterOption names the option behind a key of the starter scenario.
func starterOption(path string) string {
	for _, o := range []struct{ prefix, name string }{
		{"target.url", "url"},
		{"target.command", "command"},
		{"target", "target"},
		{"load.rate", "rate"},
		{"load.requests", "path"},
		{"phases", "phase"},
		{"name", "name"},
		{"proxy", "url"},
	} {
		if strings.HasPrefix(path, o.prefix) {
			return o.name
		}
	}
	return path
}

func (o *StarterOptions) fill() error {
	switch {
	case o.Demo && (o.URL != "" || len(o.Command) > 0):
		return errors.New("the demo is a target of its own: give no URL or command with it")
	case len(o.Command) > 0 && o.URL == "":
		return errors.New("a command needs the URL its service will listen on")
	case !o.Demo && o.URL == "":
		return errors.New("no target: the demo, a URL, or a command with its URL")
	}
	if o.Name == "" {
		o.Name = "my-service"
	}
	if o.Path == "" {
		o.Path = "/"
		if o.Demo {
			o.Path = "/api/orders"
		}
	}
	if o.Rate <= 0 {
		o.Rate = DefaultStarterRate
	}
	if o.Phase <= 0 {
		o.Phase = DefaultStarterPhase
	}
	if o.Phase < 2*time.Second {
		return fmt.Errorf("phases of %v are too short to judge recovery in; give 2s or more", o.Phase)
	}
	return nil
}

// quote is s as a YAML double-quoted scalar where it needs one.
func quote(s string) string {
	plain := s != "" && !strings.ContainsAny(s, "#{}[],&*!|>'\"%@`\\ \t") && !strings.HasSuffix(s, ":") &&
		s != "-" && !strings.HasPrefix(s, "?") && !strings.HasPrefix(s, ":")
	if plain {
		return s
	}
	b, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
	return string(b)
}

func wholeSeconds(d time.Duration) time.Duration { return max(d.Round(time.Second), time.Second) }

// fmtDuration is d as a scenario writes it: 10s, 1m30s, 500ms.
func fmtDuration(d time.Duration) string {
	s := d.String()
	s = strings.Replace(s, "m0s", "m", 1)
	s = strings.Replace(s, "h0m", "h", 1)
	return s
}

package scenario_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/scenario"
)

// Building blocks for bad scenarios. head is valid and fills lines 1–3;
// phase adds a valid phase on line 4; faults opens a phase whose faults list
// starts on line 8, each item written "      - " so its value starts at
// column 9.
const (
	head   = "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\n"
	phase  = "phases: [{name: a, duration: 1s}]\n"
	faults = head + "phases:\n  - name: a\n    duration: 1s\n    faults:\n"
)

// badCases are scenarios with every problem they must report, in order, each
// written "line:col: path: message" where the message is matched as a
// substring and an empty path is written as nothing between the colons.
var badCases = []struct {
	name string
	src  string
	want []string
}{
	{
		name: "YAML syntax error",
		src:  "name: t\n- a\n",
		want: []string{"2:1: : YAML syntax error: did not find expected key"},
	},
	{
		name: "process faults",
		src: "name: t\ntarget: {url: http://127.0.0.1:9}\nservices:\n  - {name: redis, command: [redis-server], ready: 127.0.0.1:6379}\n" +
			"load: {rate: 5/s, requests: [{path: /}]}\nphases:\n  - name: p\n    duration: 5s\n    faults:\n" +
			"      - kill: {process: target}\n" +
			"      - pause: {process: rediss, duration: 6s}\n" +
			"      - kill: {process: redis, signal: SIGFOO, restart_after: 1s, at: 5s}\n" +
			"      - restart: {process: postgres, every: 10ms}\n",
		want: []string{
			"10:25: phases[0].faults[0].kill.process: resctl cannot kill a target it did not start: give target.command (with url: where it listens), or use builtin: demo",
			`11:26: phases[0].faults[1].pause.process: no process named "rediss" (did you mean "redis"?)`,
			"11:44: phases[0].faults[1].pause.duration: a pause of 6s from 0s outlasts its phase of 5s: shorten it or lengthen the phase",
			`12:40: phases[0].faults[2].kill.signal: unknown signal "SIGFOO"; use one of SIGKILL, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2`,
			"12:63: phases[0].faults[2].kill.restart_after: needs restart: true",
			"12:71: phases[0].faults[2].kill.at: 5s is not within its phase of 5s",
			`13:28: phases[0].faults[3].restart.process: no process named "postgres"; resctl starts redis`,
			"13:45: phases[0].faults[3].restart.every: is at least 500ms, or leave it out to act once",
		},
	},
	{
		name: "replicas",
		src: "name: t\ntarget: {builtin: demo}\nservices:\n" +
			"  - {name: a, replicas: 2, ports: [18091, 18092], command: [a], ready: 127.0.0.1:18091}\n" +
			"  - {name: b, replicas: 3, ports: [1], command: [b], ready: \"127.0.0.1:{{ .Port }}\"}\n" +
			"  - {name: c, replicas: 2, ports: [0, 0], command: [c, \"{{ .Prot }}\"], ready: \"127.0.0.1:{{ .Port }}\"}\n" +
			"load: {rate: 5/s, requests: [{path: /}]}\nphases:\n  - name: p\n    duration: 5s\n    faults:\n" +
			"      - kill: {process: a.3}\n",
		want: []string{
			"4:25: services[0].replicas: each replica needs a port of its own: say where it listens with {{ .Port }} in command, env or ready",
			"5:35: services[1].ports: give one port per replica: 1 ports for replicas: 3, e.g. ports: [18091, 18092]",
			"6:36: services[2].ports[0]: 0 is not a port: 1 to 65535",
			"6:39: services[2].ports[1]: 0 is not a port: 1 to 65535",
			`6:56: services[2].command[1]: template "{{ .Prot }}": template: :1:3: executing "" at <.Prot>: can't evaluate field Prot in type scenario.InstanceData (it can use .Port and .Replica)`,
			`12:25: phases[0].faults[0].kill.process: no process named "a.3" (did you mean "a.1"?)`,
		},
	},
	{
		name: "malformed response checks",
		src: "name: t\ntarget: {builtin: demo}\nload:\n  rate: 5/s\n  requests:\n    - path: /\n      expect:\n" +
			"        status: [200, 999]\n        body_matches: '(unclosed'\n        headers: {Content-Type: {}}\n" +
			"        body_size: {min: 10, max: 2}\n        json: {a..b: 1}\n        bodi: x\n" + phase,
		want: []string{
			`8:23: load.requests[0].expect.status[1]: "999" is not an HTTP status code`,
			"9:23: load.requests[0].expect.body_matches: not a regular expression: missing closing ): `(unclosed`",
			"10:33: load.requests[0].expect.headers.Content-Type: say what the header must be",
			"11:20: load.requests[0].expect.body_size: min 10B is above max 2B",
			`12:22: load.requests[0].expect.json.a..b: "a..b" has an empty step`,
			`13:9: load.requests[0].expect.bodi: unknown key "bodi"; known keys: status`,
		},
	},
	{
		name: "HTTP checks on a gRPC call",
		src:  "name: t\ntarget: {builtin: demo}\nload:\n  rate: 5/s\n  grpc:\n    call: a.B/C\n    expect: {status: [OK, NOPE], body_contains: x}\n" + phase,
		want: []string{
			`7:27: load.grpc.expect.status[1]: "NOPE" is not a gRPC status code`,
			"7:49: load.grpc.expect.body_contains: checks HTTP responses; a gRPC call's expect takes status and json",
		},
	},
	{
		name: "scrape endpoint that is not a URL",
		src:  head + phase + "scrape: {endpoints: {db: 'ftp://x', ok: self, t: target}}\n",
		want: []string{`5:26: scrape.endpoints.db: "ftp://x" is neither self, target, proxy:NAME nor an http:// URL`},
	},
	{
		name: "scrape interval zero",
		src:  head + phase + "scrape: {interval: 0s}\n",
		want: []string{"5:20: scrape.interval: must be above zero"},
	},
	{
		name: "steady state without a phase",
		src:  head + phase + "slas:\n  - {expect: success_rate > 99%, steady_state: true}\n",
		want: []string{"6:48: slas[0].steady_state: needs `during:`"},
	},
	{
		name: "abort on breach without a phase",
		src:  head + phase + "slas:\n  - {expect: success_rate > 99%, abort_on_breach: true}\n",
		want: []string{"6:51: slas[0].abort_on_breach: needs `during:`"},
	},
	{
		name: "SLA naming an unknown phase",
		src:  head + phase + "slas:\n  - expect: p99 < 2 * p99 during baselin\n",
		want: []string{`6:34: slas[0].expect: no phase named "baselin"; known: a`},
	},
	{
		name: "SLA naming an unknown fault",
		src:  head + "phases:\n  - name: a\n    duration: 1s\n    faults: [abort]\nslas:\n  - expect: time_to(fault(\"a/abrt\") == on) < 1s\n",
		want: []string{`9:27: slas[0].expect: no fault named "a/abrt" (did you mean "a/abort"?)`},
	},
	{
		name: "SLA reading a source nothing scrapes",
		src:  head + phase + "slas:\n  - expect: last(targt:go_goroutines) < 100\n",
		want: []string{`6:13: slas[0].expect: targt:go_goroutines reads source "targt", which is not scraped (did you mean "target"?)`},
	},
	{
		name: "unknown policy kind",
		src:  head + phase + "proxy:\n  guard:\n    - breakr: {}\n",
		want: []string{`7:7: proxy.guard[0]: unknown policy kind "breakr" (did you mean "breaker"?)`},
	},
	{
		name: "policy field out of range",
		src:  head + phase + "proxy:\n  routes:\n    - match: {path: api}\n      guard: [{breaker: {failure_rate: 150%, half_open: {probes: 0}}}]\n",
		want: []string{
			"7:21: proxy.routes[0].match.path: must start with /",
			"8:40: proxy.routes[0].guard[0].breaker.failure_rate: percentage 150 is outside 0%..100%",
			"8:66: proxy.routes[0].guard[0].breaker.half_open.probes: must be at least 1",
		},
	},
	{
		name: "call wrappers: unbounded, over budget, no hedge delay, no stub file",
		src:  head + phase + "proxy:\n  guard:\n    - retry: {attempts: 0, budget: 150%}\n    - hedge: {delay: 0s, quantile: 0}\n    - fallback: {file: /no/such/stub.json}\n    - timeout: 0s\n",
		want: []string{
			"7:25: proxy.guard[0].retry.attempts: 0 is not 1..10: retries must be bounded",
			"7:36: proxy.guard[0].retry.budget: percentage 150 is outside 0%..100%",
			"8:22: proxy.guard[1].hedge.delay: a hedge needs a delay or a quantile: with neither every request would be sent twice at once",
			`9:24: proxy.guard[2].fallback.file: "/no/such/stub.json" does not exist or cannot be read: stat /no/such/stub.json: no such file or directory`,
			"10:16: proxy.guard[3].timeout.after: must be above zero, e.g. 500ms",
		},
	},
	{
		name: "SLA naming an unknown breaker",
		src:  head + phase + "proxy:\n  routes:\n    - {name: orders, match: {path: /api/orders}, guard: [breaker]}\nslas:\n  - expect: time_to(breaker(\"order\") == open) < 2s\n",
		want: []string{`9:29: slas[0].expect: no breaker named "order" (did you mean "orders"?)`},
	},
	{
		name: "an http fault on a tcp proxy",
		src:  head + "proxy: {protocol: tcp}\nphases:\n  - name: a\n    duration: 1s\n    faults: [{abort: {status: 503}}]\n",
		want: []string{`8:15: phases[0].faults[0]: fault kind "abort" is for http proxies; proxy "proxy" speaks tcp`},
	},
	{
		name: "guard on a tcp proxy",
		src:  head + phase + "proxy: {protocol: tcp, guard: [breaker]}\n",
		want: []string{"5:19: proxy.protocol: guard chains need an http, h2c or grpc proxy"},
	},
	{
		name: "template naming something that does not exist",
		src:  "name: t\ntarget: {url: http://127.0.0.1:9, command: [svc, '--db={{ .Proxy.Adr }}']}\nload: {rate: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{`2:50: target.command[1]: template "--db={{ .Proxy.Adr }}"`},
	},
	{
		name: "env without a command",
		src:  "name: t\ntarget: {url: http://127.0.0.1:9, env: {A: b}}\nload: {rate: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{"2:40: target.env: only applies to a target resctl starts: add command"},
	},
	{
		name: "empty fault item",
		src:  head + "phases:\n  - name: a\n    duration: 1s\n    faults: [~]\n",
		want: []string{"7:14: phases[0].faults[0]: empty fault"},
	},
	{
		name: "bare dash fault item",
		src:  head + "phases:\n  - name: a\n    duration: 1s\n    faults:\n      -\n",
		want: []string{"8:8: phases[0].faults[0]: empty fault"},
	},
	{
		name: "SLA over two lines falls back to the expression column",
		src:  head + phase + "slas:\n  - expect: p99 <\n      < 1s\n",
		want: []string{"6:13: slas[0].expect: column 7 of the expression: "},
	},
	{
		name: "SLA with an escape falls back to the expression column",
		src:  head + phase + "slas:\n  - expect: \"p99 \\u003c < 1s\"\n",
		want: []string{"6:13: slas[0].expect: column 7 of the expression: "},
	},
	{
		name: "empty file",
		src:  "",
		want: []string{"1:1: : the file is empty"},
	},
	{
		name: "comments only",
		src:  "# nothing yet\n",
		want: []string{"1:1: : the file is empty"},
	},
	{
		name: "unknown top-level key with suggestion",
		src:  head + "phasess: [{name: a, duration: 1s}]\n",
		// One mistake, told once: not also as phases missing.
		want: []string{`4:1: phasess: unknown key "phasess" (did you mean "phases"?)`},
	},
	{
		name: "unknown top-level key without suggestion",
		src:  head + phase + "colour: red\n",
		want: []string{`5:1: colour: unknown key "colour"; known keys: name, description, seed, target, services, proxy, proxies, load, phases, slas, require_faults_fired, scrape, output`},
	},
	{
		name: "unknown nested key",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rat: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{`3:8: load.rat: unknown key "rat" (did you mean "rate"?)`},
	},
	{
		// Beside the key it resembles, a stray key hides none of its problems.
		name: "unknown nested key beside the known one",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rat: 5/s, rate: 5000000/s, requests: [{path: /}]}\n" + phase,
		want: []string{
			`3:8: load.rat: unknown key "rat" (did you mean "rate"?)`,
			"3:24: load.rate: 5000000/s is more than resctl can send",
		},
	},
	{
		name: "duplicate key",
		src:  head + phase + "name: u\n",
		want: []string{"5:1: name: duplicate key"},
	},
	{
		name: "zero duration",
		src:  head + "phases: [{name: a, duration: 0s}]\n",
		want: []string{"4:30: phases[0].duration: must be above zero"},
	},
	{
		name: "bare zero duration",
		src:  head + "phases: [{name: a, duration: 0}]\n",
		want: []string{"4:30: phases[0].duration: must be above zero"},
	},
	{
		name: "negative duration",
		src:  head + "phases: [{name: a, duration: -5s}]\n",
		want: []string{"4:30: phases[0].duration: must be above zero"},
	},
	{
		// Reported once: the validator does not repeat the decoder.
		name: "duration without unit",
		src:  head + "phases: [{name: a, duration: 10}]\n",
		want: []string{
			`4:30: phases[0].duration: duration "10" needs a unit, e.g. 10s or 10ms`,
		},
	},
	{
		name: "garbage duration",
		src:  head + "phases: [{name: a, duration: ten}]\n",
		want: []string{
			`4:30: phases[0].duration: invalid duration "ten": write it like 300ms, 10s or 1m30s`,
		},
	},
	{
		name: "missing duration",
		src:  head + "phases: [{name: a}]\n",
		want: []string{"4:10: phases[0].duration: is required, e.g. duration: 10s"},
	},
	{
		name: "zero load timeout",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, timeout: 0s, requests: [{path: /}]}\n" + phase,
		want: []string{"3:28: load.timeout: must be above zero"},
	},
	{
		name: "negative max_in_flight",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, max_in_flight: -1, requests: [{path: /}]}\n" + phase,
		want: []string{"3:34: load.max_in_flight: must not be negative"},
	},
	{
		name: "zero rate",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 0/s, requests: [{path: /}]}\n" + phase,
		want: []string{`3:14: load.rate: rate "0/s" must be above zero`},
	},
	{
		name: "missing rate",
		src:  "name: t\ntarget: {builtin: demo}\nload: {requests: [{path: /}]}\n" + phase,
		want: []string{"3:7: load.rate: is required, e.g. rate: 50/s"},
	},
	{
		name: "empty rate",
		src:  "name: t\ntarget: {builtin: demo}\nload:\n  rate:\n  requests: [{path: /}]\n" + phase,
		want: []string{"4:8: load.rate: is required"},
	},
	{
		name: "missing requests",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s}\n" + phase,
		want: []string{"3:7: load: requests: give at least one request"},
	},
	{
		name: "request path without leading slash",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: api}]}\n" + phase,
		want: []string{"3:37: load.requests[0].path: must start with /, e.g. /api/orders"},
	},
	{
		name: "request method not a token",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{method: g e t, path: /}]}\n" + phase,
		want: []string{`3:39: load.requests[0].method: "G E T" is not an HTTP method`},
	},
	{
		name: "percent above 100",
		src:  faults + "      - latency: {delay: 1s, percent: 150}\n",
		want: []string{"8:39: phases[0].faults[0].latency.percent: percentage 150 is outside 0%..100%"},
	},
	{
		name: "negative percent",
		src:  faults + "      - latency: {delay: 1s, percent: -3}\n",
		want: []string{"8:39: phases[0].faults[0].latency.percent: percentage -3 is outside 0%..100%"},
	},
	{
		name: "unknown fault kind with suggestion",
		src:  faults + "      - latncy: {delay: 1s}\n",
		want: []string{`8:9: phases[0].faults[0]: unknown fault kind "latncy" (did you mean "latency"?)`},
	},
	{
		name: "unknown fault kind without suggestion",
		src:  faults + "      - explode\n",
		want: []string{`8:9: phases[0].faults[0]: unknown fault kind "explode"; known kinds: abort, `},
	},
	{
		name: "network fault with a bad direction",
		src:  faults + "      - network: {loss: 5%, direction: sideways}\n",
		want: []string{`8:40: phases[0].faults[0].network.direction: "sideways": must be upstream, downstream or both`},
	},
	{
		name: "network partition with a delay",
		src:  faults + "      - network: {partition: true, delay: 10ms}\n",
		want: []string{"8:30: phases[0].faults[0].network.partition: a partition drops every packet"},
	},
	{
		name: "network fault with a loss above 100%",
		src:  faults + "      - network: {loss: 120%}\n",
		want: []string{"8:25: phases[0].faults[0].network.loss: percentage 120 is outside 0%..100%"},
	},
	{
		name: "network fault with nothing to do",
		src:  faults + "      - network: {direction: both}\n",
		want: []string{"8:18: phases[0].faults[0].network.delay: set at least one of delay, loss, duplicate, corrupt, rate, or partition: true"},
	},
	{
		name: "two network faults on one proxy in a phase",
		src:  faults + "      - network: {delay: 50ms}\n      - network: {loss: 5%}\n",
		want: []string{"9:9: phases[0].faults[1]: proxy \"proxy\" already has a network fault in this phase"},
	},
	{
		name: "fault with two kinds",
		src:  faults + "      - {latency: {delay: 1s}, abort: {}}\n",
		want: []string{"8:9: phases[0].faults[0]: a fault is one kind with its parameters, e.g. `- latency: {delay: 300ms}`; found 2 keys"},
	},
	{
		name: "fault that is a list",
		src:  faults + "      - [abort]\n",
		want: []string{"8:9: phases[0].faults[0]: expected a map of keys, got a list"},
	},
	{
		name: "unknown fault parameter",
		src:  faults + "      - abort: {stauts: 500}\n",
		want: []string{`8:17: phases[0].faults[0].abort.stauts: unknown key "stauts" (did you mean "status"?)`},
	},
	{
		name: "abort status out of range",
		src:  faults + "      - abort: {status: 42}\n",
		want: []string{"8:25: phases[0].faults[0].abort.status: 42 is not an HTTP status (100..599)"},
	},
	{
		name: "abort status not a number",
		src:  faults + "      - abort: {status: teapot}\n",
		want: []string{`8:25: phases[0].faults[0].abort.status: expected a whole number, got "teapot"`},
	},
	{
		name: "latency without delay",
		src:  faults + "      - latency\n",
		want: []string{"8:9: phases[0].faults[0].latency.delay: must be above zero, e.g. 300ms"},
	},
	{
		name: "latency delay zero",
		src:  faults + "      - latency: {delay: 0s}\n",
		want: []string{"8:26: phases[0].faults[0].latency.delay: must be above zero, e.g. 300ms"},
	},
	{
		name: "jitter above delay",
		src:  faults + "      - latency: {delay: 1s, jitter: 2s}\n",
		want: []string{"8:38: phases[0].faults[0].latency.jitter: must not exceed delay"},
	},
	{
		name: "negative jitter",
		src:  faults + "      - latency: {delay: 1s, jitter: -2s}\n",
		want: []string{"8:38: phases[0].faults[0].latency.jitter: must not be negative"},
	},
	{
		name: "fault path without leading slash",
		src:  faults + "      - abort: {path: api}\n",
		want: []string{"8:23: phases[0].faults[0].abort.path: must start with /"},
	},
	{
		name: "target with builtin and url",
		src:  "name: t\ntarget: {builtin: demo, url: http://localhost:8080}\nload: {rate: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{"2:9: target: set either builtin or url, not both"},
	},
	{
		name: "unknown builtin",
		src:  "name: t\ntarget: {builtin: dmeo}\nload: {rate: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{`2:19: target.builtin: unknown built-in target "dmeo"; known: demo`},
	},
	{
		name: "url without scheme",
		src:  "name: t\ntarget: {url: localhost:8080}\nload: {rate: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{`2:15: target.url: "localhost:8080" is not an http:// or https:// URL with a host`},
	},
	{
		name: "url with another scheme",
		src:  "name: t\ntarget: {url: 'ftp://files'}\nload: {rate: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{`2:15: target.url: "ftp://files" is not an http:// or https:// URL with a host`},
	},
	{
		name: "missing target",
		src:  "name: t\nload: {rate: 5/s, requests: [{path: /}]}\n" + "phases: [{name: a, duration: 1s}]\n",
		want: []string{"1:1: target: is required: set builtin: demo or url: http://host:port"},
	},
	{
		name: "missing name",
		src:  "target: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\n" + "phases: [{name: a, duration: 1s}]\n",
		want: []string{"1:1: name: is required"},
	},
	{
		name: "unknown protocol",
		src:  head + phase + "proxy: {protocol: h3}\n",
		want: []string{`5:19: proxy.protocol: unknown protocol "h3"; use http, h2c, grpc or tcp`},
	},
	{
		name: "duplicate phase names",
		src:  head + "phases:\n  - {name: a, duration: 1s}\n  - {name: a, duration: 1s}\n",
		want: []string{`6:12: phases[1].name: phase "a" is already defined`},
	},
	{
		name: "phase names whose faults would share ids",
		src:  head + "phases:\n  - {name: a b, duration: 1s}\n  - {name: a_b, duration: 1s}\n",
		want: []string{`6:12: phases[1].name: phase "a_b" names its faults a_b/…, as phase "a b" does: rename one`},
	},
	{
		name: "phase without name",
		src:  head + "phases: [{duration: 1s}]\n",
		want: []string{"4:10: phases[0].name: is required"},
	},
	{
		name: "SLA during unknown phase with suggestion",
		src:  head + "phases: [{name: baseline, duration: 1s}]\nslas:\n  - during: baselin\n    expect: p99 < 1s\n",
		want: []string{`6:13: slas[0].during: no phase named "baselin" (did you mean "baseline"?)`},
	},
	{
		name: "SLA during unknown phase without suggestion",
		src:  head + "phases: [{name: baseline, duration: 1s}]\nslas:\n  - during: chaos\n    expect: p99 < 1s\n",
		want: []string{`6:13: slas[0].during: no phase named "chaos"; phases: baseline`},
	},
	// An SLA syntax error is placed on the column of the file where the
	// expression goes wrong: the column of the value, plus the column in
	// the expression, minus one, plus one for an opening quote. In
	// "p99 < < 1s" the second "<" is column 7.
	{
		name: "SLA syntax error plain",
		src:  head + phase + "slas:\n  - expect: p99 < < 1s\n",
		want: []string{`6:19: slas[0].expect: unexpected "<", expected a number`},
	},
	{
		name: "SLA syntax error single-quoted",
		src:  head + phase + "slas:\n  - expect: 'p99 < < 1s'\n",
		want: []string{`6:20: slas[0].expect: unexpected "<"`},
	},
	{
		name: "SLA syntax error double-quoted",
		src:  head + phase + "slas:\n  - expect: \"p99 < < 1s\"\n",
		want: []string{`6:20: slas[0].expect: unexpected "<"`},
	},
	{
		name: "SLA syntax error in flow mapping",
		src:  head + phase + "slas: [{name: fast, expect: p99 < < 1s}]\n",
		want: []string{`5:35: slas[0].expect: unexpected "<"`},
	},
	{
		name: "SLA syntax error in block scalar",
		src:  head + phase + "slas:\n  - expect: >-\n      p99 < < 1s\n",
		want: []string{`6:13: slas[0].expect: column 7 of the expression: unexpected "<"`},
	},
	{
		name: "SLA with unknown series",
		src:  head + phase + "slas:\n  - expect: p99 < 1s and p98 < 1s\n",
		want: []string{`6:26: slas[0].expect: unknown series "p98" (did you mean "p99"?)`},
	},
	{
		name: "SLA that is not a condition",
		src:  head + phase + "slas:\n  - expect: p99\n",
		want: []string{"6:13: slas[0].expect: expression must be a condition"},
	},
	{
		name: "SLA without expect",
		src:  head + phase + "slas:\n  - name: fast\n",
		want: []string{"6:5: slas[0].expect: is required, e.g. expect: success_rate >= 99% and p99 < 150ms"},
	},
	{
		name: "SLA with empty expect",
		src:  head + phase + "slas:\n  - name: fast\n    expect: ''\n",
		want: []string{"7:13: slas[0].expect: is required"},
	},
	{
		name: "unknown output format",
		src:  head + phase + "output: {formats: [json, csv]}\n",
		want: []string{`5:26: output.formats[1]: unknown format "csv"; known formats: json`},
	},
	{
		name: "empty output dir",
		src:  head + phase + "output: {dir: ''}\n",
		want: []string{"5:15: output.dir: must not be empty"},
	},
	{
		name: "list where a map is expected",
		src:  "name: t\ntarget: [demo]\nload: {rate: 5/s, requests: [{path: /}]}\n" + phase,
		want: []string{
			"2:9: target: expected a map of keys, got a list",
		},
	},
	{
		name: "map where a list is expected",
		src:  head + "phases: {name: a, duration: 1s}\n",
		want: []string{
			"4:9: phases: expected a list, got a map of keys",
		},
	},
	{
		name: "value where a map is expected",
		src:  "just a string\n",
		want: []string{
			"1:1: : expected a map of keys, got a single value",
			"1:1: name: is required",
			"1:1: target: is required",
			"1:1: load: is required",
			"1:1: phases: at least one phase is required",
		},
	},
	{
		name: "not a boolean",
		src:  "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, http2: yes, requests: [{path: /}]}\n" + phase,
		want: []string{`3:26: load.http2: expected true or false, got "yes"`},
	},
	{
		name: "negative seed",
		src:  head + phase + "seed: -1\n",
		want: []string{`5:7: seed: expected a whole number of at least 0, got "-1"`},
	},
	{
		name: "problems sorted by line and column",
		src: "name: t\n" +
			"target: {builtin: demo, url: http://localhost:8080}\n" +
			"load: {rate: 0/s, requests: [{path: /}]}\n" +
			phase +
			"colour: red\n",
		want: []string{
			"2:9: target: set either builtin or url, not both",
			`3:14: load.rate: rate "0/s" must be above zero`,
			`5:1: colour: unknown key "colour"`,
		},
	},
}

func TestParse_problems(t *testing.T) {
	for _, tt := range badCases {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scenario.Parse("bad.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want %d problems", s, len(tt.want))
			}
			if s != nil {
				t.Errorf("Parse returned a scenario along with error %v", err)
			}
			var ve *scenario.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error is %T (%v), want *scenario.ValidationError", err, err)
			}
			if ve.File != "bad.yaml" {
				t.Errorf("File = %q, want %q", ve.File, "bad.yaml")
			}
			if !matchProblems(t, ve.Problems, tt.want) {
				t.Errorf("source:\n%s\ngot problems:\n%s\nwant:\n  %s", tt.src, listProblems(ve.Problems), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// matchProblems reports whether got matches want one for one, where each
// want is "line:col: path: message substring".
func matchProblems(t *testing.T, got []scenario.Problem, want []string) bool {
	t.Helper()
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		line, col, path, msg := splitWant(t, w)
		p := got[i]
		if p.Line != line || p.Col != col || p.Path != path || !strings.Contains(p.Msg, msg) {
			return false
		}
	}
	return true
}

func splitWant(t *testing.T, w string) (line, col int, path, msg string) {
	t.Helper()
	parts := strings.SplitN(w, ": ", 3)
	pos := strings.Split(parts[0], ":")
	if len(parts) != 3 || len(pos) != 2 {
		t.Fatalf("bad want %q: write line:col: path: message", w)
	}
	line, err1 := strconv.Atoi(pos[0])
	col, err2 := strconv.Atoi(pos[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("bad want %q: write line:col: path: message", w)
	}
	return line, col, strings.TrimSpace(parts[1]), parts[2]
}

func listProblems(ps []scenario.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %d:%d: %s: %s\n", p.Line, p.Col, p.Path, p.Msg)
	}
	return b.String()
}

func TestParse_requestDefaults(t *testing.T) {
	src := "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /a}, {method: delete, path: /b}, {method: PATCH, path: /c}]}\n" + phase
	s, err := scenario.Parse("ok.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range s.Load.Requests {
		got = append(got, r.Method+" "+r.Path)
	}
	want := "GET /a, DELETE /b, PATCH /c"
	if strings.Join(got, ", ") != want {
		t.Errorf("requests = %q, want %q", strings.Join(got, ", "), want)
	}
}

func TestParse_slaName(t *testing.T) {
	src := head + phase + "slas:\n  - expect: p99 < 1s\n  - {name: fast, expect: p50 < 1s}\n"
	s, err := scenario.Parse("ok.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sla := range s.SLAs {
		if sla.Expr == nil {
			t.Errorf("SLA %q has no parsed expression", sla.Name)
		}
		got = append(got, sla.Name)
	}
	if want := []string{"p99 < 1s", "fast"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("SLA names = %q, want %q", got, want)
	}
}

func TestValidationError_Error(t *testing.T) {
	tests := []struct {
		name string
		err  *scenario.ValidationError
		want string
	}{
		{
			name: "one problem",
			err: &scenario.ValidationError{File: "s.yaml", Problems: []scenario.Problem{
				{Path: "load.rate", Line: 3, Col: 14, Msg: "must be above zero"},
			}},
			want: "s.yaml:3:14: load.rate: must be above zero",
		},
		{
			name: "file-level problem has no path",
			err: &scenario.ValidationError{File: "s.yaml", Problems: []scenario.Problem{
				{Line: 1, Col: 1, Msg: "the file is empty"},
			}},
			want: "s.yaml:1:1: the file is empty",
		},
		{
			name: "one line per problem",
			err: &scenario.ValidationError{File: "dir/s.yaml", Problems: []scenario.Problem{
				{Path: "target", Line: 2, Col: 9, Msg: "set either builtin or url, not both"},
				{Path: "phases[0].duration", Line: 4, Col: 30, Msg: "must be above zero, e.g. 10s"},
			}},
			want: "dir/s.yaml:2:9: target: set either builtin or url, not both\n" +
				"dir/s.yaml:4:30: phases[0].duration: must be above zero, e.g. 10s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestParse_errorMessage(t *testing.T) {
	src := "name: t\ntarget: {builtin: demo, url: http://localhost:8080}\nload: {rate: 0/s, requests: [{path: /}]}\n" + phase + "colour: red\n"
	_, err := scenario.Parse("bad.yaml", []byte(src))
	if err == nil {
		t.Fatal("Parse succeeded, want 3 problems")
	}
	want := "bad.yaml:2:9: target: set either builtin or url, not both\n" +
		"bad.yaml:3:14: load.rate: rate \"0/s\" must be above zero\n" +
		"bad.yaml:5:1: colour: unknown key \"colour\"; known keys: name, description, seed, target, services, proxy, proxies, load, phases, slas, require_faults_fired, scrape, output"
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
}

func TestValidationError_Detailed(t *testing.T) {
	src := head + phase + "slas:\n  - expect: p99 < 150\n"
	_, err := scenario.Parse("s.yaml", []byte(src))
	var ve *scenario.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	want := "s.yaml:6:19: slas[0].expect: p99 is a latency; give a unit, e.g. 150ms\n" +
		"      - expect: p99 < 150\n" +
		"                      ^"
	if got := ve.Detailed(); got != want {
		t.Errorf("Detailed() =\n%s\nwant\n%s", got, want)
	}
}

// TestParse_fallbackFileBesideScenario: a fallback's file is found next to
// the scenario file, wherever resctl runs from; a missing one is named by
// the path resctl looked at.
func TestParse_fallbackFileBesideScenario(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stub.json"), []byte(`{"orders":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	src := head + phase + "proxy:\n  guard:\n    - fallback: {file: stub.json}\n"
	s, err := scenario.Parse(filepath.Join(dir, "s.yaml"), []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	fc, ok := s.Proxy.Guard[0].Config.(*guard.FallbackConfig)
	if !ok || fc.File != filepath.Join(dir, "stub.json") {
		t.Errorf("fallback config %#v, want its file beside the scenario", s.Proxy.Guard[0].Config)
	}
	_, err = scenario.Parse(filepath.Join(t.TempDir(), "s.yaml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), "stub.json\" does not exist") {
		t.Errorf("Parse with no stub beside it = %v, want it to say stub.json does not exist", err)
	}
}

// TestParse_routeWithUpstreamsAlone: a route may only send its part of the
// API to upstreams of its own, with no policy.
func TestParse_routeWithUpstreamsAlone(t *testing.T) {
	src := head + phase + "proxy:\n  routes:\n    - {match: {path: /orders}, upstreams: ['http://127.0.0.1:9001']}\n"
	if _, err := scenario.Parse("s.yaml", []byte(src)); err != nil {
		t.Errorf("Parse: %v", err)
	}
	src = head + phase + "proxy:\n  routes:\n    - {match: {path: /orders}}\n"
	if _, err := scenario.Parse("s.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "a route needs at least one policy") {
		t.Errorf("Parse of a route with neither = %v, want it refused", err)
	}
}

package scenario

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/inject/process"
	"github.com/resctl/resctl/internal/strictyaml"
	"github.com/resctl/resctl/internal/suggest"
	"github.com/resctl/resctl/verify"
)

// Default limits of reading a scenario: see Limits.
const (
	DefaultMaxBytes    = strictyaml.DefaultMaxBytes
	DefaultMaxNodes    = strictyaml.DefaultMaxNodes
	DefaultMaxProblems = 20
)

// Limits bound what reading one scenario file may cost and print; the
// zero value means the defaults.
type Limits struct {
	// MaxBytes is the largest file read (DefaultMaxBytes).
	MaxBytes int64
	// MaxNodes is the most YAML nodes the file may have with every alias
	// expanded (DefaultMaxNodes).
	MaxNodes int
	// MaxProblems is how many problems a ValidationError prints before
	// saying how many more there are (DefaultMaxProblems).
	MaxProblems int
}

func (l Limits) yaml() strictyaml.Limits {
	return strictyaml.Limits{MaxBytes: l.MaxBytes, MaxNodes: l.MaxNodes}
}

// ReadFile reads and validates the scenario file at path with the default
// limits. A file that cannot be read is an *os.PathError; everything wrong
// inside the file is reported together as a *ValidationError.
func ReadFile(path string) (*Scenario, error) {
	return Read(context.Background(), path, Limits{})
}

// Read is ReadFile within lim, and gives up with ctx's error once ctx is
// done. A file over lim's MaxBytes is refused without being read whole.
func Read(ctx context.Context, path string, lim Limits) (*Scenario, error) {
	data, root, err := strictyaml.ReadFile(ctx, path, lim.yaml())
	return build(path, data, root, err, lim)
}

// Parse decodes and validates a scenario with the default limits. name is
// the file it came from: messages give positions in it, and a fallback's
// relative file is read beside it.
func Parse(name string, data []byte) (*Scenario, error) {
	return ParseWith(context.Background(), name, data, Limits{})
}

// ParseWith is Parse within lim, giving up with ctx's error once ctx is
// done.
func ParseWith(ctx context.Context, name string, data []byte, lim Limits) (*Scenario, error) {
	root, err := strictyaml.Parse(ctx, data, lim.yaml())
	return build(name, data, root, err, lim)
}

// build decodes and validates the tree parsed from data, or reports why
// there is none.
func build(name string, data []byte, root *yaml.Node, err error, lim Limits) (*Scenario, error) {
	lines := strings.Split(string(data), "\n")
	var de *strictyaml.DocumentError
	switch {
	case errors.As(err, &de):
		p := de.Problem
		// "hold: 5s" inside an unquoted SLA expression reads as a map.
		if strings.Contains(p.Msg, "mapping values are not allowed") && p.Line <= len(lines) && strings.Contains(lines[p.Line-1], "expect:") {
			p.Msg += "; an SLA expression with `key: value` inside must be quoted, or write hold=5s, from=fault"
		}
		return nil, &ValidationError{File: name, Problems: []Problem{p}, Max: lim.MaxProblems, lines: lines, overLimit: de.Limit}
	case err != nil:
		return nil, err
	case len(root.Content) == 0:
		return nil, &ValidationError{File: name, Problems: []Problem{{Line: 1, Col: 1, Msg: "the file is empty; a scenario needs at least name, target, load and phases"}}}
	}
	s := defaults()
	d := strictyaml.New()
	d.Decode(root, reflect.ValueOf(&s).Elem(), "")
	s.File = name
	v := &validator{Decoder: d, s: &s, lines: lines}
	v.validate()
	if len(d.Problems) > 0 {
		slices.SortStableFunc(d.Problems, func(a, b Problem) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Col - b.Col
		})
		return nil, &ValidationError{File: name, Problems: d.Problems, Max: lim.MaxProblems, lines: v.lines}
	}
	return &s, nil
}

type validator struct {
	*strictyaml.Decoder
	s     *Scenario
	lines []string // the file, for placing SLA errors on their column
}

// slaIndex returns i of a path "slas[i]...".
func slaIndex(path string) int {
	var i int
	_, _ = fmt.Sscanf(path, "slas[%d]", &i)
	return i
}

// report adds a problem at the position of path, or of its nearest parent
// that appears in the file.
func (v *validator) report(path, format string, args ...any) {
	if v.Reported(path) {
		return // the decoder already said what is wrong here
	}
	p := strictyaml.Pos{Line: 1, Col: 1}
	for q := path; ; {
		if n, ok := v.At[q]; ok {
			p = strictyaml.NodePos(n)
			break
		}
		i := max(strings.LastIndexAny(q, ".["), 0)
		if i == 0 {
			if n, ok := v.At[""]; ok {
				p = strictyaml.NodePos(n)
			}
			break
		}
		q = q[:i]
	}
	v.Add(p, path, format, args...)
}

func (v *validator) validate() {
	s := v.s
	if strings.TrimSpace(s.Name) == "" {
		v.report("name", "is required: give the experiment a short name")
	}
	v.validateProxies()
	v.validateTarget()
	v.validateServices()
	v.validateGuard()
	v.validateLoad()
	v.validatePhases()
	v.validateSLAs()
	v.validateScrape()
	v.validateRanges()
	if strings.TrimSpace(s.Output.Dir) == "" {
		v.report("output.dir", "must not be empty")
	}
	for i, f := range s.Output.Formats {
		if !slices.Contains(knownFormats, f) {
			v.report(fmt.Sprintf("output.formats[%d]", i), "unknown format %q; known formats: %s", f, strings.Join(knownFormats, ", "))
		}
	}
}

// Builtin target names.
var builtins = []string{"demo"}

func (v *validator) validateTarget() {
	t := v.s.Target
	switch {
	case t.Builtin == "" && t.URL == "" && (v.Reported("target.url") || v.Reported("target.builtin")):
		// the decoder said why the one given is missing (an unset variable)
	case t.Builtin == "" && t.URL == "":
		v.report("target", "is required: set builtin: demo or url: http://host:port")
	case t.Builtin != "" && t.URL != "":
		v.report("target", "set either builtin or url, not both")
	case t.Builtin != "" && !slices.Contains(builtins, t.Builtin):
		v.report("target.builtin", "unknown built-in target %q; known: %s", t.Builtin, strings.Join(builtins, ", "))
	case t.URL != "":
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.report("target.url", "%q is not an http:// or https:// URL with a host", t.URL)
		}
	}
	if len(t.Command) > 0 {
		if t.Builtin != "" {
			v.report("target.command", "a built-in target is started by resctl already; give url with command")
		}
		for i, arg := range t.Command {
			v.checkTemplate(fmt.Sprintf("target.command[%d]", i), arg)
		}
		for k, val := range t.Env {
			v.checkTemplate("target.env."+k, val)
		}
		if t.Stop.Signal != "" && !slices.Contains(StopSignals, t.Stop.Signal) {
			v.report("target.stop.signal", "unknown signal %q; use one of %s", t.Stop.Signal, strings.Join(StopSignals, ", "))
		}
		if t.Stop.Grace < 0 {
			v.report("target.stop.grace", "must not be negative")
		}
	} else {
		for _, k := range []string{"env", "dir", "ready", "ready_timeout", "stop"} {
			if _, set := v.At["target."+k]; set {
				v.report("target."+k, "only applies to a target resctl starts: add command")
			}
		}
	}
}

func (v *validator) validateServices() {
	names := map[string]bool{}
	for i, svc := range v.s.Services {
		p := fmt.Sprintf("services[%d]", i)
		switch {
		case !strictyaml.ValidEnvName(svc.Name):
			v.report(p+".name", "%q is not a name: use letters, digits and _", svc.Name)
		case names[svc.Name]:
			v.report(p+".name", "service %q is already defined", svc.Name)
		}
		names[svc.Name] = true
		if len(svc.Command) == 0 {
			v.report(p+".command", "is required, e.g. [redis-server, --port, \"16379\"]")
		}
		if svc.Ready == "" {
			v.report(p+".ready", "is required: a health URL or the host:port it listens on")
		}
		if svc.Stop.Signal != "" && !slices.Contains(StopSignals, svc.Stop.Signal) {
			v.report(p+".stop.signal", "unknown signal %q; use one of %s", svc.Stop.Signal, strings.Join(StopSignals, ", "))
		}
		v.validateReplicas(p, svc)
	}
}

// validateReplicas checks a service's replicas and ports, and its
// templates with each instance's data.
func (v *validator) validateReplicas(p string, svc Service) {
	switch {
	case svc.Replicas < 0 || svc.Replicas > MaxReplicas:
		v.report(p+".replicas", "must be between 1 and %d", MaxReplicas)
		return
	case svc.Replicas > 1 && len(svc.Ports) != svc.Replicas:
		v.report(p+".ports", "give one port per replica: %d ports for replicas: %d, e.g. ports: [18091, 18092]", len(svc.Ports), svc.Replicas)
		return
	case svc.Replicas <= 1 && len(svc.Ports) > 1:
		v.report(p+".ports", "%d ports for one instance: set replicas: %d", len(svc.Ports), len(svc.Ports))
		return
	}
	seen := map[int]bool{}
	for i, port := range svc.Ports {
		switch {
		case port < 1 || port > 65535:
			v.report(fmt.Sprintf("%s.ports[%d]", p, i), "%d is not a port: 1 to 65535", port)
		case seen[port]:
			v.report(fmt.Sprintf("%s.ports[%d]", p, i), "port %d is given twice", port)
		}
		seen[port] = true
	}
	texts := map[string]string{p + ".ready": svc.Ready}
	for i, a := range svc.Command {
		texts[fmt.Sprintf("%s.command[%d]", p, i)] = a
	}
	for k, val := range svc.Env {
		texts[p+".env."+k] = val
	}
	usesPort := false
	for _, path := range slices.Sorted(maps.Keys(texts)) {
		usesPort = usesPort || strings.Contains(texts[path], ".Port")
		if _, err := ExpandInstance(texts[path], InstanceData{Port: 1, Replica: 1}); err != nil {
			v.report(path, "%v", err)
		}
	}
	if svc.Replicas > 1 && !usesPort {
		v.report(p+".replicas", "each replica needs a port of its own: say where it listens with {{ .Port }} in command, env or ready")
	}
}

// TargetProcess is the name process faults give the target.
const TargetProcess = "target"

// ProcessStateKind is the kind of the processes' states in SLAs:
// process("orders") == ready, or state("process", "orders").
const ProcessStateKind = "process"

// Processes lists the names process faults may give: target (when
// resctl starts it), the services, and each instance of a service with
// replicas.
func (s *Scenario) Processes() []string {
	var out []string
	if len(s.Target.Command) > 0 || s.Target.Builtin != "" {
		out = append(out, TargetProcess)
	}
	for _, svc := range s.Services {
		out = append(out, svc.Name)
		if svc.Replicas > 1 {
			out = append(out, svc.Instances()...)
		}
	}
	return out
}

// ProcessStates lists the processes that have a state SLAs read: target
// (when resctl starts it) and every instance of every service.
func (s *Scenario) ProcessStates() []string {
	var out []string
	if len(s.Target.Command) > 0 || s.Target.Builtin != "" {
		out = append(out, TargetProcess)
	}
	for _, svc := range s.Services {
		out = append(out, svc.Instances()...)
	}
	return out
}

// validateProcessFault checks a kill, pause or restart: its parameters,
// that resctl starts the process it names, and that it fits its phase.
func (v *validator) validateProcessFault(fp string, ph Phase, ps process.Spec) {
	ps.Check(func(field, msg string) { v.report(fp+"."+field, "%s", msg) })
	name, known := ps.Target(), v.s.Processes()
	switch {
	case name == "":
	case name == TargetProcess && !slices.Contains(known, name):
		v.report(fp+".process", "resctl cannot %s a target it did not start: give target.command (with url: where it listens), or use builtin: demo", ps.Kind())
	case !slices.Contains(known, name):
		if near, ok := suggest.Closest(name, known); ok {
			v.report(fp+".process", "no process named %q (did you mean %q?)", name, near)
		} else if len(known) == 0 {
			v.report(fp+".process", "no process named %q: resctl starts none in this scenario (target.command, builtin: demo, or services:)", name)
		} else {
			v.report(fp+".process", "no process named %q; resctl starts %s", name, strings.Join(known, ", "))
		}
	}
	w := ps.When()
	if ph.Duration > 0 && w.At >= ph.Duration {
		v.report(fp+".at", "%v is not within its phase of %v", w.At, ph.Duration)
	}
	if p, ok := ps.(*process.Pause); ok && ph.Duration > 0 && w.At < ph.Duration && w.At+p.Duration > ph.Duration {
		v.report(fp+".duration", "a pause of %v from %v outlasts its phase of %v: shorten it or lengthen the phase", p.Duration, w.At, ph.Duration)
	}
}

// StopSignals are the signals target.stop.signal may name.
var StopSignals = []string{"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGKILL"}

// TemplateData is what target.command and target.env templates see.
type TemplateData struct {
	// Proxy is the main proxy.
	Proxy ProxyAddr
	// Proxies are the named proxies, and the main one as "proxy".
	Proxies map[string]ProxyAddr
}

// ProxyAddr is where a proxy listens: host:port, and its base URL.
type ProxyAddr struct{ Addr, URL string }

// checkTemplate parses a template and executes it with placeholder data,
// so a typo ({{ .Proxy.Adr }}, {{ .Proxies.bd.Addr }}) is a validation
// error, not a failed start.
func (v *validator) checkTemplate(path, text string) {
	if !strings.Contains(text, "{{") {
		return
	}
	d := TemplateData{Proxies: map[string]ProxyAddr{}}
	placeholder := ProxyAddr{Addr: "127.0.0.1:1", URL: "http://127.0.0.1:1"}
	// The target starts after the proxies in front of its dependencies
	// and before the one in front of it: only the former have addresses.
	for _, p := range v.s.AllProxies() {
		if v.frontsTarget(p) {
			continue
		}
		d.Proxies[p.Name] = placeholder
		if p.Name == MainProxy {
			d.Proxy = placeholder
		}
	}
	if _, err := Expand(text, d); err != nil {
		v.report(path, "%v", err)
	}
}

// frontsTarget is NamedProxy.FrontsTarget as the file means it: a proxy
// whose upstream is written but did not decode (an unset variable, say)
// still fronts a dependency, so its one problem is not followed by others
// about the proxy it then seems to be.
func (v *validator) frontsTarget(p NamedProxy) bool {
	path := proxyPath(p.Name)
	_, upstream := v.At[path+".upstream"]
	_, upstreams := v.At[path+".upstreams"]
	return p.FrontsTarget() && !upstream && !upstreams
}

// Expand executes a target template, e.g. "{{ .Proxies.db.Addr }}".
func Expand(text string, d TemplateData) (string, error) {
	t, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("template %q: %w", text, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		names := slices.Sorted(maps.Keys(d.Proxies))
		return "", fmt.Errorf("template %q: %v (it can use .Proxy.Addr, .Proxy.URL and .Proxies.NAME.Addr or .URL; proxies: %s)", text, err, strings.Join(names, ", "))
	}
	return b.String(), nil
}

var tokenChars = regexp.MustCompile(`^[!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z]+$`)

func (v *validator) validateLoad() {
	l := &v.s.Load
	if _, set := v.At["load"]; !set {
		v.report("load", "is required: give at least a rate and one request")
		return
	}
	everyPhase := len(v.s.Phases) > 0
	for _, ph := range v.s.Phases {
		everyPhase = everyPhase && ph.Rate.IsSet()
	}
	if l.Rate == 0 && !everyPhase {
		if n, set := v.At["load.rate"]; !set || n.Tag == "!!null" {
			v.report("load.rate", "is required, e.g. rate: 50/s")
		}
	}
	if l.Timeout <= 0 {
		v.report("load.timeout", "must be above zero")
	}
	switch l.AtMaxInFlight {
	case "":
		l.AtMaxInFlight = AtCapDrop
	case AtCapDrop, AtCapWait:
	default:
		v.report("load.at_max_in_flight", "unknown %q; use drop or wait", l.AtMaxInFlight)
	}
	if l.MaxInFlight < 0 {
		v.report("load.max_in_flight", "must not be negative (0 means the default, %d)", DefaultMaxInFlight)
	}
	v.validateGRPCLoad()
	if len(l.Requests) == 0 && l.GRPC == nil {
		v.report("load", "requests: give at least one request, e.g. [{method: GET, path: /api/orders}], or grpc: {call: pkg.Service/Method}")
	}
	for i := range l.Requests {
		r := &l.Requests[i]
		p := fmt.Sprintf("load.requests[%d]", i)
		if r.Method == "" {
			r.Method = DefaultMethod
		}
		r.Method = strings.ToUpper(r.Method)
		if !tokenChars.MatchString(r.Method) {
			v.report(p+".method", "%q is not an HTTP method", r.Method)
		}
		if !strings.HasPrefix(r.Path, "/") {
			v.report(p+".path", "must start with /, e.g. /api/orders")
		}
		v.checkExpect(p+".expect", r.Expect, false)
	}
}

// checkExpect reports what is wrong with a request's response checks, at
// the key at fault.
func (v *validator) checkExpect(path string, e *check.Spec, grpc bool) {
	if e == nil {
		return
	}
	e.Check(grpc, func(field, msg string) { v.report(path+"."+field, "%s", msg) })
}

func (v *validator) validatePhases() {
	s := v.s
	if len(s.Phases) == 0 {
		v.report("phases", "at least one phase is required")
	}
	names := map[string]bool{}
	ids := map[string]string{} // fault id prefix → the phase that has it
	for i, ph := range s.Phases {
		p := fmt.Sprintf("phases[%d]", i)
		id := strings.ReplaceAll(ph.Name, " ", "_")
		switch {
		case strings.TrimSpace(ph.Name) == "":
			v.report(p+".name", "is required")
		case names[ph.Name]:
			v.report(p+".name", "phase %q is already defined", ph.Name)
		case ph.Name == verify.PhaseRun:
			v.report(p+".name", "%q is reserved: SLAs write `during run` for the whole run", ph.Name)
		case ids[id] != "":
			// Faults are named after their phase, spaces as underscores.
			v.report(p+".name", "phase %q names its faults %s/…, as phase %q does: rename one", ph.Name, id, ids[id])
		}
		names[ph.Name] = true
		if ids[id] == "" {
			ids[id] = ph.Name
		}
		s.Phases[i].Rate.check(v.report, p+".rate", ph.Duration, s.Load.Rate)
		if ph.Duration <= 0 {
			if _, set := v.At[p+".duration"]; set {
				v.report(p+".duration", "must be above zero, e.g. 10s")
			} else {
				v.report(p+".duration", "is required, e.g. duration: 10s")
			}
		}
		perKind := map[string]int{}
		for _, f := range ph.Faults {
			if f.resolved() {
				perKind[f.Kind()]++
			}
		}
		seen := map[string]int{}
		for j := range ph.Faults {
			f := &v.s.Phases[i].Faults[j]
			if !f.resolved() {
				continue // the decoder already reported why
			}
			seen[f.Kind()]++
			f.ID = strings.ReplaceAll(ph.Name, " ", "_") + "/" + f.Kind()
			if perKind[f.Kind()] > 1 {
				f.ID += fmt.Sprintf("#%d", seen[f.Kind()])
			}
			fp := fmt.Sprintf("%s.faults[%d].%s", p, j, f.Kind())
			if f.Runtime != nil {
				if v.s.Target.Agent == "" && v.s.Target.Builtin == "" {
					v.report(fp, "a runtime fault runs inside the target: set target.agent to the URL where it mounts resctl's agent")
				}
				f.Runtime.Check(agent.Options{MaxTTL: agent.DefaultMaxTTL, MaxGoroutines: agent.DefaultMaxGoroutines, MaxBytes: agent.DefaultMaxBytes},
					func(field, msg string) { v.report(fp+"."+field, "%s", msg) })
				// The built-in target's agent caps a fault's TTL; another
				// target's agent may have been given a cap of its own.
				if ttl := ph.Duration + RuntimeGrace; v.s.Target.Builtin != "" && ttl > agent.DefaultMaxTTL {
					v.report(fp, "lasts its phase and %s more, %s, over the agent's cap on a fault's TTL of %s: split the phase", RuntimeGrace, ttl, agent.DefaultMaxTTL)
				}
				continue
			}
			if f.Process != nil {
				v.validateProcessFault(fp, ph, f.Process)
				continue
			}
			if f.Network != nil {
				if f.undecoded {
					continue
				}
				f.Network.Check(func(field, msg string) { v.report(fp+"."+field, "%s", msg) })
				continue
			}
			f.Spec.Check(func(field, msg string) { v.report(fp+"."+field, "%s", msg) })
		}
	}
}

func (v *validator) validateSLAs() {
	var phases []string
	for _, ph := range v.s.Phases {
		phases = append(phases, ph.Name)
	}
	for i := range v.s.SLAs {
		sla := &v.s.SLAs[i]
		p := fmt.Sprintf("slas[%d]", i)
		if sla.During != "" && !slices.Contains(phases, sla.During) {
			if s, ok := suggest.Closest(sla.During, phases); ok {
				v.report(p+".during", "no phase named %q (did you mean %q?)", sla.During, s)
			} else {
				v.report(p+".during", "no phase named %q; phases: %s", sla.During, strings.Join(phases, ", "))
			}
		}
		if (sla.SteadyState || sla.AbortOnBreach) && sla.During == "" {
			key := "steady_state"
			if !sla.SteadyState {
				key = "abort_on_breach"
			}
			v.report(p+"."+key, "needs `during:` to name the phase it watches")
		}
		if strings.TrimSpace(sla.Expect) == "" {
			v.report(p+".expect", "is required, e.g. expect: success_rate >= 99%% and p99 < 150ms")
			continue
		}
		expr, err := verify.Parse(sla.Expect)
		if err != nil {
			var se *verify.SyntaxError
			if errors.As(err, &se) {
				v.exprProblem(p+".expect", se)
			} else {
				v.report(p+".expect", "%v", err)
			}
			continue
		}
		if err := expr.CheckNames(v.known()); err != nil {
			var se *verify.SyntaxError
			if errors.As(err, &se) {
				v.exprProblem(p+".expect", se)
				continue
			}
		}
		v.checkSources(p+".expect", expr)
		sla.Expr = expr
		if sla.Name == "" {
			sla.Name = sla.Expect
		}
	}
}

// validateGuard checks every policy of every proxy and names it after
// its route: the main proxy's after the route alone, a named proxy's
// after the proxy and the route (db, db:/api/orders).
func (v *validator) validateGuard() {
	for _, np := range v.s.AllProxies() {
		path, owner, prefix := proxyPath(np.Name), np.Name, ""
		if np.Name != MainProxy {
			prefix = np.Name + ":"
		}
		v.checkChain(path+".guard", owner, np.Guard)
		v.validateRouteUpstreams(path, np.Proxy)
		routes := map[string]bool{}
		for i := range np.Routes {
			rt := &np.Routes[i]
			p := fmt.Sprintf("%s.routes[%d]", path, i)
			if !strings.HasPrefix(rt.Match.Path, "/") {
				v.report(p+".match.path", "must start with /, e.g. /api/orders")
			}
			if rt.Match.Method != "" {
				rt.Match.Method = strings.ToUpper(rt.Match.Method)
			}
			if rt.Name == "" {
				rt.Name = rt.Match.Path
			}
			if routes[rt.Name] {
				v.report(p+".name", "route %q is already defined; give the route a name of its own", rt.Name)
			}
			routes[rt.Name] = true
			if len(rt.Guard) == 0 && len(rt.Upstreams) == 0 {
				v.report(p+".guard", "a route needs at least one policy, or upstreams of its own")
			}
			v.checkChain(p+".guard", prefix+rt.Name, rt.Guard)
		}
	}
}

// proxyPath is where a proxy is in the file.
func proxyPath(name string) string {
	if name == MainProxy {
		return "proxy"
	}
	return "proxies." + name
}

// A fallback's file is read relative to the scenario file, as a scenario
// is run from anywhere.
func (v *validator) checkChain(path, owner string, chain []Policy) {
	for _, pol := range chain {
		if fc, ok := pol.Config.(*guard.FallbackConfig); ok && fc.File != "" && !filepath.IsAbs(fc.File) {
			fc.File = filepath.Join(filepath.Dir(v.s.File), fc.File)
		}
	}
	guard.NameChain(path, owner, chain, func(p, msg string) { v.report(p, "%s", msg) })
}

// Policies returns every policy of every proxy: each proxy's proxy-wide
// chain's, then its routes'.
func (s *Scenario) Policies() []Policy {
	var out []Policy
	for _, p := range s.AllProxies() {
		out = append(out, p.Guard...)
		for _, rt := range p.Routes {
			out = append(out, rt.Guard...)
		}
	}
	return out
}

// known lists the phases, fault ids and policy names SLAs may name.
func (v *validator) known() verify.Known {
	k := verify.Known{States: map[string][]string{"fault": nil, "breaker": nil}}
	for _, pol := range v.s.Policies() {
		if pol.Config != nil {
			k.States[pol.Kind()] = append(k.States[pol.Kind()], pol.Name)
		}
	}
	k.States[ProcessStateKind] = v.s.ProcessStates()
	k.States[UpstreamStateKind] = nil
	for _, p := range v.s.AllProxies() {
		k.States[UpstreamStateKind] = append(k.States[UpstreamStateKind], p.UpstreamStates()...)
	}
	var windows []string
	for _, ph := range v.s.Phases {
		k.Phases = append(k.Phases, ph.Name)
		for _, f := range ph.Faults {
			if f.ID != "" {
				k.States["fault"] = append(k.States["fault"], f.ID)
			}
			if f.Process != nil && f.ID != "" {
				windows = append(windows, f.ID)
			}
		}
	}
	// A process fault's id names its window, from its first action to
	// the process ready again: time_to(process("target") == ready,
	// from: "crash/kill") is its downtime.
	k.Phases = append(k.Phases, windows...)
	return k
}

// Sources returns the scrape sources SLAs may read: the scenario's
// endpoints, or by default the proxies (each by its name), the target and
// the target's agent.
func (s *Scenario) Sources() []string {
	if len(s.Scrape.Endpoints) > 0 {
		return slices.Sorted(maps.Keys(s.Scrape.Endpoints))
	}
	var out []string
	for _, p := range s.AllProxies() {
		out = append(out, p.Name)
	}
	if s.Target.Agent != "" || s.Target.Builtin != "" {
		out = append(out, SourceRuntime)
	}
	out = append(out, "target")
	slices.Sort(out)
	return out
}

// checkSources reports selectors that read a source nothing scrapes.
func (v *validator) checkSources(path string, expr *verify.Expr) {
	sources := v.s.Sources()
	for _, sel := range expr.Selectors() {
		if slices.Contains(sources, sel.Source) {
			continue
		}
		if s, ok := suggest.Closest(sel.Source, sources); ok {
			v.report(path, "%s reads source %q, which is not scraped (did you mean %q?)", sel, sel.Source, s)
		} else {
			v.report(path, "%s reads source %q, which is not scraped; add it under scrape.endpoints (scraped: %s)", sel, sel.Source, strings.Join(sources, ", "))
		}
	}
}

// exprProblem places an SLA syntax error on the column of the expression
// where it happened, when the expression sits on one line of the file.
func (v *validator) exprProblem(path string, se *verify.SyntaxError) {
	n, ok := v.At[path]
	if !ok {
		v.report(path, "%s", se.Msg)
		return
	}
	at := strictyaml.NodePos(n)
	start := at.Col - 1 // byte offset of the value in its line
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
		start++
	}
	// The column in the file is only exact when the expression appears in
	// the file as written: one line, no escapes, no ${VAR}. Otherwise point
	// at the value and give the column within the expression.
	if at.Line-1 < len(v.lines) && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		if line := v.lines[at.Line-1]; start <= len(line) && strings.HasPrefix(line[start:], v.s.SLAs[slaIndex(path)].Expect) {
			prefix := []rune(line[:start])
			v.Add(strictyaml.Pos{Line: at.Line, Col: len(prefix) + se.Col}, path, "%s", se.Msg)
			return
		}
	}
	v.Add(at, path, "column %d of the expression: %s", se.Col, se.Msg)
}

func (v *validator) validateScrape() {
	sc := &v.s.Scrape
	if sc.Interval <= 0 {
		v.report("scrape.interval", "must be above zero, e.g. 1s")
	}
	for name, where := range sc.Endpoints {
		p := "scrape.endpoints." + name
		if !strictyaml.ValidEnvName(name) {
			v.report(p, "%q is not a valid source name: use letters, digits and _", name)
		}
		switch {
		case where == EndpointTarget:
			continue
		case where == EndpointSelf && !v.s.HasProxy():
			v.report(p, "self is the main proxy's metrics, and this scenario has none; name one: proxy:NAME")
			continue
		case where == EndpointSelf:
			continue
		}
		if name, ok := strings.CutPrefix(where, EndpointProxy); ok {
			if _, known := v.s.Proxies[name]; !known && (name != MainProxy || !v.s.HasProxy()) {
				v.report(p, "no proxy named %q; proxies: %s", name, strings.Join(v.proxyNames(), ", "))
			}
			continue
		}
		u, err := url.Parse(where)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.report(p, "%q is neither self, target, proxy:NAME nor an http:// URL", where)
		}
	}
}

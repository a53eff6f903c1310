package scenario

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/check"
	"github.com/resctl/resctl/guard"
	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/inject/process"
	"github.com/resctl/resctl/quantity"
	"github.com/resctl/resctl/verify"
)

// Defaults a scenario gets for keys it leaves out.
const (
	DefaultOutputDir   = "resctl-out"
	DefaultLoadTimeout = 10 * time.Second
	DefaultProxyListen = "127.0.0.1:0"
	DefaultAdminListen = "127.0.0.1:0"
	DefaultProtocol    = "http"
	DefaultMethod      = "GET"
	DefaultMaxInFlight = 2048
)

// Scenario is one experiment, read top to bottom as it runs: a target, a
// proxy in front of it, load driven through the proxy in phases, faults
// switched on per phase, and the SLAs the run must meet.
type Scenario struct {
	// Name is the experiment's short name, at the head of its reports.
	Name string `yaml:"name"`
	// Description says what the experiment checks, in reports.
	Description string `yaml:"description"`
	// Seed makes every probabilistic choice of the run reproducible.
	Seed uint64 `yaml:"seed"`
	// Target is the service under test.
	Target Target `yaml:"target"`
	// Services are processes resctl starts before the target and the
	// proxy and stops after them: the dependencies of the service under
	// test (a redis-server, a stub API), for tests.
	Services []Service `yaml:"services"`
	// Proxy is the main harness proxy: in front of the target, with the
	// load going through it, or (with upstream) in front of one
	// dependency. A scenario with proxies and no proxy key has none.
	Proxy Proxy `yaml:"proxy"`
	// Proxies are more harness proxies, by name, each in front of one
	// dependency of the service under test with its own protocol, listen
	// address, upstream and guard chain. Faults name the proxy they act
	// on (proxy: db); target templates name its address
	// ({{ .Proxies.db.Addr }}); its metrics are the scrape source of its
	// name.
	Proxies map[string]Proxy `yaml:"proxies"`
	// Load is the traffic resctl sends to the target.
	Load Load `yaml:"load"`
	// Phases are the run's timed stretches, in order, each with the faults
	// on during it.
	Phases []Phase `yaml:"phases"`
	// SLAs are what the run must meet; one that fails makes the exit code 3.
	SLAs []SLA `yaml:"slas"`
	// RequireFaultsFired fails the run (exit 3) when a fault never acted
	// on a request: an experiment whose fault missed proves nothing.
	RequireFaultsFired bool `yaml:"require_faults_fired"`
	// Scrape says which Prometheus endpoints the run reads, and how often.
	Scrape Scrape `yaml:"scrape"`
	// Output says where the reports go and in which formats.
	Output Output `yaml:"output"`

	// File is the path the scenario was read from, for messages.
	File string `yaml:"-"`
}

// Target is the service under test: exactly one of Builtin or URL.
type Target struct {
	// Builtin names a target resctl starts itself; "demo" is the built-in
	// demo service.
	Builtin string `yaml:"builtin"`
	// URL is the base URL of a service that is already running.
	URL string `yaml:"url"`
	// Agent is the URL where the target mounts resctl's runtime-fault
	// agent (inject/agent), for goroutines, memory, cpu and gc faults;
	// the built-in demo target mounts it at /debug/resctl.
	Agent string `yaml:"agent"`

	// Command, when set, is the service under test, started by resctl
	// before the load and stopped (with its children) at the end, however
	// the run ends; URL says where it will listen. Its arguments and Env
	// values are templates that can name the proxy: {{ .Proxy.Addr }},
	// {{ .Proxy.URL }}.
	Command []string `yaml:"command"`
	// Env are variables set for Command's service besides resctl's own
	// environment; values are templates.
	Env map[string]string `yaml:"env"`
	// Dir is the working directory of Command's service.
	Dir string `yaml:"dir"`
	// Ready is a health URL (answering under 500) or a host:port accepting
	// connections; default: the URL's host:port.
	Ready string `yaml:"ready"`
	// ReadyTimeout bounds the wait for Ready.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// Stop says how Command's service is stopped at the end.
	Stop StopSpec `yaml:"stop"`
}

// Service is a process resctl starts for the run, such as a dependency.
type Service struct {
	// Name names the service in process faults, SLAs and logs: letters,
	// digits and _.
	Name string `yaml:"name"`
	// Command starts the service: the program and its arguments.
	Command []string `yaml:"command"`
	// Env are variables set for the service besides resctl's own
	// environment.
	Env map[string]string `yaml:"env"`
	// Dir is the service's working directory.
	Dir string `yaml:"dir"`
	// Ready is a health URL or a host:port; required, since a dependency
	// that is not up yet would fail the baseline.
	Ready string `yaml:"ready"`
	// ReadyTimeout bounds the wait for Ready.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// Stop says how the service is stopped at the end.
	Stop StopSpec `yaml:"stop"`
	// Replicas runs several instances of the service (default 1), each on
	// its own port of Ports: its command, env and ready say where with
	// {{ .Port }} (and may use {{ .Replica }}: 1, 2, …). Process faults
	// and SLAs name the instances NAME.1, NAME.2, …; a process fault that
	// names the service acts on some of them (percent).
	Replicas int `yaml:"replicas"`
	// Ports are the instances' ports, one per replica; {{ .Port }} in
	// command, env and ready is the instance's.
	Ports []int `yaml:"ports"`
}

// MaxReplicas bounds a service's replicas.
const MaxReplicas = 32

// Instances are the names of the service's processes: its name, or with
// replicas NAME.1, NAME.2, ….
func (s Service) Instances() []string {
	if s.Replicas <= 1 {
		return []string{s.Name}
	}
	out := make([]string, s.Replicas)
	for i := range out {
		out[i] = InstanceName(s.Name, i+1)
	}
	return out
}

// InstanceName names the replica-th (from 1) instance of a service.
func InstanceName(service string, replica int) string {
	return service + "." + strconv.Itoa(replica)
}

// InstanceData is what a service's command, env and ready templates see.
type InstanceData struct {
	// Port is the instance's port, from ports; 0 without ports.
	Port int
	// Replica numbers the instance from 1.
	Replica int
}

// ExpandInstance fills in a service's template for one instance.
func ExpandInstance(text string, d InstanceData) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("template %q: %w", text, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("template %q: %v (it can use .Port and .Replica)", text, err)
	}
	return b.String(), nil
}

// StopSpec says how a started process is stopped: Signal to its process
// group, then SIGKILL after Grace.
type StopSpec struct {
	// Signal is sent to the process group first; default SIGTERM.
	Signal string `yaml:"signal"`
	// Grace is how long the process may take to exit before SIGKILL.
	Grace time.Duration `yaml:"grace"`
}

// MainProxy is the name of the main proxy, scenario key proxy, in faults,
// the admin API and events.
const MainProxy = "proxy"

// HasProxy says whether the scenario has a main proxy: it always does
// unless it gives proxies and no proxy key.
func (s *Scenario) HasProxy() bool { return s.Proxy.Protocol != "" }

// NamedProxy is one proxy of the run with its name.
type NamedProxy struct {
	Name string
	Proxy
}

// FrontsTarget says whether the proxy is in front of the service under
// test, so the load goes through it, rather than in front of a dependency:
// one with upstream or upstreams fronts a dependency.
func (p NamedProxy) FrontsTarget() bool { return p.Upstream == "" && len(p.Upstreams) == 0 }

// AllProxies returns every proxy of the run: the main one first, when
// there is one, then the named ones in name order.
func (s *Scenario) AllProxies() []NamedProxy {
	var out []NamedProxy
	if s.HasProxy() {
		out = append(out, NamedProxy{MainProxy, s.Proxy})
	}
	for _, name := range slices.Sorted(maps.Keys(s.Proxies)) {
		out = append(out, NamedProxy{name, s.Proxies[name]})
	}
	return out
}

// Proxy is a harness proxy resctl puts in front of the target or of one
// of its dependencies.
type Proxy struct {
	// Protocol the proxy speaks to clients and to the target: http
	// (HTTP/1.1 and h2c accepted from clients, HTTP/1.1 upstream), h2c
	// (h2c on both sides), grpc (gRPC calls of every kind, with the gRPC
	// faults and guard chains per method) or tcp (bytes, whatever the
	// protocol, with connection faults).
	Protocol string `yaml:"protocol"`
	// Listen is the proxy's address; the default picks a free loopback port.
	Listen string `yaml:"listen"`
	// Admin is the address of the proxy's own /metrics endpoint, which
	// also serves the admin API.
	Admin string `yaml:"admin"`
	// Upstream, when set, is what the proxy fronts instead of the target:
	// a dependency of the service under test (http://host:port, or
	// host:port for tcp). The load then goes straight to the target, and
	// the target reaches the dependency through the proxy.
	Upstream string `yaml:"upstream"`
	// Upstreams, instead of upstream, are several instances of the
	// dependency (http:// URLs); the proxy sends each request to one of
	// them by power of two choices and ejects failing ones.
	Upstreams []string `yaml:"upstreams"`
	// Balance configures ejection and the connection pools.
	Balance Balance `yaml:"balance"`
	// Guard is the proxy-wide resilience chain, applied in order to every
	// request.
	Guard []Policy `yaml:"guard"`
	// Routes guard parts of the API with chains of their own.
	Routes []Route `yaml:"routes"`
	// Limits bound the connections of the proxy's clients.
	Limits ConnLimits `yaml:"limits"`
}

// Policy is one resilience policy of a guard chain, written like a fault:
// `- breaker: {window: 10s, failure_rate: 50%}`.
type Policy = guard.Spec

// Route is a part of the API the proxy guards with a chain of its own.
type Route = guard.RouteSpec

// Load is the open-loop traffic driven through the proxy.
type Load struct {
	// Rate is the constant request rate, e.g. 50/s, of every phase that
	// gives no rate of its own.
	Rate quantity.Rate `yaml:"rate"`
	// Requests are sent round-robin.
	Requests []Request `yaml:"requests"`
	// GRPC, instead of Requests, makes the load gRPC calls.
	GRPC *GRPCLoad `yaml:"grpc"`
	// Timeout bounds each request; a request that takes longer counts as
	// an error.
	Timeout time.Duration `yaml:"timeout"`
	// HTTP2 sends the load as h2c (HTTP/2 without TLS) instead of HTTP/1.1.
	HTTP2 bool `yaml:"http2"`
	// MaxInFlight caps concurrent requests (default 2048); at the cap a
	// request is dropped — a failure, counted as dropped too — and the
	// schedule goes on, so a target too slow to keep up shows as one.
	MaxInFlight int `yaml:"max_in_flight"`
	// AtMaxInFlight is what happens at the cap: drop (default) counts the
	// request as dropped and keeps the schedule; wait holds the schedule
	// until a request ends, and the response times show the wait.
	AtMaxInFlight string `yaml:"at_max_in_flight"`
}

// What load.at_max_in_flight may say.
const (
	AtCapDrop = "drop"
	AtCapWait = "wait"
)

// Request is one request of the load mix.
type Request struct {
	// Method is the HTTP method; default GET.
	Method string `yaml:"method"`
	// Path is the request's path and query, from /.
	Path string `yaml:"path"`
	// Headers go with the request.
	Headers map[string]string `yaml:"headers"`
	// Body is the request's body.
	Body string `yaml:"body"`
	// Expect checks every response: statuses, headers, body size and
	// content, JSON fields. A response that fails a check is a failed
	// request, counted with the check's reason.
	Expect *check.Spec `yaml:"expect"`
}

// Phase is a timed stretch of the run with the faults active during it.
type Phase struct {
	// Name is how SLAs (during: NAME) and reports refer to the phase.
	Name string `yaml:"name"`
	// Duration is the phase's length.
	Duration time.Duration `yaml:"duration"`
	// Rate is the phase's own load, constant or shaped; default load.rate.
	// The schedule runs on across phases: no pause, no new connections.
	Rate PhaseRate `yaml:"rate"`
	// Faults are on for the phase: each one kind with its parameters, at a
	// proxy, in the target through its agent, on the network, or on a
	// process.
	Faults []Fault `yaml:"faults"`
}

// Fault is one fault of a phase, written as a single-key map from its kind
// to its parameters: `- latency: {delay: 300ms, percent: 50}`.
type Fault struct {
	// Proxy names the proxy the fault acts on (the fault's proxy: key):
	// "proxy" for the main one, or a key of proxies. Validation fills it
	// in when the scenario has only one proxy.
	Proxy string
	// Spec is a fault the proxy injects; nil for a runtime fault.
	Spec inject.Spec
	// Runtime is a fault the target's own agent runs inside the service
	// (goroutines, memory, cpu, gc), with Params as sent to it; nil for a
	// proxy fault.
	Runtime agent.Spec
	Params  map[string]any
	// Network is a real network fault (tc netem, tbf, a partition) on the
	// link that resctl lays between the proxy and its upstream; nil for
	// the others.
	Network *netem.Spec
	// Process kills, pauses or restarts a process resctl started (the
	// target or a service); nil for the others.
	Process process.Spec
	// Optional (the fault's optional: key) lets a run go on without a
	// fault this machine cannot inject (a network fault without root),
	// reporting it as not started; without it the run refuses to start.
	Optional bool

	// Until validation resolves it: the kind, its key and parameters.
	kind             string
	kindNode, params *yaml.Node
	proxyNode        *yaml.Node
	path             string
	undecoded        bool // a parameter did not decode (and was reported)
	// ID names the fault in reports, events and SLAs (fault("fault/latency")):
	// its phase and kind, with "#2", "#3"… when a kind repeats in a phase.
	ID string
}

// Kind is the fault's kind name.
func (f Fault) Kind() string {
	switch {
	case f.Runtime != nil:
		return f.Runtime.Kind()
	case f.Spec != nil:
		return f.Spec.Kind()
	case f.Network != nil:
		return f.Network.Kind()
	case f.Process != nil:
		return f.Process.Kind()
	}
	return f.kind
}

// resolved reports whether the fault decoded into a kind.
func (f Fault) resolved() bool {
	return f.Spec != nil || f.Runtime != nil || f.Network != nil || f.Process != nil
}

// SLA is an expectation the run must meet.
type SLA struct {
	// Name is how reports give the SLA; default its expect.
	Name string `yaml:"name"`
	// During names the phase the SLA is checked over; empty means the whole
	// run.
	During string `yaml:"during"`
	// Expect is an expression in resctl's SLA language, e.g.
	// "success_rate >= 99% and p99 < 150ms".
	Expect string `yaml:"expect"`

	// SteadyState makes the SLA a precondition: it is checked as soon as
	// its phase ends, and if it fails the run stops there, before any
	// later phase's faults, with the verdict that the system was not
	// healthy to begin with. It needs `during`.
	SteadyState bool `yaml:"steady_state"`
	// AbortOnBreach checks the SLA every second while its phase runs, over
	// the phase so far, and stops the run (faults cleared, report written)
	// the moment it fails: a safeguard for shared environments. It needs
	// `during`.
	AbortOnBreach bool `yaml:"abort_on_breach"`

	// Expr is Expect, parsed and checked.
	Expr *verify.Expr `yaml:"-"`
}

// Scrape says which Prometheus endpoints the run reads, and how often.
type Scrape struct {
	// Interval between scrapes; default 1s.
	Interval time.Duration `yaml:"interval"`
	// Endpoints maps a source name, as SLAs and reports refer to it, to
	// where its metrics are: "self" (the main proxy's own), "proxy:NAME"
	// (a named proxy's), "target" (the target's /metrics), or an http://
	// URL. Without this key resctl scrapes every proxy under its name
	// (the main one as proxy) and the target, the target's as optional.
	Endpoints map[string]string `yaml:"endpoints"`
	// Panels are scraped series to chart in the HTML report, as selectors
	// such as target:go_goroutines; default: the target's goroutines and
	// heap in use.
	Panels []string `yaml:"panels"`
}

// SourceRuntime is the scrape source of the runtime/metrics readings a
// target's resctl agent serves, scraped by default when the target has one.
const SourceRuntime = "runtime"

// Endpoint values with a meaning of their own.
const (
	EndpointSelf = "self"
	// EndpointProxy prefixes a proxy's name: proxy:db is the metrics of
	// the proxy named db.
	EndpointProxy  = "proxy:"
	EndpointTarget = "target"
)

// DefaultScrapeInterval is how often endpoints are scraped by default.
const DefaultScrapeInterval = time.Second

// Output says where and in which formats the run's reports are written.
// Without formats, a run writes report.json and report.html
// (DefaultFormats); formats given replace them (report.json is written
// whatever they say).
type Output struct {
	// Dir is where the reports are written; --out replaces it.
	Dir string `yaml:"dir"`
	// Formats are the reports written besides report.json: html, junit,
	// markdown.
	Formats []string `yaml:"formats"`
}

// DefaultFormats are the formats a run writes when the scenario names
// none: the machine contract and the recovery report people open.
var DefaultFormats = []string{"json", "html"}

// Formats the run can write today.
var knownFormats = []string{"json", "html", "junit", "markdown"}

// Duration is the total length of the run.
func (s *Scenario) Duration() time.Duration {
	var d time.Duration
	for _, p := range s.Phases {
		d += p.Duration
	}
	return d
}

func defaults() Scenario {
	return Scenario{
		Proxy:  Proxy{Protocol: DefaultProtocol, Listen: DefaultProxyListen, Admin: DefaultAdminListen},
		Load:   Load{Timeout: DefaultLoadTimeout},
		Scrape: Scrape{Interval: DefaultScrapeInterval},
		Output: Output{Dir: DefaultOutputDir, Formats: slices.Clone(DefaultFormats)},
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/console"
	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/internal/version"
	"github.com/resctl/resctl/runner"
	"github.com/resctl/resctl/scenario"
	"github.com/resctl/resctl/session"
)

type chaosOptions struct {
	Scenario string
	Upstream string
	Protocol string
	Config   string
	Attach   string
	Demo     bool
	Front    string
	Agent    string
	Call     string
	Token    string
	Script   string
	TTL      time.Duration
	Seed     uint64
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	// Console forces the full-screen console (true) or script mode
	// (false); nil decides by whether stdin and stdout are terminals.
	Console *bool
}

func newChaosCmd(runF func(context.Context, *chaosOptions) error) *cobra.Command {
	opts := &chaosOptions{}
	cmd := &cobra.Command{
		Use:   "chaos [SCENARIO]",
		Short: "An interactive chaos session: faults, load and a live view, saved as a scenario",
		Long: `Explore a service by hand: put proxies in front of it (--upstream, --config,
--demo for the built-in demo target, or a scenario file: its target, proxies
and guard, without its phases) or attach to a running resctl proxy or
resctl run (--attach ADMIN_URL), then type faults and load while a live view
shows each proxy's requests/s, errors and p50/p99, the guard's states, the
active faults and an event log. What you did is kept: save FILE writes it
as a scenario that resctl run replays (with SLAs proposed from what the
session saw), report FILE writes its recovery report.

Commands (help in the session lists them):
  latency default 200ms 30%        abort default 503 10% path=/api
  blackhole db 20s                 goroutines target 10000 30s
  clear [ID|PROXY]   load 100/s 30s [PATH]   load stop   mark "deploy v2"
  faults   wait 10s|load   save FILE   report FILE   help [CMD]   quit

Every fault has a TTL (for=, default 5m): a session that dies leaves no
fault behind longer. Quitting clears the faults on proxies the session
started; attached, it asks about those it added (script mode clears them).

Without a terminal on stdin and stdout, or with --script FILE, commands are
read line by line and every event is printed as one plain line. Exit codes:
0 the session ended; 1 it could not start (a proxy, the demo target, an
admin API that does not answer); 2 bad usage, or a script line was refused.`,
		Example: `  resctl chaos --demo
  resctl chaos --upstream http://127.0.0.1:8080
  resctl chaos --config proxies.yaml
  resctl chaos --attach http://127.0.0.1:8474
  resctl chaos testdata/scenarios/guard-breaker.yaml
  printf 'load 50/s 20s /api/orders\nwait 5s\nlatency default 300ms\nwait load\nsave s.yaml\n' | resctl chaos --demo`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Stdin, opts.Stdout, opts.Stderr = c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr()
			if len(args) == 1 {
				opts.Scenario = args[0]
			}
			if opts.Token == "" {
				opts.Token = os.Getenv("RESCTL_ADMIN_TOKEN")
			}
			n := 0
			for _, set := range []bool{opts.Upstream != "", opts.Config != "", opts.Attach != "", opts.Demo, opts.Scenario != ""} {
				if set {
					n++
				}
			}
			switch {
			case n == 0:
				return withCode(exitUsage, errors.New("resctl chaos needs one of --demo, --upstream URL, --config FILE, --attach ADMIN_URL or a scenario file"), "e.g. resctl chaos --demo")
			case n > 1:
				return withCode(exitUsage, errors.New("resctl chaos takes only one of --demo, --upstream URL, --config FILE, --attach ADMIN_URL or a scenario file"), "e.g. resctl chaos --demo")
			}
			if opts.TTL <= 0 || opts.TTL > harness.MaxFaultTTL {
				return withCode(exitUsage, fmt.Errorf("--ttl %v: between 0 and %v", opts.TTL, harness.MaxFaultTTL), "")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runChaos(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Demo, "demo", false, "start the built-in demo target and a proxy in front of it")
	f.StringVar(&opts.Upstream, "upstream", "", "start a proxy in front of this service (a URL; host:port for tcp)")
	f.StringVar(&opts.Protocol, "protocol", harness.ProtocolHTTP, "the --upstream proxy's protocol: http, h2c, grpc or tcp")
	f.StringVar(&opts.Config, "config", "", "start the proxies a YAML file lists (as resctl proxy --config)")
	f.StringVar(&opts.Attach, "attach", "", "attach to the admin API of a running resctl proxy or resctl run")
	f.StringVar(&opts.Front, "proxy", "", "the proxy the session's load goes through (default: the first that is not a tcp proxy)")
	f.StringVar(&opts.Agent, "agent", "", "the target's runtime-fault agent, for goroutines, memory, cpu and gc (--demo has one)")
	f.StringVar(&opts.Call, "call", "", "for load through a grpc proxy: the method, package.Service/Method")
	f.StringVar(&opts.Token, "token", "", "the admin API's bearer token, attached (default $RESCTL_ADMIN_TOKEN)")
	f.StringVar(&opts.Script, "script", "", "read commands from this file instead of the terminal")
	f.DurationVar(&opts.TTL, "ttl", session.DefaultTTL, "how long a fault lasts when its command gives no for=")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed for the faults' random choices (and the saved scenario's)")
	return cmd
}

func runChaos(ctx context.Context, opts *chaosOptions) error {
	sopts := session.Options{Front: opts.Front, GRPCCall: opts.Call, DefaultTTL: opts.TTL, Seed: opts.Seed}
	if opts.Agent != "" {
		sopts.Agent = &agent.Client{BaseURL: opts.Agent}
	}
	// The proxies (and the demo target) live as long as the session;
	// their context ends after the session has cleared its faults.
	hostCtx, stopHost := context.WithCancel(context.WithoutCancel(ctx))
	hostDone := make(chan error, 1)
	stopTarget := func() {}
	defer func() {
		stopHost()
		if opts.Attach == "" {
			<-hostDone
		}
		stopTarget()
	}()
	if opts.Attach != "" {
		sopts.Admin = adminClient(opts.Attach, opts.Token)
	} else {
		var procs harness.Processes
		proxies, stop, err := chaosProxies(ctx, opts, &sopts, &procs)
		if err != nil {
			hostDone <- nil
			return err
		}
		stopTarget = stop
		ready := make(chan harness.Started, 1)
		go func() {
			hostDone <- harness.Serve(hostCtx, harness.ServeOptions{
				Proxies: proxies, AdminListen: "127.0.0.1:0", Seed: opts.Seed, Version: version.String(),
				ConfigPath: opts.Config, Processes: procs,
			}, func(s harness.Started) { ready <- s })
		}()
		select {
		case st := <-ready:
			sopts.Admin = &harness.AdminClient{BaseURL: st.AdminURL}
			sopts.Owned = true
		case err := <-hostDone:
			hostDone <- err
			if errors.Is(err, harness.ErrAdminToken) || (err != nil && strings.Contains(err.Error(), "protocol")) {
				return withCode(exitUsage, err, "")
			}
			return withCode(exitRunFailed, fmt.Errorf("start the proxies: %w", err), "")
		}
	}
	s, err := session.New(ctx, sopts)
	if err != nil {
		hint := "is it running? resctl proxy prints its admin API's address"
		var ae *harness.APIError
		if errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403) {
			hint = "check the token: --token or $RESCTL_ADMIN_TOKEN"
		}
		return withCode(exitRunFailed, err, hint)
	}
	useConsole := opts.Script == "" && isTerminal(opts.Stdout) && isTerminal(opts.Stdin)
	if opts.Console != nil {
		useConsole = *opts.Console
	}
	if useConsole {
		err := console.Run(ctx, s, console.Options{Input: opts.Stdin, Output: opts.Stdout, AdminURL: sopts.Admin.BaseURL, Attached: !sopts.Owned})
		return closeSession(s, opts.Stderr, err)
	}

	in := opts.Stdin
	if opts.Script != "" {
		f, err := os.Open(opts.Script)
		if errors.Is(err, fs.ErrNotExist) {
			_, _ = s.Close(context.Background(), false)
			return withCode(exitUsage, fmt.Errorf("--script %s: no such file", opts.Script), "")
		}
		if err != nil {
			_, _ = s.Close(context.Background(), false)
			return withCode(exitUsage, err, "")
		}
		defer f.Close()
		in = f
	}
	fmt.Fprintf(opts.Stdout, "session on %s: proxies %s; load goes through %s\n", sopts.Admin.BaseURL, strings.Join(proxyNames(s), ", "), s.Front())
	res, runErr := session.RunScript(ctx, s, in, opts.Stdout, time.Second)
	if err := closeSession(s, opts.Stdout, nil); err != nil {
		return err
	}
	switch {
	case runErr != nil && ctx.Err() != nil:
		return withCode(exitRunFailed, fmt.Errorf("session interrupted: %w", runErr), "")
	case runErr != nil:
		return withCode(exitUsage, runErr, "")
	case res.Refused > 0:
		return withCode(exitUsage, fmt.Errorf("%d of %d commands refused", res.Refused, res.Commands), "")
	}
	return nil
}

// isTerminal says whether a standard stream is a terminal the console can
// draw on or read keys from.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// closeSession clears what the session leaves behind and says so.
func closeSession(s *session.Session, w io.Writer, err error) error {
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keep := errors.Is(err, console.ErrKeepFaults)
	if keep {
		err = nil
	}
	n, cerr := s.Close(cctx, keep)
	switch {
	case cerr != nil:
		fmt.Fprintf(w, "session ended; clearing faults failed: %v (they end at their TTL)\n", cerr)
	case keep:
		fmt.Fprintln(w, "session ended; its faults stay on until their TTL ends")
	default:
		fmt.Fprintf(w, "session ended; %d fault(s) cleared\n", n)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return withCode(exitRunFailed, err, "")
	}
	return nil
}

func proxyNames(s *session.Session) []string {
	var out []string
	for _, p := range s.Proxies() {
		out = append(out, p.Name+" ("+p.Protocol+", "+p.Listen+")")
	}
	return out
}

// chaosProxies are the proxies a session starts itself: one in front of
// --upstream or the demo target, or those of --config.
func chaosProxies(ctx context.Context, opts *chaosOptions, sopts *session.Options, hostProcs *harness.Processes) ([]harness.ProxyConfig, func(), error) {
	switch {
	case opts.Scenario != "":
		return scenarioProxies(ctx, opts, sopts, hostProcs)
	case opts.Config != "":
		ps, err := harness.ReadProxyConfig(opts.Config)
		var ce *harness.ConfigError
		switch {
		case errors.As(err, &ce):
			return nil, nil, withCode(exitUsage, err, fmt.Sprintf("%d problem(s) in %s", len(ce.Problems), opts.Config))
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, withCode(exitUsage, fmt.Errorf("proxy config %s: no such file", opts.Config), "")
		case err != nil:
			return nil, nil, withCode(exitUsage, fmt.Errorf("read proxy config: %w", err), "")
		}
		sopts.ProxyYAML = guardYAML(opts.Config, false)
		return ps, func() {}, nil
	case opts.Demo:
		url, desc, procs, stop, err := runner.StartDemo(ctx, runner.Options{DemoCommand: selfCommand("demo-target"), Supervisor: selfCommand(superviseArg)}, opts.Seed)
		if err != nil {
			return nil, nil, withCode(exitRunFailed, err, "")
		}
		fmt.Fprintf(opts.Stderr, "resctl: started the %s\n", desc)
		sopts.Target = "builtin:demo"
		*hostProcs = procs
		if sopts.Agent == nil {
			sopts.Agent = &agent.Client{BaseURL: url + agent.MountPath}
		}
		return []harness.ProxyConfig{{Name: harness.DefaultProxyName, Listen: "127.0.0.1:0", Upstream: url, Protocol: harness.ProtocolHTTP}}, stop, nil
	default:
		if err := harness.CheckUpstream(opts.Protocol, opts.Upstream); err != nil {
			return nil, nil, withCode(exitUsage, fmt.Errorf("--upstream: %w", err), "")
		}
		sopts.Target = opts.Upstream
		return []harness.ProxyConfig{{Name: harness.DefaultProxyName, Listen: "127.0.0.1:0", Upstream: opts.Upstream, Protocol: opts.Protocol}}, func() {}, nil
	}
}

// scenarioProxies are a scenario's proxies with their guard chains and
// routes, in front of its target (the built-in demo target is started) or
// its dependencies. Its phases, load and SLAs are not used: the session
// is driven by hand. A target.command or services are not started.
func scenarioProxies(ctx context.Context, opts *chaosOptions, sopts *session.Options, hostProcs *harness.Processes) ([]harness.ProxyConfig, func(), error) {
	s, err := loadScenario(ctx, opts.Scenario, scenario.Limits{})
	if err != nil {
		return nil, nil, err
	}
	if len(s.Target.Command) > 0 || len(s.Services) > 0 {
		fmt.Fprintf(opts.Stderr, "resctl: %s starts processes (target.command, services); resctl chaos does not: start them yourself\n", opts.Scenario)
	}
	stop := func() {}
	target := s.Target.URL
	sopts.Target = target
	if s.Target.Builtin == "demo" {
		url, desc, procs, stopDemo, err := runner.StartDemo(ctx, runner.Options{DemoCommand: selfCommand("demo-target"), Supervisor: selfCommand(superviseArg)}, s.Seed)
		if err != nil {
			return nil, nil, withCode(exitRunFailed, err, "")
		}
		fmt.Fprintf(opts.Stderr, "resctl: started the %s\n", desc)
		*hostProcs = procs
		target, stop, sopts.Target = url, stopDemo, "builtin:demo"
		if sopts.Agent == nil {
			sopts.Agent = &agent.Client{BaseURL: url + agent.MountPath}
		}
	} else if s.Target.Agent != "" && sopts.Agent == nil {
		sopts.Agent = &agent.Client{BaseURL: s.Target.Agent}
	}
	if s.Load.GRPC != nil && sopts.GRPCCall == "" {
		sopts.GRPCCall = s.Load.GRPC.Call
	}
	if opts.Seed == 0 {
		sopts.Seed = s.Seed
	}
	sopts.ProxyYAML = guardYAML(opts.Scenario, true)
	var ps []harness.ProxyConfig
	for _, np := range s.AllProxies() {
		up := np.Proxy.Upstream
		if up == "" && len(np.Proxy.Upstreams) == 0 {
			up = target
		}
		protocol := np.Proxy.Protocol
		if protocol == "" {
			protocol = harness.ProtocolHTTP
		}
		listen := np.Proxy.Listen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		ps = append(ps, harness.ProxyConfig{
			Name: np.Name, Listen: listen, Upstream: up, Upstreams: np.Proxy.Upstreams, Protocol: protocol,
			Guard: np.Proxy.Guard, Routes: np.Proxy.Routes,
		})
	}
	if len(ps) == 0 {
		stop()
		return nil, nil, withCode(exitUsage, fmt.Errorf("%s has no proxy: resctl chaos drives faults through proxies", opts.Scenario), "add a proxy: section, or use --upstream")
	}
	return ps, stop, nil
}

// guardYAML is, by proxy name, the guard, routes and balance keys of the
// proxies a file defines — a scenario's proxy and proxies, or a --config
// list — as written there, for the scenario a session saves. The file has
// been read and validated already; one that cannot be read again gives
// nothing.
func guardYAML(path string, isScenario bool) map[string]string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	out := map[string]string{}
	keep := func(name string, proxy *yaml.Node) {
		if proxy.Kind != yaml.MappingNode {
			return
		}
		sub := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i+1 < len(proxy.Content); i += 2 {
			switch proxy.Content[i].Value {
			case "guard", "routes", "balance":
				sub.Content = append(sub.Content, proxy.Content[i], proxy.Content[i+1])
			}
		}
		if len(sub.Content) > 0 {
			if b, err := yaml.Marshal(sub); err == nil {
				out[name] = string(b)
			}
		}
	}
	if !isScenario {
		for _, p := range root.Content {
			for i := 0; i+1 < len(p.Content); i += 2 {
				if p.Content[i].Value == "name" {
					keep(p.Content[i+1].Value, p)
				}
			}
		}
		return out
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "proxy":
			keep(scenario.MainProxy, root.Content[i+1])
		case "proxies":
			ps := root.Content[i+1]
			for j := 0; j+1 < len(ps.Content); j += 2 {
				keep(ps.Content[j].Value, ps.Content[j+1])
			}
		}
	}
	return out
}

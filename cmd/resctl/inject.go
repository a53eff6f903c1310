package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/inject/netem"
	"github.com/resctl/resctl/inject/process"
	"github.com/resctl/resctl/report"
	"github.com/resctl/resctl/service"
)

// DefaultInjectFor is how long a one-shot fault lasts when --for is not
// given: long enough to watch, short enough to end on its own.
const DefaultInjectFor = 5 * time.Minute

type injectOptions struct {
	Kind    string
	Proxy   string
	Process string // a process the run or session started, for process kinds
	Agent   string // a service's runtime-fault agent, for runtime kinds
	Admin   string
	Token   string
	For     time.Duration
	ID      string
	Params  []string // key=value, YAML values
	Stdout  io.Writer
	Stderr  io.Writer
}

// paramFlags are the fault parameters with flags of their own; anything
// else goes through --param key=value.
var paramFlags = []struct{ name, usage string }{
	{"delay", "latency, slow_close: delay, e.g. 200ms"},
	{"jitter", "latency: ± jitter, e.g. 50ms"},
	{"distribution", "latency: uniform, normal or pareto"},
	{"percent", "share of requests or connections, 0-100"},
	{"status", "abort: HTTP status"},
	{"code", "gRPC abort, stream_error: status code, e.g. UNAVAILABLE"},
	{"rate", "bandwidth: bytes per second, e.g. 64KiB; corrupt: share of bytes"},
	{"bytes", "truncate, limit_data: bytes, e.g. 1KiB"},
	{"after", "reset: body bytes before the reset"},
	{"path", "path prefix to match"},
	{"method", "HTTP method to match"},
	{"direction", "tcp faults: upstream, downstream or both"},
	{"timeout", "blackhole, reset_peer: after how long, e.g. 1s"},
	{"signal", "kill, restart: the signal, e.g. SIGTERM"},
}

func adminClient(admin, token string) *harness.AdminClient {
	if admin == "" {
		admin = os.Getenv("RESCTL_ADMIN")
	}
	if admin == "" {
		admin = harness.DefaultAdminURL
	}
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	if token == "" {
		token = os.Getenv("RESCTL_ADMIN_TOKEN")
	}
	return &harness.AdminClient{BaseURL: admin, Token: token}
}

func newInjectCmd(runF func(context.Context, *injectOptions) error) *cobra.Command {
	opts := &injectOptions{}
	set := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "inject KIND --proxy NAME [flags]",
		Short: "Switch one fault on in a running proxy, for a while",
		Long: `Switch a fault on in a running resctl proxy through its admin API (--admin,
default $RESCTL_ADMIN or ` + harness.DefaultAdminURL + `). The fault ends on its own after --for.

HTTP kinds:    ` + strings.Join(inject.KindsFor(inject.LayerHTTP), ", ") + `
gRPC kinds:    ` + strings.Join(inject.KindsFor(inject.LayerGRPC), ", ") + `
TCP kinds:     ` + strings.Join(inject.KindsFor(inject.LayerTCP), ", ") + `
Runtime kinds: ` + strings.Join(agent.Kinds(), ", ") + ` (with --agent, into a Go service)
Process kinds: ` + strings.Join(process.Kinds(), ", ") + ` (with --process, on a process the resctl run or
               chaos session behind --admin started: --for is a pause's duration)
Parameters are the scenario's (docs/faults.md): common ones have flags, any
other goes as --param key=value, with YAML values (--param 'headers={X-A: b}').`,
		Example: `  resctl inject latency --proxy default --delay 200ms --jitter 50ms --percent 30 --for 30s
  resctl inject abort --proxy web --status 503 --path /api --for 1m
  resctl inject blackhole --proxy db --for 10s
  resctl inject goroutines --agent http://127.0.0.1:8080/debug/resctl --param count=10000 --for 30s
  resctl inject kill --process target --param restart=true
  resctl inject pause --process redis --for 3s
  resctl inject list
  resctl inject clear --all`,
		Args: exactArgs(1, "a fault kind (or list, clear)"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Kind = args[0]
			opts.Stdout, opts.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			for _, pf := range paramFlags {
				if c.Flags().Changed(pf.name) {
					opts.Params = append(opts.Params, pf.name+"="+*set[pf.name])
				}
			}
			if opts.Process != "" || slices.Contains(process.Kinds(), opts.Kind) {
				return checkProcessInject(c, opts, runF)
			}
			runtimeKind := slices.Contains(agent.Kinds(), opts.Kind)
			switch {
			case runtimeKind && opts.Agent == "":
				return withCode(exitUsage, fmt.Errorf("%s is a runtime fault: it goes to a service's agent, --agent URL", opts.Kind),
					"e.g. --agent http://127.0.0.1:8080"+agent.MountPath)
			case !runtimeKind && opts.Agent != "":
				return withCode(exitUsage, fmt.Errorf("--agent takes runtime faults (%s), not %s", strings.Join(agent.Kinds(), ", "), opts.Kind), "")
			case !runtimeKind && opts.Proxy == "":
				return withCode(exitUsage, errors.New("resctl inject needs --proxy NAME"), "list proxies with 'resctl inject list'")
			}
			if err := checkFor(opts.For); err != nil {
				return err
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runInject(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Proxy, "proxy", "", "the proxy's name")
	f.StringVar(&opts.Agent, "agent", "", "for runtime faults: the service's agent URL, e.g. http://127.0.0.1:8080"+agent.MountPath)
	f.StringVar(&opts.Process, "process", "", "for process faults: the process's name, e.g. target or a service's")
	f.DurationVar(&opts.For, "for", DefaultInjectFor, "how long the fault lasts (its TTL), at most "+harness.MaxFaultTTL.String())
	f.StringVar(&opts.ID, "id", "", "the fault's id (default: its kind)")
	f.StringArrayVar(&opts.Params, "param", nil, "a parameter as key=value (repeatable)")
	for _, pf := range paramFlags {
		set[pf.name] = f.String(pf.name, "", pf.usage)
	}
	cmd.PersistentFlags().StringVar(&opts.Admin, "admin", "", "admin API URL (default $RESCTL_ADMIN or "+harness.DefaultAdminURL+")")
	cmd.PersistentFlags().StringVar(&opts.Token, "token", "", "admin API bearer token (default $RESCTL_ADMIN_TOKEN)")
	cmd.AddCommand(newInjectListCmd(opts, nil), newInjectClearCmd(opts, nil))
	return cmd
}

// checkFor refuses a --for the admin API would refuse too: none, or one
// over harness.MaxFaultTTL, which a typo such as 5000h would otherwise
// leave on for months.
func checkFor(d time.Duration) error {
	switch {
	case d <= 0:
		return withCode(exitUsage, fmt.Errorf("--for %v: must be above zero, every fault ends on its own", d), "")
	case d > harness.MaxFaultTTL:
		return withCode(exitUsage, fmt.Errorf("--for %v: over the maximum of %v, every fault ends on its own", d, harness.MaxFaultTTL),
			"to keep a fault on longer, inject it again before it ends")
	}
	return nil
}

// paramsJSON turns key=value pairs (YAML values) into the JSON params of a
// fault request.
func paramsJSON(pairs []string) (json.RawMessage, error) {
	var doc strings.Builder
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: write key=value", p)
		}
		fmt.Fprintf(&doc, "%s: %s\n", k, v)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc.String()), &m); err != nil {
		return nil, fmt.Errorf("parameters: %v", err)
	}
	b, err := json.Marshal(m)
	return b, err
}

func runInject(ctx context.Context, opts *injectOptions) error {
	params, err := paramsJSON(opts.Params)
	if err != nil {
		return withCode(exitUsage, err, "")
	}
	if opts.Agent != "" {
		return runAgentInject(ctx, opts, params)
	}
	c := adminClient(opts.Admin, opts.Token)
	f, err := c.AddFault(ctx, opts.Proxy, harness.FaultRequest{ID: opts.ID, Kind: opts.Kind, TTL: opts.For.String(), Params: params})
	if err != nil {
		return adminErr(opts.Stderr, c, err)
	}
	verb := "added"
	if f.Replaced {
		verb = "replaced"
	}
	fmt.Fprintf(opts.Stdout, "%s fault %s (%s) on proxy %s for %s: %s\n", verb, f.ID, f.Kind, opts.Proxy, f.TTL, formatParams(f.Params))
	return nil
}

// checkProcessInject checks a process fault's flags and runs it.
func checkProcessInject(c *cobra.Command, opts *injectOptions, runF func(context.Context, *injectOptions) error) error {
	switch {
	case !slices.Contains(process.Kinds(), opts.Kind):
		return withCode(exitUsage, fmt.Errorf("--process takes process faults (%s), not %s", strings.Join(process.Kinds(), ", "), opts.Kind), "")
	case opts.Process == "":
		return withCode(exitUsage, fmt.Errorf("%s is a process fault: name the process with --process NAME", opts.Kind), "list the processes with 'resctl inject list'")
	case opts.Proxy != "" || opts.Agent != "":
		return withCode(exitUsage, errors.New("--process goes without --proxy and --agent"), "")
	}
	if c.Flags().Changed("for") {
		if opts.Kind != "pause" {
			return withCode(exitUsage, fmt.Errorf("--for is how long a pause lasts; a %s has no duration", opts.Kind), "")
		}
		if err := checkFor(opts.For); err != nil {
			return err
		}
		opts.Params = append(opts.Params, "duration="+opts.For.String())
	} else if opts.Kind == "pause" {
		return withCode(exitUsage, errors.New("a pause needs --for: how long the process stays frozen"), "e.g. --for 3s")
	}
	if runF != nil {
		return runF(c.Context(), opts)
	}
	return runProcessInject(c.Context(), opts)
}

// runProcessInject sends a kill, pause or restart to a process of the
// run or session behind the admin API.
func runProcessInject(ctx context.Context, opts *injectOptions) error {
	params, err := paramsJSON(opts.Params)
	if err != nil {
		return withCode(exitUsage, err, "")
	}
	c := adminClient(opts.Admin, opts.Token)
	info, err := c.ActOnProcess(ctx, opts.Process, opts.Kind, params)
	if err != nil {
		return adminErr(opts.Stderr, c, err)
	}
	if opts.Kind == "restart" {
		fmt.Fprintf(opts.Stdout, "restarted process %s (now %s, pid %d)\n", info.Name, info.State, info.Pid)
		return nil
	}
	fmt.Fprintf(opts.Stdout, "%s of process %s under way (now %s)\n", opts.Kind, info.Name, info.State)
	return nil
}

// runAgentInject starts a runtime fault in a service's agent.
func runAgentInject(ctx context.Context, opts *injectOptions, params json.RawMessage) error {
	c := &agent.Client{BaseURL: opts.Agent}
	info, err := c.Start(ctx, opts.ID, opts.Kind, opts.For, params)
	var re *agent.RequestError
	switch {
	case errors.As(err, &re):
		for _, p := range re.Problems {
			fmt.Fprintf(opts.Stderr, "  %s: %s\n", p.Field, p.Msg)
		}
		if re.Status >= 500 {
			return withCode(exitRunFailed, errors.New(re.Msg), "")
		}
		return withCode(exitUsage, errors.New(re.Msg), "")
	case err != nil:
		return withCode(exitRunFailed, fmt.Errorf("agent %s: %w", opts.Agent, err), "does the service mount the agent? the demo target serves it at "+agent.MountPath)
	}
	fmt.Fprintf(opts.Stdout, "runtime fault %s (%s) in %s until %s: %s\n", info.ID, info.Kind, opts.Agent, info.Expires.Format(time.RFC3339), info.Params)
	return nil
}

// adminErr maps an admin API failure to an exit code: what the server
// refused is a usage error (2), printed problem by problem; an unreachable
// server is a failed run (1).
func adminErr(stderr io.Writer, c *harness.AdminClient, err error) error {
	var ae *harness.APIError
	if errors.As(err, &ae) {
		for _, p := range ae.Problems {
			if p.Field == "" {
				fmt.Fprintf(stderr, "  %s\n", p.Msg)
				continue
			}
			fmt.Fprintf(stderr, "  %s: %s\n", p.Field, p.Msg)
		}
		code := exitUsage
		if ae.Status >= 500 {
			code = exitRunFailed
		}
		return withCode(code, errors.New(ae.Msg), "")
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return withCode(exitRunFailed, fmt.Errorf("admin API %s: %w", c.BaseURL, err), "is 'resctl proxy' running? point --admin or RESCTL_ADMIN at its admin address")
	}
	return withCode(exitRunFailed, err, "")
}

func formatParams(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v, _ := json.Marshal(p[k])
		parts[i] = k + "=" + strings.Trim(string(v), `"`)
	}
	return strings.Join(parts, " ")
}

// DefaultWatchInterval is how often `resctl inject list --watch` redraws.
const DefaultWatchInterval = time.Second

func newInjectListCmd(parent *injectOptions, runF func(context.Context, *injectOptions) error) *cobra.Command {
	var watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List proxies and their active faults, with what each did",
		Long: `List proxies and their active faults, with what each matched and injected
and when it expires. With --watch the list is drawn again every --interval
until Ctrl-C: in place on a terminal, as one block per tick otherwise. An
admin API that does not answer is a line in the list, and the next tick
tries again.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			parent.Stdout, parent.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			if every <= 0 {
				return withCode(exitUsage, fmt.Errorf("--interval %v: must be above zero", every), "")
			}
			if runF != nil {
				return runF(c.Context(), parent)
			}
			ac := adminClient(parent.Admin, parent.Token)
			if watch {
				watchFaults(c.Context(), parent.Stdout, ac, every, report.IsTerminal(parent.Stdout), time.Now)
				return nil
			}
			ps, err := ac.Proxies(c.Context())
			if err != nil {
				return adminErr(parent.Stderr, ac, err)
			}
			if err := writeFaults(parent.Stdout, ps, time.Now()); err != nil {
				return err
			}
			procs, err := ac.Processes(c.Context())
			if err != nil || len(procs) == 0 {
				return nil // an older resctl, or none started
			}
			fmt.Fprintln(parent.Stdout)
			return writeProcesses(parent.Stdout, procs)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "draw the list again every --interval until Ctrl-C")
	cmd.Flags().DurationVar(&every, "interval", DefaultWatchInterval, "how often --watch draws the list")
	return cmd
}

// writeProcesses writes the processes the run or session started.
func writeProcesses(w io.Writer, procs []harness.ProcessInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tSTATE\tPID\tRESTARTS")
	for _, p := range procs {
		pid := "-"
		if p.Pid > 0 {
			pid = fmt.Sprint(p.Pid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", p.Name, p.State, pid, p.Restarts)
	}
	return tw.Flush()
}

// writeFaults writes the proxies and their faults as a table; now times
// what is left of each fault.
func writeFaults(w io.Writer, ps []harness.ProxyInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tPROTOCOL\tLISTEN\tFAULT\tKIND\tMATCHED\tINJECTED\tRATE\tEXPIRES\tPARAMS")
	for _, p := range ps {
		if len(p.Faults) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t\t\t\t\t\t\n", p.Name, p.Protocol, p.Listen)
		}
		for _, f := range p.Faults {
			exp := "-"
			if !f.Stats.Expires.IsZero() {
				exp = "in " + f.Stats.Expires.Sub(now).Round(time.Second).String()
			}
			rate := fmt.Sprintf("%.1f%% of %.1f%%", 100*f.Stats.EffectiveRate, 100*f.Stats.ConfiguredRate)
			if !f.Fired {
				rate = "not fired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", p.Name, p.Protocol, p.Listen, f.ID, f.Kind,
				f.Stats.Matched, f.Stats.Injected, rate, exp, formatParams(f.Params))
		}
	}
	return tw.Flush()
}

// watchFaults draws the list every interval until ctx ends: on a terminal
// it clears the screen and draws in place, otherwise it writes one block
// per tick under a line with the time. A failed read is a line in its
// place; the next tick tries again.
func watchFaults(ctx context.Context, w io.Writer, ac *harness.AdminClient, every time.Duration, tty bool, now func() time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		ps, err := ac.Proxies(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var b strings.Builder
		at := now()
		if tty {
			b.WriteString("\x1b[H\x1b[2J") // home, clear the screen
		}
		fmt.Fprintf(&b, "%s  admin API %s, every %s; Ctrl-C stops\n", at.Format(time.TimeOnly), ac.BaseURL, every)
		if err != nil {
			fmt.Fprintf(&b, "cannot read the admin API: %v; trying again in %s\n", err, every)
		} else {
			_ = writeFaults(&b, ps, at)
		}
		if !tty {
			b.WriteString("\n")
		}
		_, _ = io.WriteString(w, b.String())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func newInjectClearCmd(parent *injectOptions, runF func(context.Context, *injectOptions) error) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "clear (--proxy NAME [--id ID] | --all)",
		Short: "Switch faults off: one, one proxy's, or every proxy's",
		Long: `Switch faults off: one (--proxy with --id, the fault's id as inject list shows
it), one proxy's (--proxy), or every proxy's (--all). --all also removes network
namespaces that a killed resctl run left behind, and stops the processes it
started (a target.command, services) if they outlived it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			parent.Stdout, parent.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			if (parent.Proxy == "") == !all {
				return withCode(exitUsage, errors.New("say which faults: --proxy NAME or --all"), "")
			}
			if parent.ID != "" && all {
				return withCode(exitUsage, errors.New("--id names one fault of one proxy: give it with --proxy, not --all"), "")
			}
			if runF != nil {
				return runF(c.Context(), parent)
			}
			ac := adminClient(parent.Admin, parent.Token)
			if all {
				// Namespaces a killed run left behind go too.
				if stale, err := netem.CleanupStale(c.Context()); len(stale) > 0 || (err != nil && !errors.Is(err, netem.ErrUnsupported)) {
					fmt.Fprintf(parent.Stdout, "removed %d stale network namespace(s): %s\n", len(stale), strings.Join(stale, ", "))
					if err != nil {
						fmt.Fprintf(parent.Stderr, "resctl: %v\n", err)
					}
				}
				// So do processes a killed run started and recorded.
				if stale, err := service.CleanupStale(service.DefaultStateDir()); len(stale) > 0 || err != nil {
					fmt.Fprintf(parent.Stdout, "stopped %d stale process(es): %s\n", len(stale), strings.Join(stale, ", "))
					if err != nil {
						fmt.Fprintf(parent.Stderr, "resctl: %v\n", err)
					}
				}
				n, err := ac.Reset(c.Context())
				if err != nil {
					return adminErr(parent.Stderr, ac, err)
				}
				fmt.Fprintf(parent.Stdout, "cleared %d fault(s) on every proxy\n", n)
				return nil
			}
			if parent.ID != "" {
				if err := ac.RemoveFault(c.Context(), parent.Proxy, parent.ID); err != nil {
					return adminErr(parent.Stderr, ac, err)
				}
				fmt.Fprintf(parent.Stdout, "cleared fault %s on proxy %s\n", parent.ID, parent.Proxy)
				return nil
			}
			fs, err := ac.ClearProxy(c.Context(), parent.Proxy)
			if err != nil {
				return adminErr(parent.Stderr, ac, err)
			}
			fmt.Fprintf(parent.Stdout, "cleared %d fault(s) on proxy %s\n", len(fs), parent.Proxy)
			return nil
		},
	}
	cmd.Flags().StringVar(&parent.Proxy, "proxy", "", "the proxy's name")
	cmd.Flags().StringVar(&parent.ID, "id", "", "one fault's `ID` (inject list shows them), with --proxy")
	cmd.Flags().BoolVar(&all, "all", false, "every proxy's faults")
	return cmd
}

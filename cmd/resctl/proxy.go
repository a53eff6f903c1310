package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/harness"
	"github.com/resctl/resctl/internal/version"
)

type proxyOptions struct {
	Upstream string
	Listen   string
	Admin    string
	Protocol string
	Name     string
	Token    string
	// AllowedHosts are further names the admin API answers to.
	AllowedHosts []string
	// Limits bound every proxy's client connections where --config
	// leaves them out.
	Limits harness.ConnLimits
	Config string
	Seed   uint64
	// LogFormat is text or json: how events go to Stderr.
	LogFormat string
	Stdout    io.Writer
	Stderr    io.Writer
}

func newProxyCmd(runF func(context.Context, *proxyOptions) error) *cobra.Command {
	opts := &proxyOptions{}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the harness proxy standalone, with the admin API",
		Long: `Run harness proxies in front of services until Ctrl-C, with the admin API on
--admin: resctl's REST API under /api/v1 and Toxiproxy's HTTP API (/proxies,
/populate, /reset, /version), so Toxiproxy clients drive it unchanged.

One proxy from flags (--upstream), or several from --config, a YAML list of
{name, listen, upstream or upstreams, protocol, balance, guard, routes}.
Protocols: http, h2c and grpc (upstream is a URL), tcp (upstream is
host:port, for databases, caches, brokers). balance, guard and routes are as
in a scenario's proxy section; when the --config file changes, guard and
routes are re-read and swapped in without dropping requests in flight, and
every policy whose name, kind and configuration are unchanged keeps its
state (an open breaker stays open).

Every fault added, replaced, changed, removed, expired or cleared, every
guard transition, upstream ejection and mark is logged on stderr, one line
each (--log-format text or json), and kept in the admin API's event log
(GET /api/v1/events).

The admin listener's /metrics serves every proxy's metrics (requests, guard
policies, upstreams, faults), each series labelled with its proxy's name.

The admin API listens on loopback unless told otherwise; beyond loopback it
needs a bearer token (--token or RESCTL_ADMIN_TOKEN). It refuses web pages:
requests with browser headers (Origin, Sec-Fetch-*, a Mozilla/ User-Agent),
changes that are not Content-Type: application/json, and a Host header that
names neither loopback, its own address, nor an --admin-allowed-host (see
docs/security.md). Every fault is cleared when the proxy stops.

Every proxy bounds its clients' connections (--max-conns, --idle-timeout,
--read-header-timeout, --max-header-bytes; a --config proxy's limits key
overrides them): a connection flood is reset at the cap and counted in
resctl_proxy_connections_over_limit_total, and the admin API, with a
reserve of its own, keeps answering.`,
		Example: `  resctl proxy --upstream http://127.0.0.1:8080 --listen 127.0.0.1:9000
  resctl proxy --protocol tcp --upstream 127.0.0.1:5432 --listen 127.0.0.1:15432 --name db
  resctl proxy --config proxies.yaml`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			opts.Stdout, opts.Stderr = c.OutOrStdout(), c.ErrOrStderr()
			if opts.LogFormat != "text" && opts.LogFormat != "json" {
				return withCode(exitUsage, fmt.Errorf("--log-format %q: use text or json", opts.LogFormat), "")
			}
			if opts.Token == "" {
				opts.Token = os.Getenv("RESCTL_ADMIN_TOKEN")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return runProxy(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Upstream, "upstream", "", "the service: a URL for http/h2c, host:port for tcp")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:0", "the proxy's address")
	f.StringVar(&opts.Admin, "admin", harness.DefaultAdminListen, "the admin API's address")
	f.StringVar(&opts.Protocol, "protocol", harness.ProtocolHTTP, "http, h2c, grpc or tcp")
	f.StringVar(&opts.Name, "name", harness.DefaultProxyName, "the proxy's name in the admin API")
	f.StringVar(&opts.Token, "token", "", "bearer token the admin API requires (default $RESCTL_ADMIN_TOKEN)")
	f.StringVar(&opts.Config, "config", "", "YAML file listing several proxies")
	f.IntVar(&opts.Limits.MaxConns, "max-conns", 0, "cap on each proxy's open client connections; one more is reset at once (default: the file-descriptor limit shared out, see docs/security.md)")
	f.DurationVar(&opts.Limits.IdleTimeout, "idle-timeout", harness.DefaultClientIdleTimeout, "close a client connection idle this long (http, h2c, grpc)")
	f.DurationVar(&opts.Limits.ReadHeaderTimeout, "read-header-timeout", harness.DefaultReadHeaderTimeout, "close a connection whose request headers take longer (http, h2c, grpc)")
	f.IntVar(&opts.Limits.MaxHeaderBytes, "max-header-bytes", harness.DefaultMaxHeaderBytes, "largest request headers taken (http, h2c, grpc)")
	f.StringSliceVar(&opts.AllowedHosts, "admin-allowed-host", nil, "a `NAME` the admin API answers to besides loopback and its own address (repeatable; others are refused as DNS rebinding)")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed for the faults' random choices")
	f.StringVar(&opts.LogFormat, "log-format", "text", "how events are logged on stderr: text or json")
	return cmd
}

// eventLogger logs the admin API's events on w, one line each, timed when
// they happened.
func eventLogger(w io.Writer, format string) (*slog.Logger, func(harness.Event)) {
	hopts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if format == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	return slog.New(h), func(e harness.Event) {
		var r slog.Record
		switch e.Source {
		case harness.SourceFault:
			r = slog.NewRecord(e.At, slog.LevelInfo, "fault "+e.Kind, 0)
			r.AddAttrs(slog.String("proxy", e.Proxy), slog.String("id", e.ID), slog.String("fault", e.Detail))
		case harness.SourceGuard:
			r = slog.NewRecord(e.At, slog.LevelInfo, "guard "+e.Kind, 0)
			r.AddAttrs(slog.String("proxy", e.Proxy), slog.String("policy", e.ID))
			if e.PolicyKind != "" {
				r.AddAttrs(slog.String("kind", e.PolicyKind))
			}
			r.AddAttrs(slog.String("from", e.From), slog.String("to", e.To))
		case harness.SourceProxy:
			if e.Kind != harness.KindTransition {
				r = slog.NewRecord(e.At, slog.LevelInfo, "proxy "+e.Kind, 0)
				r.AddAttrs(slog.String("proxy", e.Proxy))
				break
			}
			r = slog.NewRecord(e.At, slog.LevelInfo, "upstream "+e.Kind, 0)
			r.AddAttrs(slog.String("proxy", e.Proxy), slog.String("upstream", e.ID), slog.String("from", e.From), slog.String("to", e.To))
		default:
			r = slog.NewRecord(e.At, slog.LevelInfo, e.Kind, 0)
			if e.Proxy != "" {
				r.AddAttrs(slog.String("proxy", e.Proxy))
			}
			r.AddAttrs(slog.String("text", e.Detail))
		}
		r.AddAttrs(slog.Uint64("seq", e.Seq))
		_ = h.Handle(context.Background(), r)
	}
}

func runProxy(ctx context.Context, opts *proxyOptions) error {
	var proxies []harness.ProxyConfig
	switch {
	case opts.Config != "" && opts.Upstream != "":
		return withCode(exitUsage, errors.New("give --config or --upstream, not both"), "")
	case opts.Config != "":
		ps, err := harness.ReadProxyConfig(opts.Config)
		var ce *harness.ConfigError
		switch {
		case errors.As(err, &ce):
			return withCode(exitUsage, err, fmt.Sprintf("%d problem(s) in %s", len(ce.Problems), opts.Config))
		case errors.Is(err, fs.ErrNotExist):
			return withCode(exitUsage, fmt.Errorf("proxy config %s: no such file", opts.Config), "")
		case err != nil:
			return withCode(exitUsage, fmt.Errorf("read proxy config: %w", err), "")
		}
		proxies = ps
	case opts.Upstream != "":
		if err := harness.CheckUpstream(opts.Protocol, opts.Upstream); err != nil {
			return withCode(exitUsage, fmt.Errorf("--upstream: %w", err), "")
		}
		proxies = []harness.ProxyConfig{{Name: opts.Name, Listen: opts.Listen, Upstream: opts.Upstream, Protocol: opts.Protocol}}
	default:
		return withCode(exitUsage, errors.New("resctl proxy needs --upstream or --config"), "usage: resctl proxy --upstream URL")
	}
	logger, onEvent := eventLogger(opts.Stderr, opts.LogFormat)
	err := harness.Serve(ctx, harness.ServeOptions{
		Proxies: proxies, AdminListen: opts.Admin, Token: opts.Token, AdminAllowedHosts: opts.AllowedHosts, Limits: opts.Limits, Seed: opts.Seed, Version: version.String(),
		ConfigPath: opts.Config, Logger: logger, OnEvent: onEvent,
		OnReload: func(err error) {
			var restart *harness.RestartNeededError
			switch {
			case errors.As(err, &restart):
				logger.Warn("guard chains reloaded", "config", opts.Config, "restart", strings.Join(restart.Changes, "; "))
			case err != nil:
				logger.Error("reload refused", "config", opts.Config, "problems", err.Error(), "kept", "the running guard chains")
			default:
				logger.Info("guard chains reloaded", "config", opts.Config)
			}
		},
	}, func(s harness.Started) {
		for _, p := range s.Proxies {
			fmt.Fprintf(opts.Stdout, "proxy %s (%s) listening on %s → %s\n", p.Name, p.Protocol, p.Listen, cmp.Or(p.Upstream, strings.Join(p.Upstreams, ", ")))
		}
		fmt.Fprintf(opts.Stdout, "admin API on %s (resctl /api/v1, Toxiproxy-compatible /proxies); Ctrl-C stops\n", s.AdminURL)
	})
	switch {
	case errors.Is(err, harness.ErrAdminToken):
		return withCode(exitUsage, err, "bind --admin to 127.0.0.1, or set a token")
	case err != nil && strings.Contains(err.Error(), "protocol"):
		return withCode(exitUsage, err, "")
	case err != nil:
		return withCode(exitRunFailed, err, "")
	}
	fmt.Fprintln(opts.Stdout, "proxy stopped; every fault cleared")
	return nil
}

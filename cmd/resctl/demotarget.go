package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/inject/agent"
	"github.com/resctl/resctl/internal/demo"
)

type demoTargetOptions struct {
	Listen string
	Seed   int64
	// AllowedHosts are further names the runtime-fault agent answers to.
	AllowedHosts []string
	Stdout       io.Writer
}

func newDemoTargetCmd(runF func(context.Context, *demoTargetOptions) error) *cobra.Command {
	opts := &demoTargetOptions{}
	cmd := &cobra.Command{
		Use:   "demo-target",
		Short: "Serve the built-in demo service",
		Long: `Serve the built-in demo service that scenarios reach with target: {builtin: demo}:
JSON endpoints with realistic latency (/api/orders, /api/orders/{id},
/api/users/{id}, /api/slow), /healthz, and Prometheus metrics at /metrics.
It serves HTTP/1.1 and h2c until interrupted.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			opts.Stdout = c.OutOrStdout()
			if runF != nil {
				return runF(c.Context(), opts)
			}
			err := demo.Serve(c.Context(), opts.Listen, demo.Options{Seed: opts.Seed, AllowedHosts: opts.AllowedHosts}, func(addr string) {
				fmt.Fprintf(opts.Stdout, "demo target listening on http://%s (metrics at /metrics); Ctrl-C stops it\n", addr)
			})
			if err != nil {
				return withCode(exitRunFailed, fmt.Errorf("demo target: %w", err), "")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", demo.DefaultListen, "address to listen on")
	cmd.Flags().Int64Var(&opts.Seed, "seed", 0, "seed for the latency sampler (0: a fixed default)")
	cmd.Flags().StringSliceVar(&opts.AllowedHosts, "allowed-host", nil, "a `NAME` the runtime-fault agent at "+agent.MountPath+" answers to besides loopback and its own address (repeatable)")
	return cmd
}

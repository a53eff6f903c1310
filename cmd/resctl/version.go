package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/resctl/resctl/internal/version"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print resctl's version",
		Args:  exactArgs(0, "no arguments"),
		Run: func(c *cobra.Command, _ []string) {
			v := version.String()
			if version.Commit != "" {
				v += " (" + version.Commit + ")"
			}
			fmt.Fprintf(c.OutOrStdout(), "resctl %s %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

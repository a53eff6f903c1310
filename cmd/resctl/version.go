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
			fmt.Fprintf(c.OutOrStdout(), "resctl %s %s %s/%s\n", version.Full(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

// Command resctl verifies that a Go service survives faults: it runs a
// scenario of load, faults and recovery SLAs through a harness proxy and
// gates CI on the verdict. See the README for a quick start.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run())
}

// run executes the command line and returns the process's exit code; it is
// main without os.Exit, so the CLI tests can run it in-process.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, newRootCmd(), os.Args[1:], os.Stdout, os.Stderr)
}

// Command resctl verifies that a Go service survives faults: it runs a
// scenario of load, faults and recovery SLAs through a harness proxy and
// gates CI on the verdict. See the README for a quick start.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/resctl/resctl/service"
)

// superviseArg, as resctl's first argument, makes it the supervisor of a
// process a run starts (service.Supervise), not a command of the CLI.
const superviseArg = "__supervise"

func main() {
	os.Exit(run())
}

// run executes the command line and returns the process's exit code; it is
// main without os.Exit, so the CLI tests can run it in-process.
func run() int {
	if len(os.Args) > 1 && os.Args[1] == superviseArg {
		return service.Supervise(os.Args[2:], os.Stderr)
	}
	// A closed terminal (SIGHUP) stops a run as Ctrl-C and SIGTERM do:
	// faults off, processes stopped, the report written.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	return execute(ctx, newRootCmd(), os.Args[1:], os.Stdout, os.Stderr)
}

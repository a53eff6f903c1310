package runner

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/resctl/resctl/internal/demo"
)

// The test binary doubles as the demo target a run starts: with
// demoTargetArg as its first argument it serves the built-in demo target as
// `resctl demo-target` does.
const demoTargetArg = "demo-target"

// childMain runs the test binary as the demo target when asked, and says
// whether it did.
func childMain() bool {
	switch {
	case len(os.Args) > 1 && os.Args[1] == demoTargetArg:
		fs := flag.NewFlagSet(demoTargetArg, flag.ExitOnError)
		listen := fs.String("listen", "127.0.0.1:0", "")
		seed := fs.Int64("seed", 0, "")
		_ = fs.Parse(os.Args[2:])
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		err := demo.Serve(ctx, *listen, demo.Options{Seed: *seed}, func(addr string) {
			fmt.Printf("demo target listening on http://%s\n", addr)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return true
	}
	return false
}

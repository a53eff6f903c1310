//go:build !unix

package service

import (
	"fmt"
	"io"
	"os"
	"os/exec"
)

// Supervise runs the command and exits as it does; without process groups
// there is nothing more a supervisor can do here.
func Supervise(args []string, stderr io.Writer) int {
	if len(args) < 3 {
		fmt.Fprintln(stderr, "usage: supervise SIGNAL GRACE COMMAND [ARG...]")
		return 2
	}
	cmd := exec.Command(args[2], args[3:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		fmt.Fprintf(stderr, "supervise: %v\n", err)
		return 127
	}
	return cmd.ProcessState.ExitCode()
}

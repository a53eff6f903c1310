//go:build unix

package guard

import (
	"syscall"
	"time"
)

// processCPUTime is the user and system time of the process, from
// getrusage(2): runtime/metrics' CPU classes only move at GC, too seldom
// to steer load shedding.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

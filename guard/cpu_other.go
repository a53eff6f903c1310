//go:build !unix

package guard

import "time"

// processCPUTime is unknown here: the CPU looks idle to the shed policy,
// which then sheds only with cpu_threshold: 0 (in-flight alone).
func processCPUTime() time.Duration { return 0 }

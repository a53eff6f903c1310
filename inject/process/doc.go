// Package process holds the process faults: kill, pause and restart a
// process resctl started for the run — the target (target.command or the
// built-in demo), an entry of services:, or instances of a service with
// replicas. A spec says what to do and when within its phase; the runner
// carries it out on the process (package service) and rolls it back: a
// paused process is always continued, a killed one started again at its
// phase's end unless the scenario keeps it down.
//
// Only processes resctl started can be the object of these faults: resctl
// knows their command, environment and readiness check, so it can start
// them again, and it never signals a process that is not its own.
//
// process imports nothing of resctl's but quantity.
package process

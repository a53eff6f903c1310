// Package console is the full-screen terminal driver of a chaos session
// (resctl chaos): a bubbletea model that shows the session's proxies —
// requests/s, errors and p50/p99 as sparklines, guard states, active
// faults, the event log — and takes the session's commands on a command
// line with completion and history.
//
// It owns the view and the keys only: every command goes to
// session.Session, the engine the script driver uses too. It must not
// import runner, harness internals or anything that starts processes.
package console

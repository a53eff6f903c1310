// Package session is the engine of an interactive chaos session: the
// proxies behind an admin API (started for the session or attached to),
// the faults a person adds and clears on them, the load sent through
// them, marks, and the timeline of all of it, from which it writes a
// scenario `resctl run` replays and a recovery report with run's renderer.
//
// Drivers give it commands — the console (package console) from a
// terminal, RunScript from lines of text — and poll it for the event log
// and the per-second traffic it shows. It reaches proxies only through
// the admin API, so a session of its own proxies and one attached to a
// running `resctl proxy` or `resctl run` are the same code.
//
// Main types: Session, Command (Parse), Line, FaultSpan. It must not
// import cmd or console.
package session

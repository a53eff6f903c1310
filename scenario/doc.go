// Package scenario owns the scenario file: its model (Scenario and the types
// under it), its defaults, and its validation. Parse reads YAML through the
// node API so that every problem — a syntax error, an unknown key, a value out
// of range, a malformed SLA expression — is reported with the file, line and
// column it comes from, all problems at once, as a *ValidationError.
//
// scenario depends on inject (fault specs), verify (SLA expressions) and
// quantity; it must not depend on the runner, the harness, the load driver or
// the reports, which all consume it.
package scenario

// Package report owns the run report: the Report model that every output
// format renders (report.json is its machine contract, schema
// "resctl.report/v1"), and the renderers themselves — JSON and the terminal
// summary today.
//
// report imports nothing of resctl's but the recording's plain types; the
// runner builds a Report and the CLI chooses where each format goes.
package report

// Package report owns the run report: the Report model that every output
// format renders (report.json is its machine contract, schema
// "resctl.report/v1", described in docs/report.md and
// docs/report.schema.json), and the renderers themselves: JSON, the
// self-contained HTML recovery report (server-rendered SVG charts), JUnit
// XML, a Markdown summary and the terminal summary. Every format leads with
// the same Verdict.
//
// report imports nothing of resctl's but the recording's plain types; the
// runner builds a Report and the CLI chooses where each format goes.
package report

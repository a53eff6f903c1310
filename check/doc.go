// Package check owns response checks: what a scenario's `expect` of a
// request says a response must be (Spec, decoded and checked like a fault's
// parameters) and the verdict on one response (Checks.Verify), with a reason
// that groups well — it names the check that failed, never the value that
// failed it, so a million bad responses make one row of a report.
//
// The load drivers verify every response of a request that has checks; a
// failed check makes the request a failure with that reason. check imports
// nothing of resctl's except the quantity value types and the internal
// strict YAML decoder.
package check

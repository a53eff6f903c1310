// Package version holds resctl's version, stamped at build time with
// -ldflags "-X github.com/resctl/resctl/internal/version.Version=v1.2.3".
package version

import (
	"runtime/debug"
	"strings"
)

// Version is set by the linker for release builds; "dev" otherwise.
var Version = "dev"

// Commit is the VCS revision, set by the linker for release builds.
var Commit = ""

// String returns the version, falling back to the module version that `go
// install` records when the linker did not stamp one.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

// Full returns the version with the commit beside it, once: an untagged
// build's version (`git describe --always`) already is the commit, and
// printing it again in parentheses reads like two different revisions.
func Full() string {
	v := String()
	if Commit == "" || strings.Contains(v, Commit) {
		return v
	}
	return v + " (" + Commit + ")"
}

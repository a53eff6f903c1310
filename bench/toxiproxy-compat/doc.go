// Package compat drives resctl's Toxiproxy-compatible admin API with
// Toxiproxy's official Go client, and compares resctl's tcp proxy with
// Toxiproxy's own in the same run. It is a module of its own so that
// Toxiproxy never enters resctl's go.mod.
package compat

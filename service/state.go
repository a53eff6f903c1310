package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// errNoProcRecords says processes cannot be recorded: there is no /proc
// to tell a process from a later one with the same pid.
var errNoProcRecords = errors.New("process records need Linux's /proc")

// DefaultStateDir is where resctl records the processes it starts while
// they run: per user, under the temporary directory.
func DefaultStateDir() string {
	return filepath.Join(os.TempDir(), "resctl-"+strconv.Itoa(os.Getuid()), "processes")
}

// record is one state file: a process resctl started and the resctl
// process that started it, each named by pid and start time, so a reused
// pid is never mistaken for either.
type record struct {
	Name       string `json:"name"`
	Pid        int    `json:"pid"` // also its process group
	Start      uint64 `json:"start"`
	Owner      int    `json:"owner"`
	OwnerStart uint64 `json:"owner_start"`
}

// writeRecord records a started process in dir; the returned path is
// removed once the process is stopped. Where processes cannot be told
// apart by start time (no /proc), nothing is recorded.
func writeRecord(dir, name string, pid int) (string, error) {
	child, err1 := readProc(pid)
	owner, err2 := readProc(os.Getpid())
	if err := errors.Join(err1, err2); err != nil {
		// Without /proc nothing can be recorded; a child already gone
		// (a command that failed at once) has nothing to record, and
		// waiting for it to be ready says why it ended.
		if errors.Is(err, errNoProcRecords) || errors.Is(err1, os.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	b, err := json.Marshal(record{Name: name, Pid: pid, Start: child.start, Owner: owner.pid, OwnerStart: owner.start})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := checkPrivateChain(dir); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%d-%d.json", owner.pid, pid))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// CleanupStale stops the process groups that resctl runs recorded in dir
// and that outlived the run that started them — a run killed before it
// could stop them, and whose supervisors were killed too — and returns a
// description of each. Processes of runs still going are left alone, and
// so is anything resctl did not record: a recorded pid now used by another
// process (another start time) is not touched.
func CleanupStale(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		err = checkPrivateChain(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("stale processes: %w", err)
	}
	var stopped []string
	var errs []error
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.Pid <= 0 || r.Owner <= 0 {
			errs = append(errs, fmt.Errorf("stale processes: %s: not a process record", path))
			continue
		}
		if running(r.Owner, r.OwnerStart) {
			continue
		}
		if killStale(r) {
			stopped = append(stopped, fmt.Sprintf("%s (pid %d)", r.Name, r.Pid))
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return stopped, errors.Join(errs...)
}

// checkPrivateChain checks dir and its parent (resctl-UID under the
// temporary directory, by default) with checkPrivate.
func checkPrivateChain(dir string) error {
	return errors.Join(checkPrivate(filepath.Dir(dir)), checkPrivate(dir))
}

// running says whether the process pid started at start is alive.
func running(pid int, start uint64) bool {
	p, err := readProc(pid)
	return err == nil && p.start == start && !p.zombie
}

// killStale kills a recorded process group and says whether anything of
// it was left. The group's number stays ours while any member lives (the
// kernel does not reuse a pid still in use as a group id), so only a
// leader of that number that is not the recorded process stops it.
func killStale(r record) bool {
	if p, err := readProc(r.Pid); err == nil && p.start != r.Start {
		return false // the pid now names another process
	}
	procs, err := listProcs()
	if err != nil {
		return false
	}
	found := false
	for _, p := range procs {
		if p.pgrp == r.Pid && !p.zombie {
			found = true
		}
	}
	if found {
		_ = killGroup(r.Pid)
	}
	return found
}

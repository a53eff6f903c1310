package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	platformHelpers["owner"] = ownerHelper
	platformHelpers["serve-parent"] = serveParentHelper
}

// ownerHelper plays resctl: it starts a child (serve-parent, supervised if
// $SUPERVISED is set)
// from a goroutine that locks its thread and ends without unlocking it, as
// netem's namespace dials do. Once that thread is gone and the child still
// answers, it prints "ready SUPERVISOR-PID CHILD-URL" and waits to be
// killed.
func ownerHelper() {
	// The main thread is never ended; keeping it to this goroutine puts
	// the one below on a thread that is.
	runtime.LockOSThread()
	self, _ := os.Executable()
	type started struct {
		p   *Process
		tid int
		err error
	}
	ch := make(chan started, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		spec := Spec{
			Name: "child", Command: []string{self}, Env: map[string]string{"SERVICE_HELPER": "serve-parent"},
			ReadyLine: regexp.MustCompile(`listening on (http://\S+)`),
		}
		if os.Getenv("SUPERVISED") != "" {
			spec.Supervisor = []string{self, "supervise"}
		}
		p, err := Start(context.Background(), spec)
		ch <- started{p, syscall.Gettid(), err}
	}()
	s := <-ch
	if s.err != nil {
		fmt.Fprintln(os.Stderr, s.err)
		os.Exit(3)
	}
	task := fmt.Sprintf("/proc/self/task/%d", s.tid)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(task); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "the locked thread never ended")
			os.Exit(3)
		}
	}
	// A child killed by its parent-death signal could not answer.
	resp, err := http.Get(s.p.Match())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child died with the thread that started it:", err)
		os.Exit(4)
	}
	resp.Body.Close()
	fmt.Printf("ready %d %s\n", s.p.Pid(), s.p.Match())
	time.Sleep(time.Hour)
}

// serveParentHelper is a service that starts a grandchild (writing its pid
// to $PIDFILE) before it serves.
func serveParentHelper() {
	self, _ := os.Executable()
	child, err := os.StartProcess(self, []string{self}, &os.ProcAttr{
		Env:   helperEnv("sleep"),
		Files: []*os.File{nil, nil, os.Stderr},
	})
	if err != nil || os.WriteFile(os.Getenv("PIDFILE"), []byte(strconv.Itoa(child.Pid)), 0o600) != nil {
		os.Exit(3)
	}
	helper("serve")
}

// gone says whether a process has exited (a zombie has).
func gone(pid int) bool {
	p, err := readProc(pid)
	return err != nil || p.zombie
}

func waitAllGone(t *testing.T, pids map[string]int) {
	t.Helper()
	// Only a hang guard: the processes die as soon as they are scheduled.
	deadline := time.Now().Add(time.Minute)
	for name, pid := range pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) still alive a minute after its owner died", name, pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestStart_NoOrphansWhenOwnerKilled kills "resctl" with SIGKILL: what it
// started dies with it — with a supervisor, the service's own child too —
// and nothing died early with the thread that started it.
func TestStart_NoOrphansWhenOwnerKilled(t *testing.T) {
	for _, supervised := range []bool{false, true} {
		t.Run(fmt.Sprintf("supervised=%v", supervised), func(t *testing.T) {
			dir := t.TempDir()
			owner, line := startOwner(t, supervised, "SERVICE_HELPER=owner", "PIDFILE="+filepath.Join(dir, "grandchild"))
			var started int
			var url string
			if _, err := fmt.Sscanf(line, "ready %d %s", &started, &url); err != nil {
				t.Fatalf("owner said %q: %v", line, err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "grandchild"))
			if err != nil {
				t.Fatal(err)
			}
			grandchild, _ := strconv.Atoi(string(b))
			pids := map[string]int{"service": started}
			if supervised {
				pids = map[string]int{"supervisor": started, "grandchild": grandchild}
				for _, p := range listProcsOrFail(t) {
					if p.ppid == started {
						pids["service"] = p.pid
					}
				}
			}
			defer syscall.Kill(grandchild, syscall.SIGKILL)
			if err := owner.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = owner.Wait()
			waitAllGone(t, pids)
			// Nothing answers: the port is closed, or a connection that
			// met the listener in the instant it closed is reset.
			if _, err := http.Get(url); err == nil || !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "reset") {
				t.Errorf("GET %s after the owner died: %v, want connection refused", url, err)
			}
		})
	}
}

// startOwner starts this test binary as "resctl" with env added (and
// SUPERVISED=1 if supervised), and returns it with the first line it
// prints; it is killed when the test ends.
func startOwner(t *testing.T, supervised bool, env ...string) (*exec.Cmd, string) {
	t.Helper()
	owner := exec.Command(self(t))
	owner.Env = append(os.Environ(), env...)
	if supervised {
		owner.Env = append(owner.Env, "SUPERVISED=1")
	}
	owner.Stderr = os.Stderr
	out, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = owner.Wait()
		t.Fatalf("owner: %v (%v)", err, owner.ProcessState)
	}
	return owner, line
}

func listProcsOrFail(t *testing.T) []procInfo {
	t.Helper()
	ps, err := listProcs()
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestCleanupStale starts three process groups and records them as a run
// would: one whose run is dead (stopped, its child too), one whose run
// still goes, one whose pid was recorded with another start time, as if
// the pid had been reused (both left alone).
func TestCleanupStale(t *testing.T) {
	dir := t.TempDir()
	exited := exec.Command(self(t))
	exited.Env = append(os.Environ(), "SERVICE_HELPER=crash")
	_ = exited.Run()
	me, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := func(name string) (*Process, int) {
		p, err := Start(context.Background(), Spec{
			Name: name, Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "parent"},
			ReadyLine: regexp.MustCompile(`^child (\d+)$`), StateDir: dir,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop() })
		child, _ := strconv.Atoi(p.Match())
		t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
		return p, child
	}
	rewrite := func(p *Process, edit func(*record)) {
		b, err := os.ReadFile(p.record)
		if err != nil {
			t.Fatal(err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		edit(&r)
		if b, err = json.Marshal(r); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.record, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stale, staleChild := start("stale")
	rewrite(stale, func(r *record) { r.Owner, r.OwnerStart = exited.Process.Pid, me.start })
	live, liveChild := start("live")
	reused, reusedChild := start("reused")
	rewrite(reused, func(r *record) { r.Owner, r.Start = exited.Process.Pid, r.Start+1 })

	stopped, err := CleanupStale(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("stale (pid %d)", stale.Pid()); len(stopped) != 1 || stopped[0] != want {
		t.Errorf("CleanupStale = %q, want [%q]", stopped, want)
	}
	<-stale.Exited()
	waitAllGone(t, map[string]int{"stale child": staleChild})
	for name, pid := range map[string]int{"live": live.Pid(), "live child": liveChild, "reused": reused.Pid(), "reused child": reusedChild} {
		if gone(pid) {
			t.Errorf("%s (pid %d) was stopped", name, pid)
		}
	}
	for path, want := range map[string]bool{stale.record: false, live.record: true, reused.record: false} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("record %s kept = %v, want %v", filepath.Base(path), err == nil, want)
		}
	}
	_ = live.Stop()
	if _, err := os.Stat(live.record); !os.IsNotExist(err) {
		t.Errorf("record of a stopped process kept: %v", err)
	}
}

// Records in a directory other users can write to could have been planted
// to make resctl stop a process group not its own: such a directory is
// refused, and nothing in it is acted on.
func TestCleanupStale_RefusesSharedDirectory(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "processes")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Dead owner, and the test process itself as the recorded group: a
	// cleanup that trusted the record would kill the test.
	me, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	planted := fmt.Sprintf(`{"name":"planted","pid":%d,"start":%d,"owner":999999999,"owner_start":1}`, me.pid, me.start)
	if err := os.WriteFile(filepath.Join(dir, "1-1.json"), []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, shared := range []string{parent, dir} {
		if err := os.Chmod(shared, 0o777); err != nil {
			t.Fatal(err)
		}
		stopped, err := CleanupStale(dir)
		if err == nil || !strings.Contains(err.Error(), "written by other users") || len(stopped) != 0 {
			t.Errorf("%s shared: stopped %v, err %v; want it refused", shared, stopped, err)
		}
		if err := os.Chmod(shared, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "1-1.json")); err != nil {
		t.Errorf("the planted record was touched: %v", err)
	}
}

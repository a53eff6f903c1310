package main

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/resctl/resctl/internal/loopback"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// orphanScenario has a service and a target.command that are shells, each
// starting the process that holds its port as a child of its own — the
// grandchild of resctl's supervisor, which a parent-death signal alone
// would not reach.
const orphanScenario = `name: %s
services:
  - name: dep
    command: [sh, -c, 'resctl demo-target --listen 127.0.0.1:%[2]d & echo $! > dep.pid; wait']
    ready: 127.0.0.1:%[2]d
target:
  url: http://127.0.0.1:%[3]d
  command: [sh, -c, 'resctl demo-target --listen 127.0.0.1:%[3]d & echo $! > target.pid; wait']
load: {rate: 20/s, requests: [{path: /api/users/1}]}
phases:
  - {name: only, duration: %s}
`

// TestRun_NoOrphans stops a real resctl run mid-way — SIGKILL, SIGHUP, and
// SIGKILL of resctl after its supervisors were killed — and checks that no
// process it started is left and that the next run on the same ports
// starts cleanly.
func TestRun_NoOrphans(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh")
	}
	tests := []struct {
		name string
		// stop ends the run; pids are the port holders.
		stop      func(t *testing.T, resctl *os.Process, pids []int)
		wantExit  int // -1: killed
		wantStale int // processes the next run finds and stops
	}{
		{"SIGKILL", func(t *testing.T, p *os.Process, _ []int) { sendSignal(t, p.Pid, syscall.SIGKILL) }, -1, 0},
		{"SIGHUP", func(t *testing.T, p *os.Process, _ []int) { sendSignal(t, p.Pid, syscall.SIGHUP) }, exitRunFailed, 0},
		{"SIGKILL with its supervisors killed first", func(t *testing.T, p *os.Process, pids []int) {
			// Frozen, resctl cannot stop what its supervisors leave.
			sendSignal(t, p.Pid, syscall.SIGSTOP)
			for _, pid := range pids {
				sendSignal(t, ppid(t, ppid(t, pid)), syscall.SIGKILL)
			}
			sendSignal(t, p.Pid, syscall.SIGKILL)
		}, -1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			depPort, targetPort := freePort(t), freePort(t)
			writeFile(t, filepath.Join(dir, "long.yaml"), fmt.Sprintf(orphanScenario, "long", depPort, targetPort, "5m"))
			writeFile(t, filepath.Join(dir, "short.yaml"), fmt.Sprintf(orphanScenario, "short", depPort, targetPort, "1s"))
			// Its own temporary directory: the records of processes this
			// run starts are seen by the next run only.
			env := append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command("resctl", "run", "long.yaml", "--out", "out")
			cmd.Dir, cmd.Env = dir, env
			stderr := startUntil(t, cmd, "resctl: long: target")
			var pids []int
			for _, f := range []string{"dep.pid", "target.pid"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
				pids = append(pids, pid)
			}
			tt.stop(t, cmd.Process, pids)
			err := cmd.Wait()
			if got := cmd.ProcessState.ExitCode(); got != tt.wantExit {
				t.Fatalf("resctl exited with %d (%v), want %d; stderr:\n%s", got, err, tt.wantExit, stderr)
			}
			if tt.wantExit >= 0 {
				b, err := os.ReadFile(filepath.Join(dir, "out", "report.json"))
				if err != nil || !bytes.Contains(b, []byte(`"interrupted": true`)) {
					t.Errorf("report.json of the stopped run: %v\n%s", err, b)
				}
			}
			if tt.wantStale == 0 {
				waitExited(t, pids)
			}

			next := exec.Command("resctl", "run", "short.yaml", "--out", "out2")
			next.Dir, next.Env = dir, env
			out, err := next.CombinedOutput()
			if err != nil {
				t.Fatalf("next run: %v\n%s", err, out)
			}
			if want := fmt.Sprintf("stopped %d process(es) left by earlier runs", tt.wantStale); tt.wantStale > 0 && !strings.Contains(string(out), want) {
				t.Errorf("next run does not say %q:\n%s", want, out)
			}
			waitExited(t, pids)
		})
	}
}

// startUntil starts cmd and returns once its stderr has a line starting
// with prefix; the rest of stderr is collected in the returned buffer.
func startUntil(t *testing.T, cmd *exec.Cmd, prefix string) *lockedBuffer {
	t.Helper()
	r, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	buf := &lockedBuffer{}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		once := sync.OnceFunc(func() { close(seen) })
		for sc.Scan() {
			buf.WriteLine(sc.Text())
			if strings.HasPrefix(sc.Text(), prefix) {
				once()
			}
		}
		once()
	}()
	select { // a hang guard only
	case <-seen:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no %q from resctl in 2 minutes:\n%s", prefix, buf)
	}
	if !strings.Contains(buf.String(), prefix) {
		_ = cmd.Wait()
		t.Fatalf("resctl ended before %q:\n%s", prefix, buf)
	}
	return buf
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteLine(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s + "\n")
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func sendSignal(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("kill -%v %d: %v", sig, pid, err)
	}
}

// ppid reads a process's parent from /proc.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitExited waits until every pid has exited (or is a zombie), with a
// hang guard only.
func waitExited(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, pid := range pids {
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || bytes.Contains(b, []byte(") Z ")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("process %d still alive a minute after resctl stopped", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := loopback.QuietPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

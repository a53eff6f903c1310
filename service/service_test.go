package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child process: with SERVICE_HELPER set it
// behaves as the mode says instead of running tests; as "supervise ..." it
// is the supervisor.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "supervise" {
		os.Exit(Supervise(os.Args[2:], os.Stderr))
	}
	if mode := os.Getenv("SERVICE_HELPER"); mode != "" {
		helper(mode)
		return
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	switch mode {
	case "serve": // print the address once listening, serve until SIGTERM
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(3)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("starting up")
		fmt.Printf("listening on http://%s\n", ln.Addr())
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
		<-sig
		os.Exit(0)
	case "listen-fixed": // serve on $ADDR
		ln, err := net.Listen("tcp", os.Getenv("ADDR"))
		if err != nil {
			os.Exit(3)
		}
		http.Serve(ln, http.NotFoundHandler())
	case "crash":
		fmt.Fprintln(os.Stderr, "fatal: cannot open database: connection refused")
		os.Exit(7)
	case "stubborn": // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "parent": // starts a grandchild, prints its pid, then waits
		child, err := os.StartProcess(os.Args[0], os.Args, &os.ProcAttr{
			Env:   helperEnv("sleep"),
			Files: []*os.File{nil, nil, os.Stderr},
		})
		if err != nil {
			os.Exit(3)
		}
		fmt.Printf("child %d\n", child.Pid)
		time.Sleep(time.Hour)
	case "sleep":
		time.Sleep(time.Hour)
	default:
		if h := platformHelpers[mode]; h != nil {
			h()
		}
	}
}

// platformHelpers are helper modes that only some systems' tests have.
var platformHelpers = map[string]func(){}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Errorf("process %d still alive", pid)
}

func TestStart_ReadyLineAndStop(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(context.Background(), Spec{
		Name:      "svc",
		Command:   []string{self(t)},
		Env:       map[string]string{"SERVICE_HELPER": "serve"},
		ReadyLine: regexp.MustCompile(`listening on (http://\S+)`),
		LogDir:    dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Match(), "http://127.0.0.1:") {
		t.Fatalf("Match() = %q", p.Match())
	}
	resp, err := http.Get(p.Match())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	waitGone(t, p.Pid())
	log, err := os.ReadFile(filepath.Join(dir, "svc.stdout.log"))
	if err != nil || !strings.Contains(string(log), "starting up") {
		t.Errorf("stdout log = %q, %v", log, err)
	}
}

func TestStart_ReadyURLAndTCP(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	for _, spec := range []Spec{
		{Name: "url", ReadyURL: "http://" + addr + "/healthz"},
		{Name: "tcp", ReadyTCP: addr},
	} {
		t.Run(spec.Name, func(t *testing.T) {
			spec.Command = []string{self(t)}
			spec.Env = map[string]string{"SERVICE_HELPER": "listen-fixed", "ADDR": addr}
			p, err := Start(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Stop(); err != nil {
				t.Error(err)
			}
			waitGone(t, p.Pid())
		})
	}
}

func TestStart_Failures(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr []string
	}{
		{"exits before ready", Spec{Env: map[string]string{"SERVICE_HELPER": "crash"}, ReadyTCP: "127.0.0.1:1"},
			[]string{"exited before it was ready", "exit status 7", "cannot open database"}},
		{"never ready", Spec{Env: map[string]string{"SERVICE_HELPER": "sleep"}, ReadyTCP: "127.0.0.1:1", ReadyTimeout: 300 * time.Millisecond},
			[]string{"not ready after 300ms"}},
		{"no such command", Spec{Command: []string{"resctl-no-such-binary"}}, []string{"executable file not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "svc"
			if tt.spec.Command == nil {
				tt.spec.Command = []string{self(t)}
			}
			_, err := Start(context.Background(), tt.spec)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.spec.Command[0] == self(t) && !errors.Is(err, ErrNotReady) {
				t.Errorf("error %v is not ErrNotReady", err)
			}
		})
	}
}

func TestStop_KillsStubbornProcessAndChildren(t *testing.T) {
	p, err := Start(context.Background(), Spec{
		Name: "stubborn", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "stubborn"},
		ReadyLine: regexp.MustCompile(`^ready$`), StopGrace: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "killed after 200ms") {
		t.Errorf("Stop = %v, want a kill after the grace period", err)
	}
	waitGone(t, p.Pid())

	parent, err := Start(context.Background(), Spec{
		Name: "parent", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "parent"},
		ReadyLine: regexp.MustCompile(`^child (\d+)$`),
	})
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(parent.Match())
	if !alive(child) {
		t.Fatalf("grandchild %d not running", child)
	}
	_ = parent.Stop()
	waitGone(t, parent.Pid())
	waitGone(t, child)
}

func TestStart_CancelledContextStopsProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, Spec{Name: "svc", Command: []string{self(t)}, Env: map[string]string{"SERVICE_HELPER": "sleep"}, ReadyTCP: "127.0.0.1:1"})
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("err = %v", err)
	}
}

// helperEnv is this process's environment with SERVICE_HELPER set to mode,
// for a helper that starts another with os.StartProcess, which passes the
// environment as it is given: a second SERVICE_HELPER added after this
// process's own would go unread (a Go program reads the first), and the
// child would play this helper again, and start another, each outliving
// the test.
func helperEnv(mode string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SERVICE_HELPER=") })
	return append(env, "SERVICE_HELPER="+mode)
}

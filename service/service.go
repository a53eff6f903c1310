package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for Spec fields left zero.
const (
	DefaultReadyTimeout = 30 * time.Second
	DefaultStopGrace    = 5 * time.Second
	tailLines           = 20
)

// ErrNotReady is returned (wrapped) when a process exits or times out
// before it is ready.
var ErrNotReady = errors.New("service not ready")

// Spec describes a process to start.
type Spec struct {
	// Name labels the process in messages and log file names.
	Name    string
	Command []string
	// Env is added to resctl's own environment.
	Env map[string]string
	Dir string

	// Readiness: at most one of ReadyURL (an HTTP GET answering < 500),
	// ReadyTCP (an address accepting connections) or ReadyLine (a regular
	// expression matched against stdout lines; its first group, if any, is
	// returned by Process.Match). None means ready once started.
	ReadyURL     string
	ReadyTCP     string
	ReadyLine    *regexp.Regexp
	ReadyTimeout time.Duration

	// StopSignal is sent to the process group first (default SIGTERM);
	// SIGKILL follows after StopGrace.
	StopSignal syscall.Signal
	StopGrace  time.Duration

	// LogDir, if set, receives NAME.stdout.log and NAME.stderr.log.
	LogDir string

	// Supervisor, if set, is the command line of a process that runs
	// Supervise (resctl's own binary): it is started in the command's
	// place and starts the command, so that if resctl dies, even by
	// SIGKILL, the command's grandchildren are stopped as well, not only
	// the command itself.
	Supervisor []string
	// StateDir, if set, records the process while it runs, so that
	// CleanupStale(StateDir) in a later run stops it if resctl and its
	// supervisor both died without stopping it.
	StateDir string
	// AppendLogs adds to the log files in LogDir instead of starting
	// them afresh: a process started again keeps its earlier output.
	AppendLogs bool
}

// Process is a started process.
type Process struct {
	spec Spec
	cmd  *exec.Cmd

	out, errb *tail
	files     []*os.File

	exited  chan struct{} // closed when the process has exited
	waitErr error

	match string

	stopOnce sync.Once
	stopErr  error

	record string // its state file, removed once it is stopped
}

// Start starts the process and waits until it is ready, ctx is done or it
// exits. On any failure the process group is stopped and the error carries
// the tail of its output.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	if len(spec.Command) == 0 {
		return nil, fmt.Errorf("service %s: no command", spec.Name)
	}
	if spec.ReadyTimeout <= 0 {
		spec.ReadyTimeout = DefaultReadyTimeout
	}
	if spec.StopGrace <= 0 {
		spec.StopGrace = DefaultStopGrace
	}
	if spec.StopSignal == 0 {
		spec.StopSignal = syscall.SIGTERM
	}
	path, err := exec.LookPath(spec.Command[0])
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	argv := append([]string{path}, spec.Command[1:]...)
	if len(spec.Supervisor) > 0 {
		argv = append(slices.Clone(spec.Supervisor), supervisorArgs(spec, argv)...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = os.Environ()
	for k, v := range spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	setProcessGroup(cmd, len(spec.Supervisor) > 0)

	p := &Process{spec: spec, cmd: cmd, out: newTail(tailLines), errb: newTail(tailLines), exited: make(chan struct{})}
	stdout, stderr := io.Writer(p.out), io.Writer(p.errb)
	if spec.LogDir != "" {
		if err := os.MkdirAll(spec.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("service %s: %w", spec.Name, err)
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if spec.AppendLogs {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		fo, err1 := os.OpenFile(filepath.Join(spec.LogDir, spec.Name+".stdout.log"), flags, 0o644)
		fe, err2 := os.OpenFile(filepath.Join(spec.LogDir, spec.Name+".stderr.log"), flags, 0o644)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("service %s: %w", spec.Name, err)
		}
		p.files = []*os.File{fo, fe}
		stdout, stderr = io.MultiWriter(fo, p.out), io.MultiWriter(fe, p.errb)
	}
	lines := make(chan string, 64)
	cmd.Stdout = &lineSplitter{w: stdout, lines: lines}
	cmd.Stderr = stderr
	if err := startCmd(cmd); err != nil {
		p.closeFiles()
		return nil, fmt.Errorf("service %s: start %s: %w", spec.Name, spec.Command[0], err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		p.closeFiles()
		close(p.exited)
	}()
	if spec.StateDir != "" {
		var err error
		if p.record, err = writeRecord(spec.StateDir, spec.Name, cmd.Process.Pid); err != nil {
			_ = p.Stop()
			return nil, fmt.Errorf("service %s: record the process: %w", spec.Name, err)
		}
	}

	if err := p.waitReady(ctx, lines); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("service %s: %w%s", spec.Name, err, p.tailText())
	}
	return p, nil
}

// supervisorArgs is what Supervise is given after the supervisor's own
// command line: the stop signal, the grace period, the command.
func supervisorArgs(spec Spec, command []string) []string {
	return append([]string{strconv.Itoa(int(spec.StopSignal)), spec.StopGrace.String()}, command...)
}

func (p *Process) closeFiles() {
	for _, f := range p.files {
		_ = f.Close()
	}
}

func (p *Process) waitReady(ctx context.Context, lines <-chan string) error {
	deadline := time.NewTimer(p.spec.ReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	check := p.readyCheck()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNotReady, ctx.Err())
		case <-p.exited:
			return fmt.Errorf("%w: exited before it was ready (%v)", ErrNotReady, p.exitText())
		case <-deadline.C:
			return fmt.Errorf("%w: not ready after %s", ErrNotReady, p.spec.ReadyTimeout)
		case l := <-lines:
			if re := p.spec.ReadyLine; re != nil {
				if m := re.FindStringSubmatch(l); m != nil {
					if len(m) > 1 {
						p.match = m[1]
					}
					return nil
				}
			}
		case <-tick.C:
			if check != nil && check(ctx) {
				return nil
			}
		}
		if p.spec.ReadyLine == nil && check == nil {
			return nil
		}
	}
}

func (p *Process) readyCheck() func(context.Context) bool {
	switch {
	case p.spec.ReadyURL != "":
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		return func(ctx context.Context) bool {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.spec.ReadyURL, nil)
			if err != nil {
				return false
			}
			resp, err := client.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode < 500
		}
	case p.spec.ReadyTCP != "":
		return func(ctx context.Context) bool {
			c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", p.spec.ReadyTCP)
			if err != nil {
				return false
			}
			c.Close()
			return true
		}
	}
	return nil
}

// Match is the first group of the ReadyLine match, e.g. an address the
// process printed.
func (p *Process) Match() string { return p.match }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Tail returns the last lines of stdout and stderr.
func (p *Process) Tail() (stdout, stderr string) { return p.out.String(), p.errb.String() }

func (p *Process) tailText() string {
	out, errs := p.Tail()
	var b strings.Builder
	if errs != "" {
		fmt.Fprintf(&b, "\n--- last lines of %s stderr ---\n%s", p.spec.Name, errs)
	}
	if out != "" {
		fmt.Fprintf(&b, "\n--- last lines of %s stdout ---\n%s", p.spec.Name, out)
	}
	return strings.TrimRight(b.String(), "\n")
}

func (p *Process) exitText() string {
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ProcessState.String()
	}
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// Stop stops the whole process group: StopSignal, up to StopGrace for it
// to exit, then SIGKILL. It is safe to call more than once and after the
// process exited on its own.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = signalGroup(p.cmd, p.spec.StopSignal)
		// A paused process would hold the signal until continued.
		_ = continueGroup(p.cmd)
		t := time.NewTimer(p.spec.StopGrace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			_ = signalGroup(p.cmd, syscall.SIGKILL)
			<-p.exited
			p.stopErr = fmt.Errorf("service %s: killed after %s without exiting on %v", p.spec.Name, p.spec.StopGrace, p.spec.StopSignal)
		}
		// Children that outlived the leader are killed too.
		_ = signalGroup(p.cmd, syscall.SIGKILL)
	})
	if p.record != "" {
		_ = os.Remove(p.record)
	}
	return p.stopErr
}

// tail keeps the last n lines written to it.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
	part  []byte
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, b...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		t.part = t.part[i+1:]
		if len(t.lines) > t.n {
			t.lines = t.lines[len(t.lines)-t.n:]
		}
	}
	if len(t.part) > 4096 { // a very long line without a newline
		t.part = t.part[len(t.part)-4096:]
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.lines, "\n")
	if len(t.part) > 0 {
		if s != "" {
			s += "\n"
		}
		s += string(t.part)
	}
	return s
}

// lineSplitter copies to w and sends complete lines to lines without ever
// blocking the process's output: lines nobody is waiting for are dropped.
type lineSplitter struct {
	w     io.Writer
	lines chan<- string
	buf   []byte
}

func (l *lineSplitter) Write(b []byte) (int, error) {
	n, err := l.w.Write(b)
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		select {
		case l.lines <- strings.TrimRight(string(l.buf[:i]), "\r"):
		default:
		}
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 {
		l.buf = l.buf[len(l.buf)-4096:]
	}
	return n, err
}

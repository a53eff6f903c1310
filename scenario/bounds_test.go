package scenario_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/resctl/resctl/scenario"
)

// Reading files meant to hurt, each in a process of its own so its memory
// and CPU time are its own: an alias bomb, a file far over the size limit,
// and a syntax error at the end of a large file, whose placing must cost a
// few parses of the file, not one per line. Memory is judged against a
// process that reads a small valid file, time against one that reads a
// valid file of the same size, both in the same run.
func TestRead_boundedInAProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads files of tens of megabytes")
	}
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const valid = "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n"
	// 600 lines of 8 KB: the re-parse of every prefix this replaces
	// parsed 1.5 GB to place a mistake on the last line.
	var large strings.Builder
	large.WriteString(valid + "description: >\n")
	for range 600 {
		large.WriteString("  " + strings.Repeat("x", 8<<10) + "\n")
	}
	bigLimit := strconv.Itoa(64 << 20)

	small := runReader(t, write("small.yaml", valid), "", 0)
	if small.err != "" {
		t.Fatalf("small valid file: %s", small.err)
	}
	memCap := small.maxRSS + 100<<20
	checkMem := func(name string, r readerRun) {
		t.Helper()
		t.Logf("%s: max RSS %d MiB (a small file's: %d MiB), CPU %v", name, r.maxRSS>>20, small.maxRSS>>20, r.cpu)
		if r.maxRSS > memCap {
			t.Errorf("%s: max RSS %d MiB, over %d MiB (100 MiB over a small file's)", name, r.maxRSS>>20, memCap>>20)
		}
	}

	bomb := runReader(t, write("bomb.yaml", typedAliasBomb()), "", memCap)
	checkMem("alias bomb", bomb)
	if !strings.Contains(bomb.err, "more than the limit of 100000 nodes") {
		t.Errorf("alias bomb: error %q, want the node limit", bomb.err)
	}

	unknown := filepath.Join(dir, "unknown.yaml")
	f, err := os.Create(unknown)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	n, _ := w.WriteString(valid)
	for i := 0; n < 59<<20; i++ {
		m, _ := fmt.Fprintf(w, "unknown_key_%d: value\n", i)
		n += m
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	big := runReader(t, unknown, "", memCap)
	checkMem("59 MB of unknown keys", big)
	if !strings.Contains(big.err, "1:1: the document is larger than the limit of 1 MiB") {
		t.Errorf("59 MB of unknown keys: error %q, want the size limit", big.err)
	}

	same := runReader(t, write("large.yaml", large.String()), bigLimit, 0)
	if same.err != "" {
		t.Fatalf("large valid file: %s", same.err)
	}
	late := runReader(t, write("late.yaml", large.String()+"- x\n"), bigLimit, 0, same.wall*40+time.Minute)
	t.Logf("large file: valid in %v of CPU, with a late syntax error in %v", same.cpu, late.cpu)
	if !strings.Contains(late.err, "late.yaml:606:1: YAML syntax error: did not find expected key") {
		t.Errorf("late syntax error: error %q, want it placed on line 606", late.err)
	}
	if late.cpu > 20*same.cpu {
		t.Errorf("a late syntax error took %v of CPU, over 20 times the %v of a valid file of the same size", late.cpu, same.cpu)
	}
}

// typedAliasBomb is a 12 KB scenario whose typed aliases expand to 500
// proxies of 800 routes of 800 policies each: 3.2e8 policies to decode.
func typedAliasBomb() string {
	var b strings.Builder
	b.WriteString("name: bomb\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n")
	b.WriteString("proxies:\n  p0: &p !!map\n    upstream: http://127.0.0.1:1\n    routes: [&r !!map {match: {path: /}, guard: [&g !!map {timeout: 1s}")
	b.WriteString(strings.Repeat(", *g", 799) + "]}" + strings.Repeat(", *r", 799) + "]\n")
	for i := 1; i < 500; i++ {
		fmt.Fprintf(&b, "  p%d: *p\n", i)
	}
	return b.String()
}

type readerRun struct {
	err    string // the first line of the error, or ""
	maxRSS int64  // the child's peak resident memory after exec
	cpu    time.Duration
	wall   time.Duration
}

// runReader reads path with scenario.Read in a child process (maxBytes ""
// for the default limit). The child is killed when its memory passes
// memCap (0: no cap) or it runs past the deadline, which defaults to ten
// minutes: only a hang meets it.
func runReader(t *testing.T, path, maxBytes string, memCap int64, deadline ...time.Duration) readerRun {
	t.Helper()
	wait := 10 * time.Minute
	if len(deadline) > 0 {
		wait = deadline[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReadChild$")
	cmd.Env = append(os.Environ(), "RESCTL_READ_CHILD="+path, "RESCTL_READ_CHILD_MAX_BYTES="+maxBytes)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	overMem := make(chan int64, 1)
	done := make(chan struct{})
	defer close(done)
	if memCap > 0 {
		go watchRSS(cmd.Process, memCap, overMem, done)
	}
	err := cmd.Wait()
	r := readerRun{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	select {
	case rss := <-overMem:
		t.Fatalf("reading %s: killed with %d MiB resident, over %d MiB", filepath.Base(path), rss>>20, memCap>>20)
	default:
	}
	if ctx.Err() != nil {
		t.Fatalf("reading %s: still running after %v", filepath.Base(path), wait)
	}
	if err != nil {
		t.Fatalf("reading %s: %v\n%s", filepath.Base(path), err, out.String())
	}
	// The child reports its own peak (VmHWM): the rusage of a child
	// counts the parent's memory it shared between fork and exec.
	first, rest, _ := strings.Cut(out.String(), "\n")
	r.err = strings.TrimPrefix(first, "error: ")
	if first == "ok" {
		r.err = ""
	}
	hwm, _, _ := strings.Cut(rest, "\n")
	kb, err := strconv.ParseInt(strings.TrimPrefix(hwm, "peak kB: "), 10, 64)
	if err != nil {
		t.Fatalf("reading %s: no peak memory in the child's output:\n%s", filepath.Base(path), out.String())
	}
	r.maxRSS = kb << 10
	return r
}

// watchRSS kills p once its resident memory passes memCap, so a reader
// that would take gigabytes fails the test without taking the machine.
func watchRSS(p *os.Process, memCap int64, over chan<- int64, done <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if rss := residentBytes(p.Pid); rss > memCap {
			over <- rss
			_ = p.Kill()
			return
		}
	}
}

func residentBytes(pid int) int64 { return procStatus(strconv.Itoa(pid), "VmRSS:") }

// procStatus reads a field of /proc/PID/status in bytes.
func procStatus(pid, field string) int64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestReadChild is the child of TestRead_boundedInAProcess: it reads the
// file RESCTL_READ_CHILD names and prints "ok" or the error's first line.
func TestReadChild(t *testing.T) {
	path := os.Getenv("RESCTL_READ_CHILD")
	if path == "" {
		return
	}
	var lim scenario.Limits
	if s := os.Getenv("RESCTL_READ_CHILD_MAX_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		lim.MaxBytes = n
	}
	_, err := scenario.Read(context.Background(), path, lim)
	var ve *scenario.ValidationError
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.As(err, &ve):
		p := ve.Problems[0]
		fmt.Printf("error: %s:%d:%d: %s\n", filepath.Base(ve.File), p.Line, p.Col, p.Msg)
	default:
		fmt.Printf("error: %v\n", err)
	}
	fmt.Printf("peak kB: %d\n", procStatus("self", "VmHWM:")>>10)
}

// Tens of thousands of unknown keys are as many problems, told in a
// screenful: the first MaxProblems, then how many more.
func TestValidationError_manyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n")
	for i := range 25_000 {
		fmt.Fprintf(&b, "unknown_%d: v\n", i)
	}
	_, err := scenario.ParseWith(context.Background(), "many.yaml", []byte(b.String()), scenario.Limits{MaxBytes: 4 << 20, MaxNodes: 1 << 20})
	var ve *scenario.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 25_000 {
		t.Fatalf("ParseWith = %v, want 25000 problems", err)
	}
	for _, max := range []int{0, 5} {
		ve.Max = max
		shown := max
		if max == 0 {
			shown = scenario.DefaultMaxProblems
		}
		for name, msg := range map[string]string{"Error": ve.Error(), "Detailed": ve.Detailed()} {
			more := fmt.Sprintf("many.yaml: and %d more problems", 25_000-shown)
			if got := strings.Count(msg, "many.yaml:"); got != shown+1 || !strings.HasSuffix(msg, more) {
				t.Errorf("MaxProblems %d: %s has %d problems in %d bytes, want %d and %q at the end", max, name, got, len(msg), shown, more)
			}
		}
	}
}

// A problem on a long line shows the part of the line around it.
func TestValidationError_DetailedLongLine(t *testing.T) {
	src := "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n" +
		"description: " + strings.Repeat("x", 300) + "\nx: 1\n" +
		"output: {formats: [" + strings.Repeat("json, ", 50) + "pdf]}\n"
	_, err := scenario.Parse("s.yaml", []byte(src))
	var ve *scenario.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	lines := strings.Split(ve.Detailed(), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[3], "s.yaml:7:320: output.formats[50]: unknown format") {
		t.Fatalf("Detailed() =\n%s", ve.Detailed())
	}
	shown, caret := []rune(lines[4]), []rune(lines[5])
	if want := "    …" + strings.Repeat("json, ", 50)[300-115:] + "pdf]}"; lines[4] != want {
		t.Errorf("long line shown as\n%s\nwant\n%s", lines[4], want)
	}
	if len(caret) > len(shown) || caret[len(caret)-1] != '^' || string(shown[len(caret)-1:len(caret)+2]) != "pdf" {
		t.Errorf("caret not under the problem:\n%s\n%s", lines[4], lines[5])
	}
}

// A file's control characters and text-reordering characters never reach
// the terminal through an excerpt: each is shown as a visible character
// of one column, so the caret still lines up.
func TestValidationError_DetailedControlCharacters(t *testing.T) {
	src := "name: t\ntarget: {builtin: demo}\nload: {rate: 5/s, requests: [{path: /}]}\nphases: [{name: a, duration: 1s}]\n" +
		"description: \"\x1b]0;x\x07\x7f\u202e\u0085\"\n"
	_, err := scenario.Parse("s.yaml", []byte(src))
	var ve *scenario.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	d := ve.Detailed()
	for _, r := range d {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			t.Fatalf("Detailed() holds %U:\n%q", r, d)
		}
	}
	if !strings.Contains(d, `"␛]0;x␇␡��"`) {
		t.Errorf("Detailed() =\n%s\nwant the escape, bell and DEL as control pictures, the others as U+FFFD", d)
	}
}

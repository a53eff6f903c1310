package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// ScriptResult says how a scripted session went.
type ScriptResult struct {
	Commands int // lines carried out
	Refused  int // lines refused (a typo, an unknown proxy, an API error)
}

// RunScript drives the session from commands read line by line — the
// console's commands, with no terminal — and prints one plain line per
// event and per answer to w. It polls the proxies every `every` while it
// reads. It returns at the end of the input, at quit, or when ctx ends;
// the caller closes the session.
func RunScript(ctx context.Context, s *Session, r io.Reader, w io.Writer, every time.Duration) (ScriptResult, error) {
	var res ScriptResult
	var mu sync.Mutex // one writer at a time
	print := func(lines ...Line) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			fmt.Fprintln(w, l.String())
		}
	}
	pollCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
				print(s.Poll(pollCtx)...)
			}
		}
	})
	defer func() {
		stop()
		wg.Wait()
		// What happened since the last poll is printed too.
		print(s.Poll(context.WithoutCancel(ctx))...)
	}()

	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), MaxLine+1)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			readErr <- err
		}
	}()
	for {
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case line, ok = <-lines:
		}
		if !ok {
			select {
			case err := <-readErr:
				if errors.Is(err, bufio.ErrTooLong) {
					err = fmt.Errorf("a line over %d bytes", MaxLine)
				}
				return res, fmt.Errorf("read commands: %w", err)
			default:
			}
			return res, nil
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		res.Commands++
		out, err := s.ExecLine(ctx, line)
		at := s.elapsed()
		// What the load said while the command ran (it ended, during a
		// wait) came first: printed now, the lines stay in time order.
		print(s.takeBackground()...)
		switch {
		case errors.Is(err, ErrQuit):
			return res, nil
		case err != nil && ctx.Err() != nil:
			return res, ctx.Err()
		case err != nil:
			res.Refused++
			print(Line{At: at, Source: "error", Text: fmt.Sprintf("%s: %v", strings.TrimSpace(line), err)})
		case out != "":
			for _, l := range strings.Split(out, "\n") {
				print(Line{At: at, Source: "ok", Text: l})
			}
		}
	}
}

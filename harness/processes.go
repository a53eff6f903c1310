package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/resctl/resctl/inject"
	"github.com/resctl/resctl/inject/process"
)

// SourceProcess is the source of the events of process faults sent
// through the admin API.
const SourceProcess = "process"

// ErrNoProcess is returned (wrapped) by Processes.Act for a name that
// names no process the host started.
var ErrNoProcess = errors.New("no such process")

// Processes are the processes a host of the admin API started (the target
// and services of `resctl run`, the demo of `resctl chaos --demo`), which
// process faults sent through the API act on.
type Processes interface {
	// ProcessList describes every process, in the order they started.
	ProcessList() []ProcessInfo
	// Act starts a kill, pause or restart of the process spec names. It
	// returns once the action is under way; what follows (the process
	// started again, continued) happens beside it. An unknown name is
	// ErrNoProcess; a process that cannot take the action (down) is
	// another error.
	Act(spec process.Spec) error
}

// ProcessInfo is a process as the API shows it.
type ProcessInfo struct {
	Name string `json:"name"`
	// State is ready, down, paused or starting.
	State string `json:"state"`
	// Pid is the running process's, 0 while down.
	Pid      int `json:"pid,omitempty"`
	Restarts int `json:"restarts"`
}

// SetProcesses gives the API the host's processes; nil takes them away.
func (a *Admin) SetProcesses(p Processes) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.procs = p
}

func (a *Admin) processes() Processes {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.procs
}

func (a *Admin) listProcesses(w http.ResponseWriter, _ *http.Request) {
	out := []ProcessInfo{}
	if p := a.processes(); p != nil {
		out = append(out, p.ProcessList()...)
	}
	writeJSON(w, http.StatusOK, out)
}

// actOnProcess is POST /api/v1/processes/{name}/{kind}: a kill, pause or
// restart with the kind's parameters as the body (or none).
func (a *Admin) actOnProcess(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	name, kind := r.PathValue("name"), r.PathValue("kind")
	spec, probs := process.Parse(kind, name, body)
	if len(probs) > 0 {
		fp := make([]inject.FieldProblem, len(probs))
		for i, p := range probs {
			fp[i] = inject.FieldProblem{Field: p.Field, Msg: p.Msg}
		}
		writeError(w, http.StatusBadRequest, "invalid process fault", fp)
		return
	}
	p := a.processes()
	if p == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no process named %q: this resctl started none", name), nil)
		return
	}
	err := p.Act(spec)
	switch {
	case errors.Is(err, ErrNoProcess):
		writeError(w, http.StatusNotFound, err.Error(), nil)
		return
	case err != nil:
		writeError(w, http.StatusConflict, err.Error(), nil)
		return
	}
	a.Record(Event{Source: SourceProcess, Kind: kind, ID: name, Detail: "through the admin API"})
	for _, info := range p.ProcessList() {
		if info.Name == name {
			writeJSON(w, http.StatusAccepted, info)
			return
		}
	}
	writeJSON(w, http.StatusAccepted, ProcessInfo{Name: name})
}

// Processes lists the processes the admin API's host started.
func (c *AdminClient) Processes(ctx context.Context) ([]ProcessInfo, error) {
	var out []ProcessInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/processes", nil, &out)
	return out, err
}

// ActOnProcess sends a process fault (kill, pause, restart) with its
// parameters (a JSON object, or nil for the defaults) to the named process.
func (c *AdminClient) ActOnProcess(ctx context.Context, name, kind string, params any) (ProcessInfo, error) {
	var out ProcessInfo
	if params == nil {
		params = struct{}{}
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/processes/"+url.PathEscape(name)+"/"+url.PathEscape(kind), params, &out)
	return out, err
}

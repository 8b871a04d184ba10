package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// StateFile is the name of the state file under a cluster's Dir that
// "natter cluster up" writes and "natter cluster down|status" read.
const StateFile = "cluster.json"

// State describes a cluster for another process: every process with its
// pid, arguments, ports and log.
type State struct {
	Dir        string    `json:"dir"`
	Binary     string    `json:"binary"`
	Started    time.Time `json:"started"`
	NATSURL    string    `json:"nats_url"`
	MongoURI   string    `json:"mongo_uri"`
	EdgeURLs   []string  `json:"edge_urls"`
	SecretFile string    `json:"jwt_secret_file"`
	// AuthDir holds the CA (ca.pem) and the tiers' nkey seeds (<tier>.nk)
	// of a secure cluster; empty for plain NATS.
	AuthDir string      `json:"auth_dir,omitempty"`
	Procs   []ProcState `json:"procs"`
}

// ProcState is one process of a [State].
type ProcState struct {
	Name    string         `json:"name"`
	Kind    string         `json:"kind"`
	PID     int            `json:"pid"`
	Args    []string       `json:"args"`
	Addr    string         `json:"addr"`
	HTTP    string         `json:"http,omitempty"`
	Dir     string         `json:"dir,omitempty"`
	LogPath string         `json:"log"`
	Roles   []string       `json:"roles,omitempty"`
	Ports   map[string]int `json:"ports"`
}

// State is the cluster's current state.
func (c *Cluster) State() *State {
	s := &State{Dir: c.Opts.Dir, Binary: c.Opts.Binary, Started: c.started, NATSURL: c.NATSURL(),
		MongoURI: c.MongoURI(), EdgeURLs: c.EdgeURLs(), SecretFile: c.secretFile, AuthDir: c.AuthDir()}
	for _, p := range c.Procs() {
		s.Procs = append(s.Procs, ProcState{Name: p.Name, Kind: p.Kind, PID: p.PID(), Args: p.Args, Addr: p.Addr,
			HTTP: p.HTTP, Dir: p.Dir, LogPath: p.LogPath, Roles: p.Roles, Ports: p.Ports})
	}
	return s
}

// WriteState writes the cluster's [State] as JSON to path (atomically).
func (c *Cluster) WriteState(path string) error {
	b, err := json.MarshalIndent(c.State(), "", "  ")
	if err != nil {
		return fmt.Errorf("cluster: state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cluster: state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cluster: state: %w", err)
	}
	return nil
}

// LoadState reads a state file written by [Cluster.WriteState].
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("cluster: state %s: %w", path, err)
	}
	return &s, nil
}

// StatePath is the state file of the cluster under dir.
func StatePath(dir string) string { return filepath.Join(dir, StateFile) }

// PIDs returns the live processes of p: its pid if it still runs the natter
// binary with p's arguments (a pid reused by another program does not
// count, nor does a zombie), and on Linux any other process with exactly
// those arguments (one started again by hand).
func (p ProcState) PIDs() []int { return livePIDs(p.PID, p.Args) }

// Alive reports whether p runs (see [ProcState.PIDs]).
func (p ProcState) Alive() bool { return len(p.PIDs()) > 0 }

// Live returns the processes that run.
func (s *State) Live() []ProcState {
	var out []ProcState
	for _, p := range s.Procs {
		if p.Alive() {
			out = append(out, p)
		}
	}
	return out
}

// StopResult is what [State.Stop] did to one process.
type StopResult struct {
	Proc ProcState
	// Was is "stopped" (exited after SIGTERM), "killed" (SIGKILL at the
	// deadline) or "not running".
	Was string
	// Took is the time from the signal to the exit.
	Took time.Duration
}

// Stop stops the state's processes by pid, in the order of
// [Cluster.Stop]: SIGTERM to edges and workers, then the store, then the
// NATS nodes, each group waited for; at ctx's deadline what is left gets
// SIGKILL. report is called once per process (from several goroutines,
// one at a time). The error lists processes still alive at the end.
func (s *State) Stop(ctx context.Context, report func(StopResult)) error {
	var mu sync.Mutex
	say := func(r StopResult) {
		mu.Lock()
		defer mu.Unlock()
		if report != nil {
			report(r)
		}
	}
	groups := [][]ProcState{nil, nil, nil}
	for _, p := range s.Procs {
		switch p.Kind {
		case KindEdge, KindWorker:
			groups[0] = append(groups[0], p)
		case KindStore:
			groups[1] = append(groups[1], p)
		default:
			groups[2] = append(groups[2], p)
		}
	}
	var errs []error
	var emu sync.Mutex
	for _, g := range groups {
		var wg sync.WaitGroup
		for _, p := range g {
			wg.Go(func() {
				r, err := stopPID(ctx, p)
				say(r)
				if err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// stopPID sends SIGTERM to p's processes and polls until they are gone;
// SIGKILL at ctx's deadline, then up to 10s more for the exit.
func stopPID(ctx context.Context, p ProcState) (StopResult, error) {
	r := StopResult{Proc: p, Was: "not running"}
	pids := p.PIDs()
	if len(pids) == 0 {
		return r, nil
	}
	r.Proc.PID = pids[0]
	start := time.Now()
	signalAll(pids, syscall.SIGTERM)
	r.Was = "stopped"
	for {
		pids = stillAlive(pids, p.Args)
		if len(pids) == 0 {
			r.Took = time.Since(start)
			return r, nil
		}
		select {
		case <-ctx.Done():
			if r.Was == "killed" {
				return r, fmt.Errorf("cluster: %s (pid %v) still alive after SIGKILL", p.Name, pids)
			}
			r.Was = "killed"
			signalAll(pids, syscall.SIGKILL)
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		_ = signalPID(pid, sig)
	}
}

func stillAlive(pids []int, args []string) []int {
	var out []int
	for _, pid := range pids {
		if alive(pid, args) {
			out = append(out, pid)
		}
	}
	return out
}

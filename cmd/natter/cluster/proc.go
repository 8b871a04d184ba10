package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process kinds.
const (
	KindNATS   = "nats"
	KindStore  = "store"
	KindEdge   = "edge"
	KindWorker = "worker"
)

var (
	// ErrRunning is returned by [Proc.Start] for a process that runs.
	ErrRunning = errors.New("cluster: process is running")
	// ErrNotRunning is returned by [Proc.Signal] for a process that does not
	// run.
	ErrNotRunning = errors.New("cluster: process is not running")
	// ErrKilled is returned by [Proc.Stop] when the process had to be
	// killed at the context's deadline.
	ErrKilled = errors.New("cluster: killed after SIGTERM")
)

// Proc is one natter process of a cluster. Its arguments, ports and data
// directory are fixed when the cluster is planned, so [Proc.Start] after a
// stop or a kill brings back the same process. Its output (stdout and
// stderr) is appended to LogPath, so the log keeps every run.
type Proc struct {
	// Name is unique in the cluster: "nats-1", "store", "edge-1",
	// "worker-persist-1" (one role per process) or "worker-1" (every role).
	Name string
	// Kind is KindNATS, KindStore, KindEdge or KindWorker.
	Kind string
	// Args are the arguments of the natter binary ("nats --name nats-1 ...").
	Args []string
	// Addr is the client host:port of a NATS node, the listen host:port of
	// the store, the HTTP host:port of an edge, the admin host:port of a
	// worker.
	Addr string
	// HTTP is the monitoring host:port of a NATS node; for an edge or a
	// worker, Addr again; empty for the store.
	HTTP string
	// Dir is the data directory of a NATS node or of the store; empty
	// otherwise.
	Dir string
	// LogPath is the file stdout and stderr are appended to.
	LogPath string
	// Roles are a worker's roles; nil for other kinds.
	Roles []string
	// Ports are the process's ports by use: "client", "http", "cluster"
	// (NATS), "listen" (store), "http" (edge), "admin" (worker).
	Ports map[string]int

	binary       string
	env          []string
	detach       bool
	readyTimeout time.Duration

	mu      sync.Mutex
	cmd     *exec.Cmd
	pid     int
	exited  chan struct{}
	waitErr error
}

// closedCh is what Exited returns for a process never started.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// PID is the process id of the current or last run; 0 before the first.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// Exited is closed when the current run ends (at once for a process never
// started). Take it after [Proc.Start]: a restart makes a new channel.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return closedCh
	}
	return p.exited
}

// Running reports whether the process has been started and has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.Exited():
		return false
	default:
		return true
	}
}

// ExitErr is the exit error of the last run (nil while it runs or after a
// clean exit).
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Start starts the process with its arguments, ports and data, and waits
// until it is ready (see [Proc.WaitReady]). It fails with [ErrRunning] if
// the process runs.
func (p *Proc) Start(ctx context.Context) error {
	if err := p.launch(); err != nil {
		return err
	}
	return p.WaitReady(ctx)
}

// launch starts the process without waiting for it to be ready.
func (p *Proc) launch() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("%w: %s (pid %d)", ErrRunning, p.Name, p.pid)
		}
	}
	if p.Dir != "" {
		if err := os.MkdirAll(p.Dir, 0o755); err != nil {
			return fmt.Errorf("cluster: %s: %w", p.Name, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.LogPath), 0o755); err != nil {
		return fmt.Errorf("cluster: %s: %w", p.Name, err)
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %s: log: %w", p.Name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "--- %s natter cluster: starting %s: %s %s\n",
		time.Now().Format(time.RFC3339), p.Name, p.binary, strings.Join(p.Args, " "))
	cmd := exec.Command(p.binary, p.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf // files, not pipes: nothing to copy, nothing to block on
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = sysProcAttr(p.detach)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.pid, p.exited, p.waitErr = cmd, cmd.Process.Pid, exited, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Signal sends sig to the process; [ErrNotRunning] if it does not run.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%w: %s", ErrNotRunning, p.Name)
	}
	select {
	case <-exited:
		return fmt.Errorf("%w: %s", ErrNotRunning, p.Name)
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("cluster: signal %s: %w", p.Name, err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to exit. A process that does
// not run is left alone.
func (p *Proc) Kill() {
	exited := p.Exited()
	_ = p.Signal(syscall.SIGKILL)
	<-exited
}

// Stop sends SIGTERM and waits for the exit; at ctx's deadline it kills the
// process and returns [ErrKilled]. An exit other than 0 is an error (with
// the tail of the log). A process that does not run is not an error.
func (p *Proc) Stop(ctx context.Context) error {
	exited := p.Exited()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, ErrNotRunning) {
			return nil
		}
		// Exited between the check and the signal: report the exit below.
	}
	select {
	case <-exited:
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("%w: %s (%v)", ErrKilled, p.Name, ctx.Err())
	}
	if err := p.ExitErr(); err != nil {
		return fmt.Errorf("cluster: %s exited after SIGTERM: %w\n%s", p.Name, err, p.LogTail(10))
	}
	return nil
}

// WaitReady polls the process's readiness until it answers, the process
// exits, or ctx (bounded by Options.ReadyTimeout) ends: a NATS node answers
// /healthz?js-enabled-only=true on its monitoring port, the store a MongoDB
// ping, an edge or a worker /readyz. Errors carry the tail of the log.
func (p *Proc) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.readyTimeout)
	defer cancel()
	exited := p.Exited()
	start := time.Now()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err := probe(pctx, p)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("cluster: %s exited before it was ready (%v); log %s:\n%s", p.Name, p.ExitErr(), p.LogPath, p.LogTail(20))
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s not ready after %v: %v; log %s:\n%s", p.Name, time.Since(start).Round(time.Millisecond), err, p.LogPath, p.LogTail(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LogTail returns the last n lines of the process's log.
func (p *Proc) LogTail(n int) string {
	return tail(p.LogPath, n)
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const window = 16 << 10
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(log: %v)", err)
	}
	off := max(0, st.Size()-window)
	buf := make([]byte, st.Size()-off)
	nr, _ := f.ReadAt(buf, off)
	lines := strings.Split(strings.TrimRight(string(buf[:nr]), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// edgeProc is a `natter edge` running as its own process on the in-process
// target's NATS: the edge storm kills (SIGKILL) or stops (SIGTERM) and
// starts again.
type edgeProc struct {
	cmd    *exec.Cmd
	addr   string    // host:port it serves on
	ready  time.Time // when its "natter ready" line was read
	exited chan struct{}
	err    error         // cmd.Wait's, once exited is closed
	logged chan struct{} // closed when its output has all been read

	mu   sync.Mutex
	tail []string // its last log lines, for errors
}

// edgeLogLines is how many of an edge process's last log lines are kept.
const edgeLogLines = 40

var edgeReadyKV = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// errEdgeBind is an edge process that could not bind its address (the old
// one's socket not released yet).
var errEdgeBind = errors.New("bench: edge address in use")

// edgeArgs are the arguments of `natter edge` serving on addr with the
// in-process target's edge settings. The signing key goes in the
// environment (edgeEnv), not on the command line.
func (t *target) edgeArgs(addr string) []string {
	args := []string{"edge", "--nats-url", t.natsURL, "--http", addr,
		"--rate", fmt.Sprint(t.ecfg.Rate), "--burst", fmt.Sprint(t.ecfg.Burst), "--jwt-audience", t.aud,
		"--user-rate", "0", "--user-conns", "0", "--ip-conn-rate", "0", "--ip-conns", "0",
		"--shutdown-timeout", "60s", "--log-level", "info"}
	if t.ecfg.PingInterval > 0 {
		args = append(args, "--ping-interval", t.ecfg.PingInterval.String())
	}
	if t.ecfg.LameDuck > 0 {
		args = append(args, "--lame-duck", t.ecfg.LameDuck.String())
	}
	return args
}

// edgeEnv is the environment of an edge process: this process's without
// any NATTER_* variable (a fault hook or a setting meant for another
// process), plus the signing key as the edge's --jwt-secret (key id
// "default", the id of the target's key).
func (t *target) edgeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATTER_") {
			env = append(env, kv)
		}
	}
	return append(env, "NATTER_JWT_SECRET="+string(t.key.Secret))
}

// startEdgeProc starts `natter edge` from bin on addr and waits for its
// ready line (up to 2 minutes). A bind failure is errEdgeBind.
func (t *target) startEdgeProc(ctx context.Context, bin, addr string, verbose io.Writer) (*edgeProc, error) {
	p := &edgeProc{cmd: exec.Command(bin, t.edgeArgs(addr)...), exited: make(chan struct{}), logged: make(chan struct{})}
	p.cmd.Env = t.edgeEnv()
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	p.cmd.Stdout = pw
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s edge: %w", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); _ = pw.Close(); close(p.exited) }()
	readyCh := make(chan string, 1)
	go func() {
		defer close(p.logged)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.log(line)
			if verbose != nil {
				fmt.Fprintf(verbose, "edge %d: %s\n", p.cmd.Process.Pid, line)
			}
			if strings.Contains(line, `msg="natter ready"`) {
				for _, g := range edgeReadyKV.FindAllStringSubmatch(line, -1) {
					if g[1] == "http" {
						readyCh <- strings.Trim(g[2], `"`)
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	timer := time.NewTimer(2 * time.Minute)
	defer timer.Stop()
	select {
	case p.addr = <-readyCh:
		p.ready = time.Now()
		return p, nil
	case <-p.exited:
		<-p.logged // the pipe is closed once it exited: its last lines are in
		if strings.Contains(p.logTail(), "address already in use") {
			return nil, fmt.Errorf("%w: %s", errEdgeBind, addr)
		}
		return nil, fmt.Errorf("bench: edge process (%s %s) exited before ready: %v\n%s", bin, strings.Join(p.cmd.Args[1:], " "), p.err, p.logTail())
	case <-timer.C:
		p.kill()
		return nil, fmt.Errorf("bench: edge process not ready after 2m:\n%s", p.logTail())
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// restartEdgeProc starts a new edge process on addr, polling while the
// address is still in use, for up to bindWait.
func (t *target) restartEdgeProc(ctx context.Context, bin, addr string, bindWait time.Duration, verbose io.Writer) (*edgeProc, int, error) {
	deadline := time.Now().Add(bindWait)
	for try := 1; ; try++ {
		p, err := t.startEdgeProc(ctx, bin, addr, verbose)
		if !errors.Is(err, errEdgeBind) || time.Now().After(deadline) {
			return p, try, err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, try, ctx.Err()
		}
	}
}

func (p *edgeProc) log(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > edgeLogLines {
		p.tail = p.tail[len(p.tail)-edgeLogLines:]
	}
}

func (p *edgeProc) logTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

func (p *edgeProc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits until the process is gone.
func (p *edgeProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// term sends SIGTERM (a graceful stop: lame duck, then drain) and waits
// up to timeout for the exit, then kills it. It reports whether the
// process exited on its own.
func (p *edgeProc) term(timeout time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		p.kill()
		return false
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNATSSubcommandCutsFrozenNode: with "natter nats"'s default route
// pings, the other nodes close their routes to a node that froze (SIGSTOP:
// its connections stay open and nothing comes back) within a few seconds,
// instead of routing to it for a minute or more (nats-server's route pings
// are 30 s apart by default).
func TestNATSSubcommandCutsFrozenNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ports := make([]string, 3)
	for i := range ports {
		ports[i] = deadPort(t)
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, "nats://127.0.0.1:"+p)
	}
	nodes := make([]*proc, 3)
	for i := range nodes {
		nodes[i] = startProc(t, "nats", "--name", fmt.Sprintf("n%d", i+1), "--port", "-1", "--http-port", deadPort(t),
			"--cluster-port", ports[i], "--routes", strings.Join(routes, ","), "--store", filepath.Join(dir, fmt.Sprintf("n%d", i+1)))
	}
	remotes := func(p *proc) (map[string]bool, error) {
		resp, err := http.Get(p.url("/routez"))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var rz struct {
			Routes []struct {
				RemoteName string `json:"remote_name"`
			} `json:"routes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&rz); err != nil {
			return nil, err
		}
		names := map[string]bool{}
		for _, r := range rz.Routes {
			names[r.RemoteName] = true
		}
		return names, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pollUntil(t, ctx, "n1 routed to n2 and n3", func() error {
		names, err := remotes(nodes[0])
		if err != nil {
			return err
		}
		if !names["n2"] || !names["n3"] {
			return fmt.Errorf("n1's routes go to %v", names)
		}
		return nil
	})

	frozen := nodes[2]
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.cmd.Process.Signal(syscall.SIGCONT) })
	at := time.Now()
	cut, cancelCut := context.WithTimeout(ctx, 10*time.Second)
	defer cancelCut()
	pollUntil(t, cut, "n1's routes to the frozen n3 closed", func() error {
		names, err := remotes(nodes[0])
		if err != nil {
			return err
		}
		if names["n3"] {
			return fmt.Errorf("n1 still routes to n3 %v after SIGSTOP", time.Since(at).Round(time.Millisecond))
		}
		return nil
	})
	t.Logf("n1 closed its routes to the frozen n3 %v after SIGSTOP", time.Since(at).Round(time.Millisecond))
}

// TestNATSSubcommandRoutePingSettings: a route ping setting that cannot
// work exits 2 naming it.
func TestNATSSubcommandRoutePingSettings(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--route-ping-interval", "0s"},
		{"--route-max-pings-out", "0"},
	} {
		cmd := exec.Command(binary, append([]string{"nats", "--port", "-1", "--http-port", "0", "--store", t.TempDir()}, args...)...)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
			t.Fatalf("%v: exit %v, want 2\n%s", args, err, out)
		}
		if !strings.Contains(string(out), args[0]) {
			t.Fatalf("%v: the error does not name the setting:\n%s", args, out)
		}
	}
}

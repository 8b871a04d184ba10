package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/discovery"
)

// natter services lists the edge and every role of a running natter dev,
// as a table and as JSON; a bad flag is a usage error.
func TestServicesCommand(t *testing.T) {
	t.Parallel()
	p := startDev(t, t.TempDir())
	url := p.ready["nats"]
	names := []string{subjects.ServiceEdge}
	for _, r := range node.AllRoles {
		names = append(names, subjects.ServiceName(r))
	}

	var table string
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		out, err := exec.Command(binary, "services", "--nats-url", url, "--wait", "300ms").CombinedOutput()
		table = string(out)
		for _, n := range names {
			if !strings.Contains(table, n+" ") {
				return fmt.Errorf("natter services (%v) lacks %s:\n%s", err, n, table)
			}
		}
		if err != nil {
			return fmt.Errorf("natter services: %v:\n%s", err, table)
		}
		return nil
	})
	if n := strconv.Itoa(len(names)); !strings.Contains(table, n+" instance(s) of "+n+" service(s)") || !strings.Contains(table, "processed=") {
		t.Fatalf("table:\n%s", table)
	}

	out, err := exec.Command(binary, "services", "--nats-url", url, "--wait", "300ms", "--format", "json").Output()
	if err != nil {
		t.Fatalf("services --format json: %v", err)
	}
	var list []discovery.Instance
	if err := json.Unmarshal(out, &list); err != nil || len(list) != len(names) {
		t.Fatalf("json (%v): %s", err, out)
	}
	for _, in := range list {
		if in.Version != version || in.Metadata["mode"] != "dev" {
			t.Fatalf("instance %+v", in)
		}
	}

	cmd := exec.Command(binary, "services", "--nats-url", url, "--format", "xml")
	out, _ = cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("bad --format: exit %d, %q", code, out)
	}
}

package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestConfigDocCoversEveryFlag keeps docs/config.md in step with the flags:
// every flag and environment variable of every command is documented.
func TestConfigDocCoversEveryFlag(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	flagRe := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	envRe := regexp.MustCompile(`\[(NATTER_[A-Z_]+)\]`)
	for _, cmd := range [][]string{{"dev"}, {"edge"}, {"worker"}, {"streams", "apply"}, {"token"}, {"services"}, {"trace"}, {"nats"}, {"nats-auth"}, {"store"}, {"cluster", "up"}, {"cluster", "down"}, {"cluster", "status"}, {"backup"}, {"backup", "verify"}, {"backup", "list"}, {"restore"}, {"plan"}} {
		out, _ := exec.Command(binary, append(cmd, "--help")...).CombinedOutput()
		flags := flagRe.FindAllStringSubmatch(string(out), -1)
		if len(flags) == 0 {
			t.Fatalf("%v --help lists no flags:\n%s", cmd, out)
		}
		for _, f := range flags {
			if !strings.Contains(string(doc), "--"+f[1]) {
				t.Errorf("docs/config.md does not document --%s (natter %s)", f[1], strings.Join(cmd, " "))
			}
		}
		for _, e := range envRe.FindAllStringSubmatch(string(out), -1) {
			if !strings.Contains(string(doc), e[1]) {
				t.Errorf("docs/config.md does not document %s (natter %s)", e[1], strings.Join(cmd, " "))
			}
		}
	}
}

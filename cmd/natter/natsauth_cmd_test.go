package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/natsauth"
	"github.com/natter-im/natter/jetstream/natsembed"
)

// TestNATSAuthCommand: natter nats-auth makes a seed per tier (kept on a
// second run) and prints a configuration a server runs with: the edge's
// seed connects and may append to the log, not publish events; an unknown
// client is refused.
func TestNATSAuthCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	out, err := exec.Command(binary, "nats-auth", "--dir", keys).Output()
	if err != nil {
		t.Fatal(err)
	}
	again, err := exec.Command(binary, "nats-auth", "--dir", keys).Output()
	if err != nil || string(again) != string(out) {
		t.Fatalf("second run: %v; the configuration changed (seeds not kept)", err)
	}
	for _, tier := range natsauth.Tiers {
		if fi, err := os.Stat(natsauth.SeedFile(keys, tier)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s seed: %v, %v", tier, fi, err)
		}
	}
	conf := filepath.Join(dir, "auth.conf")
	if err := os.WriteFile(conf, out, 0o600); err != nil {
		t.Fatal(err)
	}
	base, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ns := testenv.StartNATS(t, func(c *natsembed.Config) { c.Base = base })
	if nc, err := nats.Connect(ns.ClientURL(), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client without a key connected")
	}
	auth, err := node.NATSAuthOptions(node.Config{NATSNkey: natsauth.SeedFile(keys, natsauth.TierEdge)})
	if err != nil {
		t.Fatal(err)
	}
	denied := make(chan error, 16)
	nc := testenv.Connect(t, ns.ClientURL(), append(auth, nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.TierEdge)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err }))...)
	if err := nc.Publish("im.msg.c1", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("im.evt.message_created.c1", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-denied:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "im.evt.message_created.c1") {
			t.Fatalf("first async error %v, want the denied event publish", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no permissions violation for the edge's event publish")
	}
	if out, err := exec.Command(binary, "nats-auth").CombinedOutput(); exitCodeOf(err) != exitUsage || !strings.Contains(string(out), "--dir") {
		t.Fatalf("without --dir: %v\n%s", err, out)
	}
}

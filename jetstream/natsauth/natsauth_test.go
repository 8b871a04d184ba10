package natsauth_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/natter-im/natter/internal/devpki"
	"github.com/natter-im/natter/jetstream/natsauth"
)

// TestRender: the rendered configuration parses with nats-server's own
// parser into one nkey user per tier in account NATTER with the table's
// permissions, JetStream on for the account, and TLS required.
func TestRender(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pubs, err := natsauth.EnsureKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := natsauth.EnsureKeys(filepath.Join(dir, "keys"))
	if err != nil || !maps.Equal(pubs, again) {
		t.Fatalf("EnsureKeys twice: %v, %v vs %v", err, again, pubs)
	}
	if fi, err := os.Stat(natsauth.SeedFile(filepath.Join(dir, "keys"), natsauth.TierEdge)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v, %v", fi, err)
	}
	ca, err := devpki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "n.crt"), filepath.Join(dir, "n.key")
	if err := pair.WriteFiles(cert, key); err != nil {
		t.Fatal(err)
	}
	conf, err := natsauth.Render(natsauth.ServerConfig{Users: pubs, TLSCert: cert, TLSKey: key})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	if o.TLSConfig == nil || o.TLSTimeout != 5 {
		t.Fatalf("tls: %v, timeout %v", o.TLSConfig, o.TLSTimeout)
	}
	if len(o.Nkeys) != len(natsauth.Tiers) {
		t.Fatalf("%d nkey users, want %d", len(o.Nkeys), len(natsauth.Tiers))
	}
	for _, u := range o.Nkeys {
		var tier natsauth.Tier
		for tr, pub := range pubs {
			if pub == u.Nkey {
				tier = tr
			}
		}
		if tier == "" {
			t.Fatalf("unknown user %s", u.Nkey)
		}
		if u.Account == nil || u.Account.Name != natsauth.Account {
			t.Errorf("%s: account %v", tier, u.Account)
		}
		want := natsauth.For(tier)
		if want.All {
			if u.Permissions != nil {
				t.Errorf("%s: permissions %+v, want none", tier, u.Permissions)
			}
			continue
		}
		if !slices.Equal(u.Permissions.Publish.Allow, want.Publish) || !slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe) {
			t.Errorf("%s: parsed %+v / %+v, want %v / %v", tier, u.Permissions.Publish, u.Permissions.Subscribe, want.Publish, want.Subscribe)
		}
		if (u.Permissions.Response != nil) != want.AllowResponses {
			t.Errorf("%s: allow_responses", tier)
		} else if r := u.Permissions.Response; r != nil && r.MaxMsgs != natsauth.ResponsesMax {
			t.Errorf("%s: allow_responses max %d, want %d", tier, r.MaxMsgs, natsauth.ResponsesMax)
		}
		if got := want.Server(); !slices.Equal(got.Publish.Allow, want.Publish) {
			t.Errorf("%s: Server() %+v", tier, got)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	pubs, err := natsauth.EnsureKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bad := map[natsauth.Tier]string{}
	for k, v := range pubs {
		bad[k] = v
	}
	bad[natsauth.TierWorker] = "not-a-key"
	for name, c := range map[string]natsauth.ServerConfig{
		"bad key":      {Users: bad},
		"missing tier": {Users: map[natsauth.Tier]string{natsauth.TierEdge: pubs[natsauth.TierEdge]}},
		"cert only":    {Users: pubs, TLSCert: "/c.pem"},
	} {
		if _, err := natsauth.Render(c); !errors.Is(err, natsauth.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(natsauth.SeedFile(dir, natsauth.TierEdge), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.EnsureKeys(dir); err == nil {
		t.Error("a garbage seed file was taken")
	}
}

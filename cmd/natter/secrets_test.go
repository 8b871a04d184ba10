package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/natsembed"
)

// TestSecretsNotLogged runs natter dev with every secret set (the JWT
// secret and the admin credential from files) at debug level, uses them
// (user tokens over REST and WebSocket, a forged one, natter admin ban with
// the credential from the environment, a call with a wrong credential),
// stops it, and checks that its whole log holds none of them.
func TestSecretsNotLogged(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	jwtSecret := "jwt-secret-for-the-log-test-0123456789"
	adminSecret := "admin-secret-for-the-log-test-0123456789"
	secretFile := filepath.Join(data, "jwt.secret")
	adminFile := filepath.Join(data, "admin.secret")
	if err := os.WriteFile(secretFile, []byte(jwtSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adminFile, []byte(adminSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startDev(t, data, "--jwt-secret-file", secretFile, "--admin-token-file", adminFile, "--log-level", "debug")

	out, err := exec.Command(binary, "token", "--jwt-secret-file", secretFile, "--user", "alice").Output()
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(out))
	if code, b := call(t, "GET", p.url("/v1/conversations/"), tok, ""); code != 200 {
		t.Fatalf("REST: %d %s", code, b)
	}
	forged := tok[:len(tok)-4] + "AAAA"
	if code, _ := call(t, "GET", p.url("/v1/conversations/"), forged, ""); code != 401 {
		t.Fatalf("forged token: %d", code)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.ready["http"]+protocol.Path, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	if code, b := call(t, "POST", p.url("/admin/v1/ban"), "wrong-"+adminSecret, `{"user":"bob"}`); code != 401 {
		t.Fatalf("wrong admin credential: %d %s", code, b)
	}
	cmd := exec.Command(binary, "admin", "ban", "--url", p.url(""), "--user", "bob", "--reason", "test", "--for", "1h")
	cmd.Env = append(os.Environ(), "NATTER_ADMIN_TOKEN="+adminSecret)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `"ban.bob"`) {
		t.Fatalf("natter admin ban: %v\n%s", err, out)
	}
	bobTok, err := exec.Command(binary, "token", "--jwt-secret-file", secretFile, "--user", "bob").Output()
	if err != nil {
		t.Fatal(err)
	}
	if code, b := call(t, "GET", p.url("/v1/conversations/"), strings.TrimSpace(string(bobTok)), ""); code != 403 || !strings.Contains(string(b), `"banned"`) {
		t.Fatalf("banned bob: %d %s", code, b)
	}
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
	log := p.stderr.String()
	if !strings.Contains(log, "natter stopped") || !strings.Contains(log, "admin call") {
		t.Fatalf("log incomplete:\n%s", log)
	}
	for name, s := range map[string]string{"JWT secret": jwtSecret, "admin credential": adminSecret, "user token": tok, "forged token": forged} {
		// A token is as good as a secret; its signature is its secret part.
		if i := strings.LastIndexByte(s, '.'); i > 0 {
			s = s[i+1:]
		}
		if strings.Contains(log, s) {
			t.Errorf("the log holds the %s", name)
		}
	}
}

// TestDevRefusesPublicAddressWithoutSecrets: natter dev's generated signing
// key is for a developer's machine; on a non-loopback address it refuses
// to start unless a key is given.
func TestDevRefusesPublicAddressWithoutSecrets(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		// A natter dev that starts would run until killed.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, binary, "dev", "--data", t.TempDir(), "--http", addr, "--nats-port", "-1").CombinedOutput()
		if code := exitCodeOf(err); code != exitUsage || !strings.Contains(string(out), "--jwt-secret-file") || !strings.Contains(string(out), "loopback") {
			t.Errorf("dev --http %s: exit %d, want %d naming the secrets to set:\n%s", addr, code, exitUsage, out)
		}
	}
}

func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestURLSecretsNotLogged runs natter worker with a NATS URL list whose
// every URL holds a password, and a MongoDB URI with one (from a file): the
// log (the ready line included) shows neither password, only the user
// names.
func TestURLSecretsNotLogged(t *testing.T) {
	t.Parallel()
	const natsPass, mongoPass = "nats-pass-for-the-log-test-0123", "mongo-pass-for-the-log-test-0123"
	ns := testenv.StartNATS(t, func(c *natsembed.Config) {
		c.Base = &server.Options{Users: []*server.User{{Username: "worker", Password: natsPass}}}
	})
	u, err := url.Parse(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	one := "nats://worker:" + natsPass + "@" + u.Host
	uriFile := filepath.Join(t.TempDir(), "mongo.uri")
	if err := os.WriteFile(uriFile, []byte("mongodb://natter:"+mongoPass+"@127.0.0.1:1,127.0.0.1:2/?replicaSet=rs0&authSource=admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// fanout needs no store: the worker starts and logs its ready line
	// with both URLs.
	p, _ := startTier(t, "worker", "--nats-url", one+","+one, "--mongo-uri-file", uriFile, "--admin", "127.0.0.1:0", "--roles", "fanout", "--log-level", "debug")
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
	log := p.stderr.String()
	if !strings.Contains(log, "nats://worker:xxxxx@") || !strings.Contains(log, "mongodb://natter:xxxxx@") {
		t.Fatalf("the ready line lacks the redacted URLs:\n%s", log)
	}
	for name, s := range map[string]string{"NATS password": natsPass, "MongoDB password": mongoPass} {
		if strings.Contains(log, s) {
			t.Errorf("the log holds the %s:\n%s", name, grepLine(log, s))
		}
	}
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

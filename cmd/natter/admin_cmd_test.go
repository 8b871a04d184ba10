package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
)

// TestAdminCommands: natter admin sessions, disconnect, erase and conv
// inspect|freeze|unfreeze|delete against natter dev: each prints the API's
// answer; an API error and a missing conv subcommand fail with a message.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	secret := "jwt-secret-for-the-admin-test-0123456789"
	adminSecret := "admin-secret-for-the-admin-test-0123456789"
	secretFile, adminFile := filepath.Join(data, "jwt.secret"), filepath.Join(data, "admin.secret")
	for f, s := range map[string]string{secretFile: secret, adminFile: adminSecret} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := startDev(t, data, "--jwt-secret-file", secretFile, "--admin-token-file", adminFile)
	tok, err := exec.Command(binary, "token", "--jwt-secret-file", secretFile, "--user", "alice", "--device", "phone").Output()
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+p.ready["http"]+protocol.Path, http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(tok))}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // hello
		t.Fatal(err)
	}
	admin := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"admin"}, append(args, "--url", p.url(""))...)...)
		cmd.Env = append(os.Environ(), "NATTER_ADMIN_TOKEN_FILE="+adminFile)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		args []string
		want string
		fail bool
	}{
		{[]string{"sessions", "--user", "alice"}, `"devices":["phone"]`, false},
		{[]string{"conv", "inspect", "--conv", "g_none"}, "404", true},
		{[]string{"conv", "freeze", "--conv", "g_x", "--reason", "r"}, `"frozen.g_x"`, false},
		{[]string{"conv", "unfreeze", "--conv", "g_x"}, `"frozen.g_x"`, false},
		{[]string{"conv"}, "want inspect, freeze, unfreeze, delete or retention", true},
		{[]string{"conv", "delete", "--conv", "g_none"}, "404", true},
		{[]string{"conv", "retention", "--conv", "g_none", "--days", "30"}, "404", true},
		{[]string{"conv", "retention", "--conv", "g_x", "--hold", "--release"}, "--hold and --release: give one", true},
		{[]string{"erase", "--user", "bob"}, `"tombstoned":0`, false},
		{[]string{"disconnect", "--user", "alice", "--device", "phone"}, `"closed":1`, false},
	} {
		out, err := admin(tc.args...)
		if (err != nil) != tc.fail || !strings.Contains(out, tc.want) {
			t.Errorf("natter admin %s: %v\n%s\nwant %q (fail %v)", strings.Join(tc.args, " "), err, out, tc.want, tc.fail)
		}
	}
	if _, _, err := ws.ReadMessage(); err != nil { // the bye
		t.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, protocol.CloseDisconnected) {
		t.Fatalf("after disconnect: %v, want close %d", err, protocol.CloseDisconnected)
	}
}

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/natter-im/natter/workers/push/pushtest"
)

// TestPushCredentialsNotLogged runs natter dev with every push provider's
// credentials from files at debug level, registers a device over REST,
// stops it, and checks that the log holds neither a key nor the device
// token; a key file that does not parse stops the start with exit 2 and a
// line naming the setting, not the file's contents.
func TestPushCredentialsNotLogged(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	apnsKey := pushtest.NewAPNs(t).Config().Key
	fcmSA := pushtest.NewFCM(t).ServiceAccount()
	vapid := pushtest.NewWebPush(t).Config().PrivateKey
	files := map[string][]byte{"apns.p8": apnsKey, "fcm.json": fcmSA, "vapid.pem": vapid}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secretFile := filepath.Join(data, "jwt.secret")
	if err := os.WriteFile(secretFile, []byte("jwt-secret-for-the-push-log-test-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startDev(t, data, "--jwt-secret-file", secretFile, "--log-level", "debug",
		"--push-apns-key-file", filepath.Join(data, "apns.p8"), "--push-apns-key-id", "KEY1234567", "--push-apns-team-id", "TEAM123456", "--push-apns-topic", "im.natter.app",
		"--push-fcm-credentials-file", filepath.Join(data, "fcm.json"),
		"--push-webpush-vapid-key-file", filepath.Join(data, "vapid.pem"), "--push-webpush-subject", "mailto:ops@natter.example")
	out, err := exec.Command(binary, "token", "--jwt-secret-file", secretFile, "--user", "alice", "--device", "phone").Output()
	if err != nil {
		t.Fatal(err)
	}
	deviceToken := pushtest.Token()
	if code, b := call(t, "PUT", p.url("/v1/push"), strings.TrimSpace(string(out)), `{"provider":"apns","token":"`+deviceToken+`"}`); code != 200 {
		t.Fatalf("PUT /v1/push: %d %s", code, b)
	}
	if code, _ := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
	log := p.stderr.String()
	if !strings.Contains(log, "push role") {
		t.Fatalf("no push role in the log:\n%s", log)
	}
	secrets := map[string]string{"device token": deviceToken}
	for name, b := range files {
		// The base64 lines of each key: any of them in the log is a leak.
		for _, line := range bytes.Split(b, []byte("\n")) {
			if l := string(bytes.TrimSpace(line)); len(l) > 40 && !strings.HasPrefix(l, "-----") {
				secrets[name] = l
			}
		}
	}
	for name, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log holds the %s", name)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.p8")
	if err := os.WriteFile(bad, []byte("not a key but a secret-looking-line-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "dev", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-port", "-1",
		"--push-apns-key-file", bad, "--push-apns-key-id", "K", "--push-apns-team-id", "T", "--push-apns-topic", "im.natter.app")
	msg, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(msg), "--push-* (NATTER_PUSH_*)") || strings.Contains(string(msg), "secret-looking-line") {
		t.Fatalf("bad APNs key: %v\n%s", err, msg)
	}
}

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBackupCmd runs the binary and returns its exit code, stdout and stderr.
func runBackupCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestBackupCommands: natter backup, backup list, backup verify and restore
// on a natter dev data dir, and their answers to bad input.
func TestBackupCommands(t *testing.T) {
	t.Parallel()
	data, backups := t.TempDir(), t.TempDir()
	// A running natter dev, by its URLs; then, stopped, by its data dir.
	dev := startDev(t, data)
	if code, out, errs := runBackupCmd(t, "backup", "--nats-url", dev.ready["nats"], "--mongo-uri", dev.ready["mongo"], "--dir", backups, "--progress", "lines"); code != 0 || !strings.Contains(out, "full backup ") || !strings.Contains(errs, "backup done") {
		t.Fatalf("backup: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := runBackupCmd(t, "backup", "--incremental", "--data", data, "--dir", backups); code != 2 || !strings.Contains(errs, "is used by") {
		t.Fatalf("backup --data of a running natter dev: exit %d, want 2 naming the lock\n%s", code, errs)
	}
	dev.stop(t)
	if code, out, errs := runBackupCmd(t, "backup", "--incremental", "--data", data, "--dir", backups, "--progress", "off"); code != 0 || !strings.Contains(out, "incremental backup ") || errs != "" {
		t.Fatalf("backup --incremental: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := runBackupCmd(t, "backup", "list", "--dir", backups); code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "\tincremental\tparent=") {
		t.Fatalf("backup list: exit %d\n%s", code, out)
	}
	if code, out, errs := runBackupCmd(t, "backup", "verify", "--dir", backups, "--progress", "off"); code != 0 || !strings.HasPrefix(out, "ok: 2 backup(s)") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := runBackupCmd(t, "restore", "--dir", backups, "--data", t.TempDir(), "--progress", "off"); code != 0 || !strings.HasPrefix(out, "restored ") {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errs)
	}
	// A corrupted file is named, exit 1.
	files, _ := filepath.Glob(filepath.Join(backups, "*-full", "streams", "KV_CURSORS.bin"))
	if len(files) != 1 {
		t.Fatalf("no KV_CURSORS.bin in the full backup: %v", files)
	}
	if err := os.WriteFile(files[0], []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runBackupCmd(t, "backup", "verify", "--dir", backups, "--progress", "off"); code != 1 || !strings.Contains(errs, "streams/KV_CURSORS.bin") {
		t.Fatalf("verify of a corrupted backup: exit %d, want 1 naming the file\n%s", code, errs)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no target", []string{"backup", "--data", data}, 2, "--dir (NATTER_BACKUP_DIR) or --s3-endpoint"},
		{"two targets", []string{"backup", "--dir", backups, "--s3-endpoint", "http://127.0.0.1:1", "--data", data}, 2, "give one"},
		{"no deployment", []string{"backup", "--dir", backups}, 2, "--nats-url (NATTER_NATS_URL) and --mongo-uri (NATTER_MONGO_URI), or --data"},
		{"bad s3 endpoint", []string{"backup", "verify", "--s3-endpoint", "ftp://x", "--s3-bucket", "b"}, 2, "s3 endpoint"},
		{"bad progress", []string{"backup", "verify", "--dir", backups, "--progress", "loud"}, 2, "--progress (NATTER_BACKUP_PROGRESS)"},
		{"no backup", []string{"restore", "--dir", t.TempDir(), "--data", t.TempDir()}, 1, "no backup found"},
		{"incremental without a full", []string{"backup", "--incremental", "--dir", t.TempDir(), "--data", t.TempDir()}, 1, "take a full backup first"},
		{"never started", []string{"backup", "--dir", t.TempDir(), "--data", t.TempDir()}, 1, "stream MSGS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, errs := runBackupCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("exit %d, want %d with one line naming %q:\n%s", code, tc.code, tc.want, errs)
			}
		})
	}
}

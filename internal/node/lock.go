package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in the data dir that a natter dev process holds an
// exclusive flock on while it runs, with its pid as content. The kernel
// releases the lock when the process exits, however it exits (SIGKILL
// included), so a stale file never blocks a restart.
const LockFile = "natter.lock"

// lockDataDir creates dir if needed and takes the lock of LockFile in it
// without waiting. It fails with ErrDataDirInUse (naming the dir and the
// holder's pid when the file has it) when another process, or another node
// of this one, holds it.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, settingErr(SettingData, "create data dir: %v", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, settingErr(SettingData, "lock data dir: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, settingErr(SettingData, "lock data dir: flock %s: %v", path, err)
		}
		holder := "another natter process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf("natter process %d", pid)
			}
		}
		abs, aerr := filepath.Abs(dir)
		if aerr != nil {
			abs = dir
		}
		return nil, &SettingError{Setting: SettingData, Err: fmt.Errorf("%w: %s is used by %s (it holds %s); stop it or choose another --data",
			ErrDataDirInUse, abs, holder, LockFile)}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// unlockDataDir releases the lock (closing the file releases the flock).
// The file stays: removing it would let a third process lock a new file
// while a second still waits on the old one.
func unlockDataDir(f *os.File) error {
	return f.Close()
}

// LockDataDir takes the lock of a data dir as natter dev does, for an
// operator command that starts the dir's embedded servers itself (natter
// backup and natter restore with --data): it fails with ErrDataDirInUse
// while natter dev runs on dir. Closing the file releases it.
func LockDataDir(dir string) (*os.File, error) { return lockDataDir(dir) }

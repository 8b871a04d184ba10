package certreload_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-im/natter/internal/certreload"
	"github.com/natter-im/natter/internal/devpki"
	"github.com/natter-im/natter/internal/testenv"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func issue(t *testing.T, ca *devpki.CA, host string) *devpki.Pair {
	t.Helper()
	p, err := ca.Issue([]string{host}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newCA(t *testing.T) *devpki.CA {
	t.Helper()
	ca, err := devpki.NewCA("test ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t)
	a, b := issue(t, ca, "a.example"), issue(t, ca, "b.example")
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if _, err := certreload.Load(certreload.Config{CertFile: cert}); !errors.Is(err, certreload.ErrNoFiles) {
		t.Errorf("no key file: %v", err)
	}
	if _, err := certreload.Load(certreload.Config{CertFile: cert, KeyFile: key}); err == nil || !strings.Contains(err.Error(), "c.pem") {
		t.Errorf("missing files: %v, want an error naming c.pem", err)
	}
	// A key of another certificate.
	if err := os.WriteFile(cert, a.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, b.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := certreload.Load(certreload.Config{CertFile: cert, KeyFile: key}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched pair: %v", err)
	}
}

// TestReload: a changed pair is served by the next handshake; a bad pair
// (mismatched, garbage, half written) keeps the previous one and is logged
// once; the good pair after it is taken.
func TestReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t)
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	first := issue(t, ca, "first.example")
	if err := first.WriteFiles(cert, key); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuf
	r, err := certreload.Load(certreload.Config{CertFile: cert, KeyFile: key, Interval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := served(); got != "first.example" {
		t.Fatalf("serving %q", got)
	}
	if swapped, err := r.Check(); swapped || err != nil {
		t.Fatalf("unchanged files: swapped %v, %v", swapped, err)
	}

	// A bad pair: the new certificate with the old key.
	second := issue(t, ca, "second.example")
	if err := devpki.WriteFile(cert, second.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if swapped, err := r.Check(); swapped || err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("mismatched pair: swapped %v, %v", swapped, err)
		}
	}
	if got := served(); got != "first.example" {
		t.Fatalf("after a bad pair serving %q, want the previous one", got)
	}
	if n := strings.Count(logs.String(), "tls certificate not reloaded"); n != 1 {
		t.Fatalf("bad pair logged %d times, want once:\n%s", n, logs.String())
	}
	// Garbage is refused the same way.
	if err := devpki.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if swapped, err := r.Check(); swapped || err == nil {
		t.Fatalf("garbage: swapped %v, %v", swapped, err)
	}
	if got := served(); got != "first.example" {
		t.Fatalf("after garbage serving %q", got)
	}

	// The watcher takes the good pair when it is complete.
	r.Start()
	defer r.Stop()
	if err := second.WriteFiles(cert, key); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if got := served(); got != "second.example" {
			return errors.New("still serving " + got)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "tls certificate reloaded") {
		t.Errorf("no reload logged:\n%s", logs.String())
	}
	r.Stop()
	r.Stop() // twice is fine
}

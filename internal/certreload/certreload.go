package certreload

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoFiles is returned by [Load] when the certificate or the key file is
// not named.
var ErrNoFiles = errors.New("certreload: both a certificate file and a key file are required")

// DefaultInterval is how often the files are checked when Config.Interval
// is zero.
const DefaultInterval = 5 * time.Second

// Config names the files and how often they are checked.
type Config struct {
	// CertFile is the PEM certificate chain (leaf first). Required.
	CertFile string
	// KeyFile is the PEM private key of the leaf. Required.
	KeyFile string
	// Interval is how often both files are read and compared with the pair
	// in use. Zero means 5s (DefaultInterval).
	Interval time.Duration
	// Logger; nil means discard.
	Logger *slog.Logger
}

// Reloader holds the pair in use and swaps it when the files change.
type Reloader struct {
	cfg Config
	cur atomic.Pointer[tls.Certificate]

	mu       sync.Mutex // guards the fields below (one check at a time)
	certPEM  []byte     // the files' contents last loaded
	keyPEM   []byte
	badCert  []byte // the contents last refused, so a bad pair is logged once
	badKey   []byte
	stop     chan struct{}
	stopOnce sync.Once
	started  atomic.Bool
	done     chan struct{}
}

// Load reads and checks the pair; an error names the file or the mismatch.
// Call [Reloader.Start] to watch the files.
func Load(cfg Config) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, ErrNoFiles
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	crt, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certreload: %s and %s: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	r.cur.Store(crt)
	r.certPEM, r.keyPEM = certPEM, keyPEM
	return r, nil
}

func (r *Reloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(r.cfg.CertFile); err != nil {
		return nil, nil, fmt.Errorf("certreload: certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(r.cfg.KeyFile); err != nil {
		return nil, nil, fmt.Errorf("certreload: key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// parse loads a pair and fills Leaf (the first certificate).
func parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	crt, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if crt.Leaf == nil {
		if crt.Leaf, err = x509.ParseCertificate(crt.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &crt, nil
}

// Certificate is the pair in use.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load() }

// GetCertificate is tls.Config.GetCertificate: the pair in use.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// TLSConfig is a server configuration that serves the pair in use (TLS 1.2
// and later).
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// Check reads the files once and, if either changed since the pair in use
// was loaded, loads them. It reports whether the pair was swapped; a
// changed pair that does not load is an error (logged once per content)
// and leaves the pair in use as it is.
func (r *Reloader) Check() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return false, err
	}
	if bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		return false, nil
	}
	crt, err := parse(certPEM, keyPEM)
	if err != nil {
		err = fmt.Errorf("certreload: %s and %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
		if !bytes.Equal(certPEM, r.badCert) || !bytes.Equal(keyPEM, r.badKey) {
			r.badCert, r.badKey = certPEM, keyPEM
			r.cfg.Logger.Error("tls certificate not reloaded; serving the previous one", "cert", r.cfg.CertFile, "key", r.cfg.KeyFile, "err", err)
		}
		return false, err
	}
	r.cur.Store(crt)
	r.certPEM, r.keyPEM = certPEM, keyPEM
	r.badCert, r.badKey = nil, nil
	r.cfg.Logger.Info("tls certificate reloaded", "cert", r.cfg.CertFile, "subject", crt.Leaf.Subject.String(),
		"not_after", crt.Leaf.NotAfter.UTC().Format(time.RFC3339), "serial", crt.Leaf.SerialNumber.String())
	return true, nil
}

// Start checks the files every Interval until [Reloader.Stop] (once: a
// second call does nothing). A read error (a file missing for a moment
// while it is replaced) is logged like a bad pair, once until it changes.
func (r *Reloader) Start() {
	if r.started.Swap(true) {
		return
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		var lastReadErr string
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			_, err := r.Check()
			var perr *os.PathError
			if errors.As(err, &perr) {
				if err.Error() != lastReadErr {
					r.cfg.Logger.Error("tls certificate not reloaded; serving the previous one", "cert", r.cfg.CertFile, "key", r.cfg.KeyFile, "err", err)
				}
				lastReadErr = err.Error()
				continue
			}
			lastReadErr = ""
		}
	}()
}

// Stop ends the watch started by [Reloader.Start] and waits for it. Safe to
// call twice, and without Start.
func (r *Reloader) Stop() {
	r.stopOnce.Do(func() { close(r.stop) })
	if r.started.Load() {
		<-r.done
	}
}

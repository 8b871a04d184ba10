package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// ferretMu serialises ferretdb.New, which sets package-level state: two
// embedded stores starting at once (parallel tests) would race.
var ferretMu sync.Mutex

// Embedded is an in-process FerretDB (SQLite backend) speaking the MongoDB
// wire protocol on a loopback port.
type Embedded struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// StartEmbedded runs FerretDB with its SQLite files under dir on a free
// loopback port. Its logs go to logger at ERROR only (it logs every
// connection at INFO and harmless unsupported commands such as endSessions at
// WARN).
func StartEmbedded(ctx context.Context, dir string, logger *slog.Logger) (*Embedded, error) {
	return StartEmbeddedAt(ctx, dir, "127.0.0.1:0", logger)
}

// StartEmbeddedAt is StartEmbedded listening on addr (host:port; port 0
// picks a free one). It is what "natter store" runs.
func StartEmbeddedAt(ctx context.Context, dir, addr string, logger *slog.Logger) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: embedded dir: %w", err)
	}
	probe := filepath.Join(dir, ".natter-write-probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("store: embedded dir %s is not writable: %w", dir, err)
	}
	_ = os.Remove(probe)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	quiet := slog.New(levelFilter{h: logger.Handler(), min: slog.LevelError})
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: embedded dir: %w", err)
	}
	ferretMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    quiet,
	})
	ferretMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("store: start embedded ferretdb: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &Embedded{uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		if err := f.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("embedded ferretdb stopped", "err", err)
		}
	}()
	return e, nil
}

// URI is the mongodb:// URI of the embedded store.
func (e *Embedded) URI() string { return e.uri }

// Stop shuts FerretDB down and waits for it, or for ctx.
func (e *Embedded) Stop(ctx context.Context) error {
	e.cancel()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("store: stop embedded ferretdb: %w", ctx.Err())
	}
}

type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

func (l levelFilter) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}
func (l levelFilter) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }
func (l levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{h: l.h.WithAttrs(a), min: l.min}
}
func (l levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{h: l.h.WithGroup(n), min: l.min}
}

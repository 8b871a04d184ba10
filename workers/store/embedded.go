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
	dir    string // absolute
	cancel context.CancelFunc
	done   chan struct{}
}

// StartEmbedded runs FerretDB with its SQLite files under dir on a free
// loopback port. Its logs go to logger at ERROR only (it logs every
// connection at INFO and harmless unsupported commands such as endSessions at
// WARN). SQLite runs in WAL mode with synchronous NORMAL: a crash of the
// process loses no insert that returned, a power loss or kernel crash can
// lose the last ones (see sqliteQuery). The unique _id index of every
// collection is rebuilt on the expression FerretDB's finds, updates and
// deletes by _id compare, so they search it instead of scanning the table:
// before FerretDB starts, and within a quarter of a second of a
// collection's creation while it runs (sqlite_ids.go).
func StartEmbedded(ctx context.Context, dir string, logger *slog.Logger) (*Embedded, error) {
	return StartEmbeddedAt(ctx, dir, "127.0.0.1:0", logger)
}

// StartEmbeddedAt is StartEmbedded listening on addr (host:port; port 0
// picks a free one). It is what "natter store" runs.
func StartEmbeddedAt(ctx context.Context, dir, addr string, logger *slog.Logger) (*Embedded, error) {
	return startEmbedded(ctx, dir, addr, sqliteQuery, logger)
}

// sqliteQuery is the query of the SQLite URL: the pragmas every SQLite
// connection of the embedded store runs (FerretDB adds auto_vacuum(none)).
// Measured with BenchmarkInsertMessages (docs/benchmarks.md):
//
//   - journal_mode(wal), busy_timeout(10000): FerretDB's defaults, kept.
//   - synchronous(normal) instead of SQLite's FULL: a commit no longer
//     waits for an fsync of the WAL; the WAL is synced at each checkpoint.
//     A crash of the process loses nothing (the WAL is written before the
//     commit returns); a power loss or kernel crash can roll the store back
//     to its last synced state, losing inserts the persist worker has
//     already acknowledged (JetStream's own default, a sync every 2 minutes,
//     has the same exposure). The database stays consistent either way.
//   - wal_autocheckpoint(10000) instead of 1,000 pages: checkpoints a 40 MB
//     WAL instead of 4 MB, so an index page changed by many inserts is
//     copied into the database once per checkpoint, not once per 4 MB.
//   - temp_store(memory): the statement journal of each multi-row INSERT
//     (a copy of every page it changes, kept to undo the statement) stays
//     in memory instead of going through a temporary file.
const sqliteQuery = "_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)" +
	"&_pragma=synchronous(normal)&_pragma=wal_autocheckpoint(10000)&_pragma=temp_store(memory)"

// startEmbedded is StartEmbeddedAt with the SQLite URL query given.
func startEmbedded(ctx context.Context, dir, addr, query string, logger *slog.Logger) (*Embedded, error) {
	return startEmbeddedIDs(ctx, dir, addr, query, true, logger)
}

// startEmbeddedIDs is startEmbedded; fixIDs false leaves FerretDB's _id
// indexes as FerretDB creates them (benchmarks of before; sqlite_ids.go).
func startEmbeddedIDs(ctx context.Context, dir, addr, query string, fixIDs bool, logger *slog.Logger) (*Embedded, error) {
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
	ids := newIDIndexer(abs, logger)
	if fixIDs {
		// Before FerretDB opens the files: a large table takes a while.
		if _, err := ids.pass(ctx); err != nil {
			logger.Warn("store: _id index not rebuilt, finds and updates by _id scan the table", "err", err)
		}
	}
	ferretMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: sqliteURL(abs, query),
		Logger:    quiet,
	})
	ferretMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("store: start embedded ferretdb: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &Embedded{uri: f.MongoDBURI(), dir: abs, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	if fixIDs {
		wg.Go(func() { ids.run(runCtx) })
	}
	go func() {
		defer close(e.done)
		if err := f.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("embedded ferretdb stopped", "err", err)
		}
		wg.Wait()
	}()
	return e, nil
}

func sqliteURL(absDir, query string) string {
	u := "file:" + absDir + "/"
	if query != "" {
		u += "?" + query
	}
	return u
}

// URI is the mongodb:// URI of the embedded store.
func (e *Embedded) URI() string { return e.uri }

// SQLiteDir is the directory of its SQLite files, for Config.SQLiteDir of
// a store on it in the same process.
func (e *Embedded) SQLiteDir() string { return e.dir }

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

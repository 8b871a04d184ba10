package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB uses, registered as "sqlite"
)

// The embedded store's _id lookups and the SQLite file.
//
// FerretDB v1.24 on SQLite keeps a collection as a table of JSON documents
// ("_ferretdb_sjson") and pushes an _id equality down to SQL as
//
//	SELECT _ferretdb_sjson FROM "t" WHERE _ferretdb_sjson->'$._id' = ?
//	UPDATE "t" SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?
//	DELETE FROM "t" WHERE _ferretdb_sjson->'$._id' IN (?, ...)
//
// (metadata.IDColumn), but creates the unique index of _id, "t__id_", on
// _ferretdb_sjson->"_id": the same value, another expression. SQLite uses
// an index on an expression only for that very expression, so every find,
// update and delete by _id read and parsed the whole table. Every update
// goes through that UPDATE, one per document, whatever its filter.
// BenchmarkIDLookup: UserConversations took 2-2.8 ms at 1,000 users and
// 17-19 ms at 10,000, an UpdateOne by _id 6-9 and 48-65 ms; 0.4-0.7 ms with
// the index.
//
// The embedded store rebuilds "t__id_" on idExpr: the same name, still unique,
// one index as before (no write costs more), and the plan of each of those
// statements becomes a SEARCH of the index. FerretDB names the SQLite index
// of its index "_id_" table+"__id_" and knows it by that name only (its
// metadata holds the key, {_id: 1}, not the SQL): listIndexes, createIndexes
// and dropIndexes (which refuses _id_) behave as before, dropping the
// collection drops the index with the table, and an older natter or a bare
// FerretDB use the rebuilt index as is.
//
// It does so in every database file of its directory before FerretDB
// opens them (an existing store: the rebuild of a large table takes
// a while, and nothing waits on its lock then), and then every
// idIndexInterval while FerretDB runs, for the tables of collections
// created since (small when first seen). A pass that finds the schema of a
// file unchanged since the last one stops there.

// idExpr is the expression FerretDB compares in an _id equality.
const idExpr = `_ferretdb_sjson->'$._id'`

// ferretMetaTable is FerretDB's table of collections (name, table_name,
// settings) in each database file.
const ferretMetaTable = "_ferretdb_collections"

// idIndexInterval is how often a running embedded store looks for tables
// whose _id index is still FerretDB's. A pass that finds nothing new opens
// the file, reads its schema version and closes it: ~0.65 ms of CPU, so
// every 250 ms it was 0.26% of a core of an idle natter dev. natter's own
// collections exist from store.Open on; this catches the others.
const idIndexInterval = 2 * time.Second

// idIndexMaxWait bounds the wait after failed passes.
const idIndexMaxWait = time.Minute

// idIndexMaxRows bounds the table a running store rebuilds the index of: the
// rebuild holds SQLite's write lock, and FerretDB's writers give up after
// busy_timeout (10 s); 50,000 rows take about 0.7 s. A larger one (its
// rebuild at start failed) waits for the next start.
const idIndexMaxRows = 50_000

// errTableTooLarge is a running store's refusal to rebuild a large table's
// index.
var errTableTooLarge = errors.New("more rows than a running store rebuilds the index of; rebuilt at its next start")

// idIndexQuery is the SQLite URL query of the connection that rebuilds the
// indexes: it waits for FerretDB's writes (WAL mode is the file's own).
const idIndexQuery = "_pragma=busy_timeout(10000)"

// idIndexName is the SQLite name of the index FerretDB creates for the
// collection index _id_ of table.
func idIndexName(table string) string { return table + "__id_" }

// idIndexSQL is the statement that creates the index of table on idExpr.
func idIndexSQL(table string) string {
	return "CREATE UNIQUE INDEX " + sqlName(idIndexName(table)) + " ON " + sqlName(table) + " (" + idExpr + ")"
}

// sqlName quotes an SQL identifier.
func sqlName(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// idIndexer rebuilds the _id indexes of the database files in dir.
type idIndexer struct {
	dir    string
	logger *slog.Logger
	// maxRows, when not 0, bounds the tables it rebuilds the index of.
	maxRows int
	// schema is the schema_version of each file after its last pass.
	schema map[string]int64
}

func newIDIndexer(dir string, logger *slog.Logger) *idIndexer {
	return &idIndexer{dir: dir, logger: logger, schema: map[string]int64{}}
}

// pass rebuilds every _id index still on FerretDB's expression, in every
// database file of the directory. It returns how many it rebuilt.
func (x *idIndexer) pass(ctx context.Context) (int, error) {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, f := range files {
		k, err := x.file(ctx, f)
		n += k
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(f), err))
		}
	}
	return n, errors.Join(errs...)
}

// run is pass every idIndexInterval until ctx ends; after a failed pass it
// waits twice as long as before, up to idIndexMaxWait.
func (x *idIndexer) run(ctx context.Context) {
	x.maxRows = idIndexMaxRows
	wait := idIndexInterval
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := x.pass(ctx); err != nil && ctx.Err() == nil {
			x.logger.Warn("store: _id index not rebuilt, finds and updates by _id scan the table", "err", err)
			wait = min(2*wait, idIndexMaxWait)
		} else {
			wait = idIndexInterval
		}
		t.Reset(wait)
	}
}

// file is pass on one database file. The connection is opened for the pass
// only: FerretDB removes the file of a dropped database.
func (x *idIndexer) file(ctx context.Context, path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?"+idIndexQuery)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var version int64
	if err := conn.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		return 0, err
	}
	if v, ok := x.schema[path]; ok && v == version {
		return 0, nil
	}
	tables, err := staleIDIndexes(ctx, conn)
	if err != nil {
		return 0, err
	}
	n := 0
	var large []error
	for _, table := range tables {
		start := time.Now()
		done, err := rebuildIDIndex(ctx, conn, table, x.maxRows)
		if errors.Is(err, errTableTooLarge) {
			large = append(large, fmt.Errorf("table %s: %w", table, err))
			continue
		}
		if err != nil {
			return n, fmt.Errorf("table %s: %w", table, err)
		}
		if done {
			n++
			// A new (empty) table's is news to no one; a large one's, at
			// the first start after an upgrade, delays the ready line.
			lv, took := slog.LevelDebug, time.Since(start)
			if took >= 100*time.Millisecond {
				lv = slog.LevelInfo
			}
			x.logger.Log(ctx, lv, "store: _id index rebuilt for lookups by _id", "file", filepath.Base(path), "table", table,
				"took", took.Round(time.Millisecond))
		}
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		return n, err
	}
	// Not again until the schema changes: a large table is left to the
	// next start, once reported.
	x.schema[path] = version
	return n, errors.Join(large...)
}

// staleIDIndexes lists the tables of FerretDB's collections whose _id index
// is not on idExpr. A file without FerretDB's metadata table yet (being
// created) has none.
func staleIDIndexes(ctx context.Context, conn *sql.Conn) ([]string, error) {
	var meta int
	err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, ferretMetaTable).Scan(&meta)
	if err != nil || meta == 0 {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, `SELECT c.table_name, coalesce(i.sql, '') FROM `+sqlName(ferretMetaTable)+` c
		JOIN sqlite_schema i ON i.type = 'index' AND i.tbl_name = c.table_name AND i.name = c.table_name || '__id_'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var stale []string
	for rows.Next() {
		var table, stmt string
		if err := rows.Scan(&table, &stmt); err != nil {
			return nil, err
		}
		if stmt != idIndexSQL(table) {
			stale = append(stale, table)
		}
	}
	return stale, rows.Err()
}

// rebuildIDIndex drops table's _id index and creates it again on idExpr, in
// one write transaction: no other writer sees the table without a unique
// _id index. It reports false if the index changed or went (the collection
// was dropped) since it was listed. A table of more than maxRows rows (when
// not 0) is an error.
func rebuildIDIndex(ctx context.Context, conn *sql.Conn, table string, maxRows int) (done bool, err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, err
	}
	defer func() {
		if !done || err != nil {
			// The transaction is given up whatever ctx says.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var stmt string
	err = conn.QueryRowContext(ctx, `SELECT coalesce(sql, '') FROM sqlite_schema WHERE type = 'index' AND name = ? AND tbl_name = ?`,
		idIndexName(table), table).Scan(&stmt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if stmt == idIndexSQL(table) {
		return false, nil
	}
	if maxRows > 0 {
		var rows int
		err := conn.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+sqlName(table)+" LIMIT ?)", maxRows+1).Scan(&rows)
		if err != nil {
			return false, err
		}
		if rows > maxRows {
			return false, fmt.Errorf("%w (%d rows)", errTableTooLarge, maxRows)
		}
	}
	if _, err := conn.ExecContext(ctx, "DROP INDEX "+sqlName(idIndexName(table))); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, idIndexSQL(table)); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, err
	}
	return true, nil
}

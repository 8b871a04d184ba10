package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
)

// Reads of many documents by _id straight from the embedded store's SQLite
// file.
//
// FerretDB v1 on SQLite pushes only a lone _id equality down to SQL: a find
// with _id $in scans and parses the whole table, so reading a user's
// conversation list was UserBuckets finds, one per bucket, then one per
// sealed part. Each find costs FerretDB's and the driver's work around one
// indexed SQLite lookup (~1 ms of CPU on the 2 shared cores, where a
// reconnect storm of 10,000 users with cold lists is 640,000 of them).
// A process that runs the embedded store itself (Config.SQLiteDir) reads
// those documents with one SQL statement on its file instead:
//
//	SELECT _ferretdb_sjson FROM "<table>" WHERE _ferretdb_sjson->'$._id' IN (?, ...)
//
// which the _id index on that very expression answers (sqlite_ids.go). The
// connection is read-only (query_only); SQLite's WAL gives each statement
// a snapshot of the committed transactions, and FerretDB commits every
// document write by itself, so it reads what a find would. The documents
// are FerretDB's JSON ("sjson": the values as JSON plus a "$s" schema
// key), which for the strings and integers of a list part decode as plain
// JSON. Anything unexpected (no table, a failed query) falls back to the
// finds.

// sqliteQueryOnly is the SQLite URL query of the direct reads.
const sqliteQueryOnly = "_pragma=busy_timeout(10000)&_pragma=query_only(1)"

// sqliteReader reads documents of one database's collections by _id.
type sqliteReader struct {
	db *sql.DB

	mu     sync.Mutex
	tables map[string]string // collection -> SQLite table
}

// openSQLiteReader opens the file of database in dir (FerretDB's
// "<database>.sqlite").
func openSQLiteReader(dir, database string) (*sqliteReader, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(abs, database+".sqlite")+"?"+sqliteQueryOnly)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return &sqliteReader{db: db, tables: map[string]string{}}, nil
}

func (r *sqliteReader) close() error { return r.db.Close() }

// table returns the SQLite table of coll.
func (r *sqliteReader) table(ctx context.Context, coll string) (string, error) {
	r.mu.Lock()
	t, ok := r.tables[coll]
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	err := r.db.QueryRowContext(ctx, `SELECT table_name FROM `+sqlName(ferretMetaTable)+` WHERE name = ?`, coll).Scan(&t)
	if err != nil {
		return "", fmt.Errorf("table of %s: %w", coll, err)
	}
	r.mu.Lock()
	r.tables[coll] = t
	r.mu.Unlock()
	return t, nil
}

// byID decodes the documents of coll whose _id is in ids, each into a new
// T, and returns them by their _id (id), the missing ones absent.
func byID[T any](ctx context.Context, r *sqliteReader, coll string, ids []string, id func(*T) string) (map[string]*T, error) {
	out := make(map[string]*T, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	table, err := r.table(ctx, coll)
	if err != nil {
		return nil, err
	}
	q, args := idsIn(`_ferretdb_sjson`, table, ids)
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		v := new(T)
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("decode %s document: %w", coll, err)
		}
		out[id(v)] = v
	}
	return out, rows.Err()
}

// sjsonList is a list part (bucketDoc or idList) as FerretDB stores it.
type sjsonList struct {
	ID     string   `json:"_id"`
	IDs    []string `json:"ids"`
	Sealed int      `json:"sealed"`
}

// readBucketsDirect is readBuckets in one statement, two with sealed set:
// the open parts, then their sealed parts.
func (s *Store) readBucketsDirect(ctx context.Context, ids []string, sealed bool) ([]bucket, error) {
	id := func(l *sjsonList) string { return l.ID }
	open, err := byID(ctx, s.direct, CollUserLists, ids, id)
	if err != nil {
		return nil, err
	}
	out := make([]bucket, len(ids))
	var parts []string
	for i, bid := range ids {
		l, ok := open[bid]
		if !ok {
			continue
		}
		out[i] = bucket{open: bucketDoc{ID: l.ID, IDs: l.IDs, Sealed: l.Sealed}, found: true}
		if !sealed {
			continue
		}
		out[i].sealed = make([][]string, l.Sealed)
		for k := range l.Sealed {
			parts = append(parts, sealedID(bid, k))
		}
	}
	if len(parts) == 0 {
		return out, nil
	}
	got, err := byID(ctx, s.direct, CollUserLists, parts, id)
	if err != nil {
		return nil, err
	}
	for i, bid := range ids {
		for k := range out[i].sealed {
			if p, ok := got[sealedID(bid, k)]; ok { // (a missing one reads as empty, as by find)
				out[i].sealed[k] = p.IDs
			}
		}
	}
	return out, nil
}

// presentDirect returns which of ids are _ids of coll's documents, in one
// statement that reads the _id index only.
func (s *Store) presentDirect(ctx context.Context, coll string, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	table, err := s.direct.table(ctx, coll)
	if err != nil {
		return nil, err
	}
	q, args := idsIn(idExpr, table, ids)
	rows, err := s.direct.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return nil, fmt.Errorf("decode %s _id: %w", coll, err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// idsIn is the statement selecting what of table's rows whose _id is one of
// ids (non-empty), and its arguments.
func idsIn(what, table string, ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, v := range ids {
		b, _ := json.Marshal(v) // FerretDB compares the _id's JSON (ids need no escaping: subjects.ValidID plus '#' and '.')
		args[i] = string(b)
	}
	return `SELECT ` + what + ` FROM ` + sqlName(table) + ` WHERE ` + idExpr + ` IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`, args
}

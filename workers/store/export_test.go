package store

import (
	"context"
	"log/slog"
	"time"
)

// SQLiteQuery is the SQLite URL query of natter's embedded store.
var SQLiteQuery = sqliteQuery

// StartEmbeddedQuery is StartEmbedded with the SQLite URL query given ("" is
// FerretDB's defaults), for benchmarks comparing settings.
func StartEmbeddedQuery(ctx context.Context, dir, query string, logger *slog.Logger) (*Embedded, error) {
	return startEmbedded(ctx, dir, "127.0.0.1:0", query, logger)
}

// OpenSeqIndex is Open creating conv_seq whatever the server (what natter
// did before it left the index out on FerretDB/SQLite).
func OpenSeqIndex(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, indexesAll)
}

// OpenNoIndexes is Open without creating any index.
func OpenNoIndexes(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, indexesNone)
}

// StartEmbeddedFerretIDs is StartEmbedded leaving FerretDB's _id indexes as
// FerretDB creates them (no rebuild on idExpr): the store before fix 5.
func StartEmbeddedFerretIDs(ctx context.Context, dir string, logger *slog.Logger) (*Embedded, error) {
	return startEmbeddedIDs(ctx, dir, "127.0.0.1:0", sqliteQuery, false, logger)
}

// IDIndexName and IDIndexSQL are the SQLite name of a table's _id index and
// the statement natter creates it with.
var (
	IDIndexName = idIndexName
	IDIndexSQL  = idIndexSQL
)

// RebuildIDIndexes is one pass of the embedded store's _id index rebuild over
// the database files of dir, refusing tables of more than maxRows rows (0:
// any size).
func RebuildIDIndexes(ctx context.Context, dir string, maxRows int) (int, error) {
	x := newIDIndexer(dir, slog.New(slog.DiscardHandler))
	x.maxRows = maxRows
	return x.pass(ctx)
}

// ErrTableTooLarge is errTableTooLarge.
var ErrTableTooLarge = errTableTooLarge

// BucketID is the _id of the user list bucket of user that holds conv.
var BucketID = bucketID

// CutCreates makes the batched direct creates of s stop, with cut's error,
// after writing the users' lists and before the conversations (a crash in
// between); nil restores them. Set it while no create runs.
func CutCreates(s *Store, cut func() error) { s.cutCreates = cut }

// EditBucket adds convs to (or removes them from) the user-list bucket
// _id bucket, as a member change does (fresh: they are new to it).
func EditBucket(ctx context.Context, s *Store, bucket string, convs []string, add, fresh bool) error {
	return s.editBuckets(ctx, bucketEdits{bucket: convs}, add, fresh)
}

// SetLockLease sets the lease of the locks s takes and breaks (LockLease).
// Set it before s is used.
func SetLockLease(s *Store, d time.Duration) { s.lease = d }

// FindsByIn makes s read many documents by _id with one $in find, as on
// MongoDB (on: lookups.go), or one find per _id (off), and stop reading
// the SQLite file directly. Set it before s is used.
func FindsByIn(s *Store, on bool) { s.inFinds, s.direct = on, nil }

// LookupPlan is SQLite's plan of a lookup by _id of coll through s's
// direct reads (Config.SQLiteDir).
func LookupPlan(ctx context.Context, s *Store, coll string) (string, error) {
	table, err := s.direct.table(ctx, coll)
	if err != nil {
		return "", err
	}
	var id, parent, unused int
	var detail string
	err = s.direct.db.QueryRowContext(ctx, `EXPLAIN QUERY PLAN SELECT `+idExpr+` FROM `+sqlName(table)+` WHERE `+idExpr+` IN (?, ?)`,
		`"a"`, `"b"`).Scan(&id, &parent, &unused, &detail)
	return detail, err
}

// Gate is the embedded store's write gate (gate.go) with turns bounded by
// hold.
type Gate struct{ g *writeGate }

func NewGate(hold time.Duration) Gate { return Gate{&writeGate{hold: hold}} }

// Do runs fn in the lane of the requests' writes, Bulk in the bulk lane.
func (g Gate) Do(ctx context.Context, fn func() error) error   { return g.g.do(ctx, fn) }
func (g Gate) Bulk(ctx context.Context, fn func() error) error { return g.g.bulk(ctx, fn) }

// GateBurst is gateBurst.
const GateBurst = gateBurst

// GateWaiting is how many writes wait at g.
func GateWaiting(g Gate) int {
	g.g.mu.Lock()
	defer g.g.mu.Unlock()
	return len(g.g.first) + len(g.g.bulkQ)
}

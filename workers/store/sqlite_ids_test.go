package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	_ "modernc.org/sqlite"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
)

// The SQL FerretDB v1.24.2 runs for an _id equality
// (internal/backends/sqlite/collection.go: Query with a FindOne's limit,
// UpdateAll, DeleteAll), table name in place of %s.
var ferretIDSQL = map[string]string{
	"find":   `SELECT  _ferretdb_sjson FROM "%s" WHERE _ferretdb_sjson->'$._id' = ? LIMIT ?`,
	"update": `UPDATE "%s" SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?`,
	"delete": `DELETE FROM "%s" WHERE _ferretdb_sjson->'$._id' IN (?, ?)`,
}

// ferretIDIndexSQL is the statement FerretDB creates a table's _id index with.
func ferretIDIndexSQL(table string) string {
	return fmt.Sprintf(`CREATE UNIQUE INDEX %q ON %q (_ferretdb_sjson->"_id")`, store.IDIndexName(table), table)
}

var natterColls = []string{store.CollMessages, store.CollConversations, store.CollCursors,
	store.CollMembers, store.CollMemberLists, store.CollUserLists, store.CollLocks, store.CollOutbox, store.CollBlocks, store.CollRetention}

// openSQLite opens the natter database file of an embedded store directly,
// as the store's own pass does.
func openSQLite(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "natter.sqlite")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// tableOf is the SQLite table of collection coll (FerretDB's metadata).
func tableOf(t *testing.T, db *sql.DB, coll string) string {
	t.Helper()
	table, err := tableOfErr(db, coll)
	if err != nil {
		t.Fatalf("table of %s: %v", coll, err)
	}
	return table
}

func tableOfErr(db *sql.DB, coll string) (string, error) {
	var table string
	err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table)
	return table, err
}

// indexSQL is the statement of index name in the schema ("" if none).
func indexSQL(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var stmt string
	err := db.QueryRow(`SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?`, name).Scan(&stmt)
	if errors.Is(err, sql.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return stmt
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	Query(q string, args ...any) (*sql.Rows, error)
}

// sqlPlan is SQLite's EXPLAIN QUERY PLAN of q, one detail per line.
func sqlPlan(t *testing.T, db querier, q string) string {
	t.Helper()
	args := make([]any, strings.Count(q, "?"))
	for i := range args {
		args[i] = `"x"`
	}
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// ferretPlan is FerretDB's explain of a find by _id on coll: the query plan
// of the SQL it runs.
func ferretPlan(t *testing.T, s *store.Store, coll string) string {
	t.Helper()
	var res bson.M
	err := s.DB().RunCommand(context.Background(), bson.D{{Key: "explain", Value: bson.D{
		{Key: "find", Value: coll}, {Key: "filter", Value: bson.D{{Key: "_id", Value: "x"}}}, {Key: "limit", Value: 1},
	}}}).Decode(&res)
	if err != nil {
		t.Fatalf("explain find on %s: %v", coll, err)
	}
	qp, _ := res["queryPlanner"].(bson.M)
	if qp == nil || qp["Plan"] == nil {
		return "" // no such collection (yet)
	}
	return fmt.Sprint(qp["Plan"])
}

// searches reports whether plan searches table by its _id index.
func searches(plan, table string) bool {
	return strings.Contains(plan, "SEARCH "+table+" USING INDEX "+store.IDIndexName(table)+" (")
}

// fill writes a document into each of natter's collections.
func fill(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateConversation(ctx, natter.Conversation{ID: "g_1", Kind: natter.KindGroup, CreatedBy: "alice",
		Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InsertMessages(ctx, []natter.Message{msg("g_1", 1), msg("g_1", 2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReadCursor(ctx, "bob", "g_1", 1); err != nil {
		t.Fatal(err)
	}
}

// waitSearch polls FerretDB's explain until the find by _id on coll searches
// its table's _id index. A find runs before each explain: an SQLite
// connection notices another's schema change when it next reads the
// database, which EXPLAIN QUERY PLAN does not do, so FerretDB's connection
// (the one last used, most likely the find's) explains with what it knew.
func waitSearch(t *testing.T, s *store.Store, db *sql.DB, coll string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := s.DB().Collection(coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: "x"}}).Err()
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			t.Fatal(err)
		}
		plan := ferretPlan(t, s, coll)
		table, err := tableOfErr(db, coll) // none while a dropped collection is not created again
		if err == nil && searches(plan, table) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("find by _id on %s still does not search the index: %q (table %q, %v); direct: %s; index %s", coll, plan, table, err,
				sqlPlan(t, db, fmt.Sprintf(ferretIDSQL["find"], table)), indexSQL(t, db, store.IDIndexName(table)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIDLookupsSearchIndex: on a running embedded store, every natter
// collection's _id index comes to be on the expression FerretDB's SQL
// compares, so FerretDB's find, update and delete by _id search it instead
// of scanning the table; FerretDB's own index operations, unique _id and
// collection drop keep working, and a collection created while FerretDB
// runs (and is written to) gets the index too.
func TestIDLookupsSearchIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openEmbeddedAt(t, dir, store.StartEmbedded)
	fill(t, s)
	db := openSQLite(t, dir)

	for _, coll := range natterColls {
		waitSearch(t, s, db, coll)
		table := tableOf(t, db, coll)
		if got := indexSQL(t, db, store.IDIndexName(table)); got != store.IDIndexSQL(table) {
			t.Fatalf("%s: index %q", coll, got)
		}
		for op, q := range ferretIDSQL {
			if plan := sqlPlan(t, db, fmt.Sprintf(q, table)); !searches(plan, table) {
				t.Fatalf("%s %s: plan %q, want a search of %s", coll, op, plan, store.IDIndexName(table))
			}
		}
	}
	// What FerretDB's own index made of them: a scan of the whole table.
	users := tableOf(t, db, store.CollUserLists)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX "` + store.IDIndexName(users) + `"`, ferretIDIndexSQL(users)} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for op, q := range ferretIDSQL {
		if plan := sqlPlan(t, tx, fmt.Sprintf(q, users)); !strings.HasPrefix(plan, "SCAN "+users) {
			t.Fatalf("users %s on FerretDB's index: plan %q, want a scan", op, plan)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// The running store rebuilds it again.
	waitSearch(t, s, db, store.CollUserLists)

	// FerretDB's index operations see only their indexes, as before.
	uc := s.DB().Collection(store.CollUserLists)
	names := func() []string {
		specs, err := uc.Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sp := range specs {
			out = append(out, sp.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); !slices.Equal(got, []string{"_id_"}) {
		t.Fatalf("users indexes %v", got)
	}
	if _, err := uc.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "convs", Value: 1}},
		Options: options.Index().SetName("by_convs")}); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"_id_", "by_convs"}) {
		t.Fatalf("users indexes after create %v", got)
	}
	if _, err := uc.Indexes().DropOne(ctx, "_id_"); err == nil {
		t.Fatal("dropping _id_ succeeded")
	}
	if _, err := uc.Indexes().DropAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"_id_"}) {
		t.Fatalf("users indexes after drop all %v", got)
	}
	if indexSQL(t, db, store.IDIndexName(users)) != store.IDIndexSQL(users) {
		t.Fatal("the _id index changed with dropIndexes")
	}
	// _id stays unique; find, update and delete by _id work.
	if _, err := uc.InsertOne(ctx, bson.D{{Key: "_id", Value: store.BucketID("bob", "g_1")}}); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second bob: %v, want a duplicate key error", err)
	}
	if convs, err := s.UserConversations(ctx, "bob"); err != nil || !slices.Equal(convs, []string{"g_1"}) {
		t.Fatalf("bob's convs %v %v", convs, err)
	}
	if err := s.SetReadCursor(ctx, "bob", "g_1", 7); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.ReadCursor(ctx, "bob", "g_1"); r != 7 {
		t.Fatalf("read cursor %d, want 7", r)
	}
	if res, err := uc.DeleteOne(ctx, bson.D{{Key: "_id", Value: store.BucketID("alice", "g_1")}}); err != nil || res.DeletedCount != 1 {
		t.Fatalf("delete alice: %+v %v", res, err)
	}
	if convs, _ := s.UserConversations(ctx, "alice"); len(convs) != 0 {
		t.Fatalf("alice after delete: %v", convs)
	}

	// Dropping the collection drops the table and its index; the collection
	// created again, while a writer uses it, gets the index again.
	if err := uc.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := indexSQL(t, db, store.IDIndexName(users)); got != "" {
		t.Fatalf("index left after the drop: %q", got)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		for i := 0; i < 20_000 && wctx.Err() == nil; i++ {
			if _, err := uc.UpdateOne(wctx, bson.D{{Key: "_id", Value: fmt.Sprintf("u%d", i%500)}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: i}}}}, options.Update().SetUpsert(true)); err != nil {
				if wctx.Err() == nil {
					werr = err
				}
				return
			}
		}
	})
	waitSearch(t, s, db, store.CollUserLists)
	stop()
	wg.Wait()
	if werr != nil {
		t.Fatalf("writes while the index was rebuilt: %v", werr)
	}
}

// TestIDIndexesOnRestart: a store written by FerretDB's indexes alone (as
// before natter rebuilt them) scans on a find by _id; started by
// StartEmbedded, it searches from the first request (the rebuild runs before
// FerretDB starts), keeps its data and unique _id; a second restart finds
// nothing to change.
func TestIDIndexesOnRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db := openSQLite(t, dir)

	start := func(round int) (*store.Embedded, *store.Store) {
		start := store.StartEmbedded
		if round == 0 {
			start = store.StartEmbeddedFerretIDs
		}
		emb, err := start(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(ctx, store.Config{URI: emb.URI()})
		if err != nil {
			t.Fatal(err)
		}
		return emb, s
	}
	for round := range 3 {
		emb, s := start(round)
		if round == 0 {
			fill(t, s)
		}
		for _, coll := range natterColls {
			table := tableOf(t, db, coll)
			plan := ferretPlan(t, s, coll)
			stmt := indexSQL(t, db, store.IDIndexName(table))
			if round == 0 {
				if searches(plan, table) || stmt != ferretIDIndexSQL(table) {
					t.Fatalf("round 0 %s: plan %q index %q, want FerretDB's", coll, plan, stmt)
				}
				continue
			}
			if !searches(plan, table) || stmt != store.IDIndexSQL(table) {
				t.Fatalf("round %d %s: plan %q index %q", round, coll, plan, stmt)
			}
		}
		if convs, err := s.UserConversations(ctx, "bob"); err != nil || !slices.Equal(convs, []string{"g_1"}) {
			t.Fatalf("round %d: bob's convs %v %v", round, convs, err)
		}
		if n, err := s.InsertMessages(ctx, []natter.Message{msg("g_1", 2), msg("g_1", uint64(3+round))}); err != nil || n != 1 {
			t.Fatalf("round %d: redelivery stored %d (%v), want only the new one", round, n, err)
		}
		_ = s.Close(ctx)
		if err := emb.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIDIndexLargeTableWaits: while FerretDB runs, a table larger than the
// bound keeps FerretDB's index (the rebuild would hold the write lock for
// long), with an error saying so; smaller ones and the pass at start
// (no bound) rebuild it.
func TestIDIndexLargeTableWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openEmbeddedAt(t, dir, store.StartEmbeddedFerretIDs)
	fill(t, s) // 2 messages, 1 conversation, 1 cursor, 2 memberships, 2 user lists, a head and a chunk
	if _, err := s.InsertMessages(ctx, []natter.Message{msg("g_1", 3), msg("g_1", 4)}); err != nil {
		t.Fatal(err)
	}
	db := openSQLite(t, dir)
	n, err := store.RebuildIDIndexes(ctx, dir, 3)
	// every table but messages: the (empty) archive blocks among them.
	if n != len(natterColls)-1 || !errors.Is(err, store.ErrTableTooLarge) || !strings.Contains(err.Error(), tableOf(t, db, store.CollMessages)) {
		t.Fatalf("pass with bound 3: rebuilt %d, err %v; want %d and messages too large", n, err, len(natterColls)-1)
	}
	messages := tableOf(t, db, store.CollMessages)
	if got := indexSQL(t, db, store.IDIndexName(messages)); got != ferretIDIndexSQL(messages) {
		t.Fatalf("messages index %q, want FerretDB's", got)
	}
	if n, err := store.RebuildIDIndexes(ctx, dir, 0); n != 1 || err != nil {
		t.Fatalf("pass without bound: rebuilt %d, err %v; want messages", n, err)
	}
	waitSearch(t, s, db, store.CollMessages)
	if n, err := store.RebuildIDIndexes(ctx, dir, 0); n != 0 || err != nil {
		t.Fatalf("third pass: rebuilt %d, err %v; want nothing to do", n, err)
	}
}

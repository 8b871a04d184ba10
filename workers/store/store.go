package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.mongodb.org/mongo-driver/mongo/writeconcern"
)

// Collection names.
const (
	CollMessages      = "messages"
	CollConversations = "conversations"
	CollUsers         = "users"
	CollCursors       = "cursors"
	// CollBlocks holds the archive's blocks (archive.go).
	CollBlocks = "msgblocks"
)

// Config of a [Store].
type Config struct {
	// URI is the mongodb:// or mongodb+srv:// URI, credentials and TLS
	// options included. Required.
	URI string
	// Database name. Empty means "natter".
	Database string
	// ConnectTimeout bounds connect plus the first ping. Zero means 10s.
	ConnectTimeout time.Duration
	// HistoryReadPreference is used for archived history reads: "primary",
	// "primaryPreferred", "secondary", "secondaryPreferred" or "nearest".
	// Empty means "secondaryPreferred" (writes always go to the primary).
	HistoryReadPreference string
	// Monitor, when set, sees every command the store sends (tests and
	// tracing). Nil means none.
	Monitor *event.CommandMonitor
	// SQLiteDir is the directory of the SQLite files of the embedded
	// FerretDB that URI is on, when this process runs it
	// ([Embedded.SQLiteDir]). Set, the store reads a conversation list in
	// two SQL statements on the file (sqlite_reads.go) instead of one
	// FerretDB find per part; its statements still see every committed
	// write. Empty means every read goes through URI.
	SQLiteDir string
}

// Store is the MongoDB store of record.
type Store struct {
	client  *mongo.Client
	db      *mongo.Database
	msgs    *mongo.Collection
	history *mongo.Collection // msgs with the history read preference
	blocks  *mongo.Collection
	// historyBlocks is blocks with the history read preference.
	historyBlocks *mongo.Collection
	convs         *mongo.Collection
	users         *mongo.Collection // before the membership documents (migrate.go)
	cursors       *mongo.Collection
	members       *mongo.Collection
	mlists        *mongo.Collection
	ulists        *mongo.Collection
	locks         *mongo.Collection
	outbox        *mongo.Collection
	// creates batches the direct creates in flight (creates.go), pulls
	// the conversation_created events published (outbox.go).
	creates batcher[createReq]
	pulls   batcher[pull]
	// cutCreates, when set (tests), ends a create batch with its error
	// after the lists are written: a crash before the documents.
	cutCreates func() error
	// lease is the lease of a lock: LockLease (tests shorten it).
	lease time.Duration
	// direct reads the embedded store's file (Config.SQLiteDir; nil:
	// none).
	direct *sqliteReader
	// wgate orders the write commands on the embedded store (gate.go);
	// nil (open) on any other.
	wgate *writeGate
	// inFinds: the server indexes an _id $in (any but FerretDB): many
	// documents by _id are read by one find (lookups.go).
	inFinds bool
}

// Open connects, pings and ensures the indexes. On FerretDB v1 with its
// SQLite backend (the embedded store) the messages collection gets no
// conv_seq index, and one left by an earlier version is dropped: that
// backend reads no index but _id's, so conv_seq only cost writes (about half
// of an insert's disk writes and time on a grown store; docs/benchmarks.md).
// There it also creates natter's collections up front, so the embedded store
// indexes their _id for lookups while they are empty (sqlite_ids.go).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, indexesAuto)
}

// indexMode says which indexes open ensures.
type indexMode int

const (
	indexesAuto indexMode = iota // those the server can use (Open)
	indexesAll                   // conv_seq even on FerretDB/SQLite (benchmarks)
	indexesNone                  // none (benchmarks)
)

func open(ctx context.Context, cfg Config, mode indexMode) (*Store, error) {
	if cfg.Database == "" {
		cfg.Database = "natter"
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	rp, err := readPref(cfg.HistoryReadPreference)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	opts := options.Client().ApplyURI(cfg.URI).
		SetServerSelectionTimeout(cfg.ConnectTimeout).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteConcern(writeconcern.Majority()).
		SetAppName("natter")
	if cfg.Monitor != nil {
		opts.SetMonitor(cfg.Monitor)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("store: mongo uri: %w", err)
	}
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("store: ping: %w", err)
	}
	db := client.Database(cfg.Database)
	s := &Store{
		client:        client,
		db:            db,
		msgs:          db.Collection(CollMessages),
		history:       db.Collection(CollMessages, options.Collection().SetReadPreference(rp)),
		blocks:        db.Collection(CollBlocks),
		historyBlocks: db.Collection(CollBlocks, options.Collection().SetReadPreference(rp)),
		convs:         db.Collection(CollConversations),
		users:         db.Collection(CollUsers),
		cursors:       db.Collection(CollCursors),
		members:       db.Collection(CollMembers),
		mlists:        db.Collection(CollMemberLists),
		ulists:        db.Collection(CollUserLists),
		locks:         db.Collection(CollLocks),
		outbox:        db.Collection(CollOutbox),
		lease:         LockLease,
	}
	s.creates = batcher[createReq]{writers: createWriters, max: maxCreateBatch, write: s.createBatch}
	s.pulls = batcher[pull]{writers: 1, max: maxPullBatch, write: s.pullBatch}
	if mode == indexesNone {
		return s, nil
	}
	if err := s.ensureIndexes(ctx, mode); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := s.migrateMembers(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	if cfg.SQLiteDir != "" {
		if s.direct, err = openSQLiteReader(cfg.SQLiteDir, cfg.Database); err != nil {
			_ = client.Disconnect(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("store: open %s: %w", cfg.SQLiteDir, err)
		}
		// The tables Open just created get their _id index now rather
		// than at the embedded store's next pass (up to idIndexInterval
		// later, while the first requests' lookups would scan them). A
		// failure is left to that pass.
		x := newIDIndexer(cfg.SQLiteDir, slog.New(slog.DiscardHandler))
		x.maxRows = idIndexMaxRows
		_, _ = x.pass(ctx)
	}
	return s, nil
}

func readPref(name string) (*readpref.ReadPref, error) {
	switch name {
	case "", "secondaryPreferred":
		return readpref.SecondaryPreferred(), nil
	case "primary":
		return readpref.Primary(), nil
	case "primaryPreferred":
		return readpref.PrimaryPreferred(), nil
	case "secondary":
		return readpref.Secondary(), nil
	case "nearest":
		return readpref.Nearest(), nil
	}
	return nil, fmt.Errorf("store: unknown read preference %q", name)
}

func (s *Store) ensureIndexes(ctx context.Context, mode indexMode) error {
	// Sparse: only conversations with a pending event have outbox.0, so
	// the outbox sweep reads a small index, not the collection. First: on
	// FerretDB it opens the database, after which the startup warnings
	// that ferretSQLite reads name the backend.
	_, err := s.convs.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "outbox.0.at", Value: 1}},
		Options: options.Index().SetName("outbox_at").SetSparse(true),
	})
	if err != nil {
		return fmt.Errorf("store: index conversations outbox_at: %w", err)
	}
	s.inFinds = !s.ferret(ctx)
	if mode == indexesAuto && s.ferretSQLite(ctx) {
		s.wgate = newWriteGate()
		if err := s.createCollections(ctx); err != nil {
			return err
		}
		return s.dropSeqIndex(ctx)
	}
	_, err = s.msgs.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "conv", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetName(seqIndex).SetUnique(true),
	})
	if err != nil {
		return fmt.Errorf("store: index messages conv_seq: %w", err)
	}
	return nil
}

// Ping checks the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close disconnects.
func (s *Store) Close(ctx context.Context) error {
	if s.direct != nil {
		_ = s.direct.close()
	}
	return s.client.Disconnect(ctx)
}

// Client is the underlying driver client (for operator tools and tests).
func (s *Store) Client() *mongo.Client { return s.client }

// DB is the natter database.
func (s *Store) DB() *mongo.Database { return s.db }

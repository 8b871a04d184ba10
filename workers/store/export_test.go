package store

import (
	"context"
	"log/slog"
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

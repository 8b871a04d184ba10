package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// seqIndex is the unique {conv: 1, seq: 1} index of the messages collection.
const seqIndex = "conv_seq"

// ferretSQLite reports whether the server is FerretDB v1 on its SQLite
// backend (the embedded store, and "natter store"). That backend pushes only
// an _id equality filter down to SQL and never reads a secondary index, so
// conv_seq there is write cost only. FerretDB marks itself with
// buildInfo.ferretdbVersion and names its backend in the startup warnings
// ("Powered by FerretDB v1.24.2 and SQLite 3.46.0."); FerretDB v2 has no
// SQLite backend. Any doubt answers false, which keeps the index.
func (s *Store) ferretSQLite(ctx context.Context) bool {
	if !s.ferret(ctx) {
		return false
	}
	admin := s.client.Database("admin")
	var log struct {
		Log []string `bson:"log"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "getLog", Value: "startupWarnings"}}).Decode(&log); err != nil {
		return false
	}
	for _, line := range log.Log {
		if strings.Contains(line, "Powered by FerretDB") && strings.Contains(line, " and SQLite ") {
			return true
		}
	}
	return false
}

// ferret reports whether the server is FerretDB (buildInfo.ferretdbVersion);
// any doubt answers true (the cautious way: one find per _id).
func (s *Store) ferret(ctx context.Context) bool {
	var info bson.M
	if err := s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return true
	}
	_, ok := info["ferretdbVersion"]
	return ok
}

// dropSeqIndex drops conv_seq where an earlier natter created it on
// FerretDB/SQLite.
func (s *Store) dropSeqIndex(ctx context.Context) error {
	specs, err := s.msgs.Indexes().ListSpecifications(ctx)
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == 26 { // NamespaceNotFound: no messages yet
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: list messages indexes: %w", err)
	}
	for _, sp := range specs {
		if sp.Name == seqIndex {
			if _, err := s.msgs.Indexes().DropOne(ctx, seqIndex); err != nil {
				return fmt.Errorf("store: drop messages index conv_seq: %w", err)
			}
		}
	}
	return nil
}

// createCollections creates natter's collections that do not exist yet, so
// their tables exist, empty, from Open on: the embedded store rebuilds the
// _id index of a new table within idIndexInterval (sqlite_ids.go), before the
// first traffic rather than after a first large write (a group of 1,000
// members creates 1,000 users and updates each by _id).
func (s *Store) createCollections(ctx context.Context) error {
	for _, name := range []string{CollMessages, CollBlocks, CollCursors, CollMembers, CollMemberLists, CollUserLists, CollLocks, CollOutbox, CollRetention} {
		err := s.db.CreateCollection(ctx, name)
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == 48 { // NamespaceExists
			continue
		}
		if err != nil {
			return fmt.Errorf("store: create collection %s: %w", name, err)
		}
	}
	return nil
}

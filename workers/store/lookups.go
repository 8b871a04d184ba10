package store

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Lookups of many documents by _id, the cheapest way the server allows:
//
//   - the embedded store run by this process (Config.SQLiteDir): one SQL
//     statement on its file (sqlite_reads.go);
//   - a server that indexes an _id $in (MongoDB: any server but FerretDB):
//     one find;
//   - FerretDB otherwise (its SQLite backend pushes down only a lone _id
//     equality: an $in reads and parses the whole collection): one find
//     per _id, up to parallelism at a time.
//
// A direct read that fails (no table yet, the file gone) falls back to
// the finds.

// present returns which of ids are _ids of documents of coll (named
// name).
func (s *Store) present(ctx context.Context, coll *mongo.Collection, ids []string) (map[string]bool, error) {
	if s.direct != nil {
		out, err := s.presentDirect(ctx, coll.Name(), ids)
		if err == nil || ctx.Err() != nil {
			return out, err
		}
	}
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if s.inFinds {
		cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
			options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", coll.Name(), err)
		}
		var docs []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("find %s: %w", coll.Name(), err)
		}
		for _, d := range docs {
			out[d.ID] = true
		}
		return out, nil
	}
	found := make([]bool, len(ids))
	err := forEach(len(ids), func(i int) error {
		var d struct {
			ID string `bson:"_id"`
		}
		var err error
		found[i], err = findByID(ctx, coll, ids[i], &d)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		if found[i] {
			out[id] = true
		}
	}
	return out, nil
}

// findIn decodes the documents of coll whose _id is in ids into T, by
// _id (id), with one $in find (s.inFinds).
func findIn[T any](ctx context.Context, coll *mongo.Collection, ids []string, id func(*T) string) (map[string]*T, error) {
	out := make(map[string]*T, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		v := new(T)
		if err := cur.Decode(v); err != nil {
			return nil, err
		}
		out[id(v)] = v
	}
	return out, cur.Err()
}

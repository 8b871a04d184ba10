package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/natter-im/natter/workers/store"
)

// BenchmarkIDLookup is a find by _id (Store.UserConversations) and an update
// by _id (UpdateOne $set on users) on the embedded store with users user
// documents, each in 5 conversations:
//
//		go test -run '^$' -bench 'IDLookup' ./workers/store/
//
//	  - index: ferret (the _id index as FerretDB creates it, on an expression
//	    its SQL does not use: the store before fix 5) or natter (rebuilt on
//	    FerretDB's _id expression, what StartEmbedded does).
func BenchmarkIDLookup(b *testing.B) {
	for _, users := range []int{1_000, 10_000} {
		b.Run("users="+kilo(users), func(b *testing.B) {
			for _, index := range []string{"ferret", "natter"} {
				b.Run("index="+index, func(b *testing.B) {
					for _, op := range []string{"find", "update"} {
						b.Run("op="+op, func(b *testing.B) { benchIDLookup(b, users, index, op) })
					}
				})
			}
		})
	}
}

func benchIDLookup(b *testing.B, users int, index, op string) {
	ctx := context.Background()
	dir := b.TempDir()
	// Filled by FerretDB alone, then started as the variant says: StartEmbedded
	// rebuilds the index before FerretDB starts.
	emb, err := store.StartEmbeddedFerretIDs(ctx, dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{URI: emb.URI()})
	if err != nil {
		b.Fatal(err)
	}
	coll := st.DB().Collection(store.CollUsers)
	for i := 0; i < users; i += 1000 {
		docs := make([]any, 0, 1000)
		for j := i; j < min(i+1000, users); j++ {
			convs := bson.A{}
			for k := range 5 {
				convs = append(convs, fmt.Sprintf("g_%d", (j+k*997)%2000))
			}
			docs = append(docs, bson.D{{Key: "_id", Value: benchUser(j)}, {Key: "convs", Value: convs}})
		}
		if _, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
			b.Fatal(err)
		}
	}
	closeBench(b, emb, st)
	start := store.StartEmbeddedFerretIDs
	if index == "natter" {
		start = store.StartEmbedded
	}
	if emb, err = start(ctx, dir, nil); err != nil {
		b.Fatal(err)
	}
	if st, err = store.Open(ctx, store.Config{URI: emb.URI()}); err != nil {
		b.Fatal(err)
	}
	defer closeBench(b, emb, st)
	coll = st.DB().Collection(store.CollUsers)
	i := 0
	var took time.Duration
	for b.Loop() {
		i = (i + 7919) % users
		t0 := time.Now()
		switch op {
		case "find":
			convs, err := st.UserConversations(ctx, benchUser(i))
			if err != nil || len(convs) != 5 {
				b.Fatalf("%s: %v %v", benchUser(i), convs, err)
			}
		case "update":
			res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: benchUser(i)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "seen", Value: i}}}})
			if err != nil || res.MatchedCount != 1 {
				b.Fatalf("%s: %+v %v", benchUser(i), res, err)
			}
		}
		took += time.Since(t0)
	}
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/op")
}

func benchUser(i int) string { return fmt.Sprintf("user%06d", i) }

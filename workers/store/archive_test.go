package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
	"github.com/natter-im/natter/workers/store/storetest"
)

// TestArchiveBlockFormats: a block written now (the block codec) and one in
// the first format (each message's JSON after its length, a uvarint, in a
// binary "msgs") read back as the same messages.
func TestArchiveBlockFormats(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	mk := func(conv string) []natter.Message {
		msgs := make([]natter.Message, store.BlockSize)
		for i := range msgs {
			seq := uint64(store.BlockSize + 1 + i)
			msgs[i] = natter.Message{ID: fmt.Sprintf("m_%s%d", conv, seq), Conv: conv, Seq: seq, From: "u" + fmt.Sprint(i%3), Cmid: fmt.Sprint("c", seq),
				Type: natter.TypeText, Body: fmt.Sprintf("body <%d> \"é\"", i), TS: 1_700_000_000_000 + int64(i*i)}
		}
		return msgs
	}
	now, old := mk("g_new"), mk("g_old")
	if n, err := st.InsertBlocks(ctx, []store.Block{{Conv: "g_new", K: 1, Msgs: now}}); err != nil || n != 1 {
		t.Fatalf("insert: %d %v", n, err)
	}
	var raw []byte
	for i := range old {
		b, _ := json.Marshal(&old[i])
		raw = binary.AppendUvarint(raw, uint64(len(b)))
		raw = append(raw, b...)
	}
	if _, err := st.DB().Collection(store.CollBlocks).InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("g_old/%020d", store.BlockSize+1)},
		{Key: "conv", Value: "g_old"}, {Key: "first", Value: int64(store.BlockSize + 1)}, {Key: "n", Value: store.BlockSize}, {Key: "msgs", Value: raw}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]natter.Message{now, old} {
		conv := want[0].Conv
		got, ok, err := st.ArchiveRange(ctx, conv, store.BlockSize+1, 2*store.BlockSize)
		if err != nil || !ok || len(got) != store.BlockSize {
			t.Fatalf("%s: %d messages, ok=%v %v", conv, len(got), ok, err)
		}
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%s message %d:\n got %+v\nwant %+v", conv, i, got[i], want[i])
			}
		}
	}
}

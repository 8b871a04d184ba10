package store_test

import (
	"context"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/workers/store"
)

// BenchmarkArchiveWrite is the persist worker's store writes for batches of
// 256 messages over 4 conversations (4 complete blocks a batch): op=msgs
// is the messages' InsertMessages, op=blocks the blocks' InsertBlocks, each
// alone, on a fresh embedded store; blocks1 and blocks16 are InsertBlocks
// of 1 and 16 blocks a call. cpu-us/msg is this process's CPU
// (FerretDB, SQLite, the driver) per message archived. Run with
//
//	go test -run '^$' -bench ArchiveWrite -benchtime 200x -timeout 30m ./workers/store/
func BenchmarkArchiveWrite(b *testing.B) {
	for _, op := range []string{"msgs", "blocks", "blocks1", "blocks16"} {
		b.Run("op="+op, func(b *testing.B) {
			ctx := context.Background()
			emb, st := openBench(b, b.TempDir(), "", "none")
			defer closeBench(b, emb, st)
			var convs []string
			for i := range map[string]int{"blocks1": 1, "blocks16": 16}[op] + 4*map[string]int{"msgs": 1, "blocks": 1}[op] {
				convs = append(convs, benchConv(i))
			}
			next := uint64(1)
			var cpu time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				var msgs []natter.Message
				var blocks []store.Block
				for _, c := range convs {
					blk := make([]natter.Message, store.BlockSize)
					for i := range blk {
						blk[i] = benchMsg(c, next+uint64(i))
					}
					msgs = append(msgs, blk...)
					blocks = append(blocks, store.Block{Conv: c, K: store.BlockOf(next), Msgs: blk})
				}
				next += store.BlockSize
				c0 := procCPU()
				b.StartTimer()
				var err error
				if op == "msgs" {
					_, err = st.InsertMessages(ctx, msgs)
				} else {
					_, err = st.InsertBlocks(ctx, blocks)
				}
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				cpu += procCPU() - c0
				n += len(msgs)
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/msg")
		})
	}
}

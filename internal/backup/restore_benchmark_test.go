package backup_test

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/natter-im/natter/internal/backup"
	"github.com/natter-im/natter/jetstream/streams"
	"github.com/natter-im/natter/jetstream/subjects"
)

var (
	benchMsgs = flag.Int("backup.msgs", 200_000, "log entries in BenchmarkRestore's backup")
	benchDocs = flag.Int("backup.docs", 100_000, "archive documents in BenchmarkRestore's backup")
)

// BenchmarkRestore restores a backup of -backup.msgs log entries (natter's
// headers, a 200-byte body, 1,000 conversations and a busy one with every
// 10th entry, which the hot tier trims, so the restore fills gaps all along
// the stream) and -backup.docs archive documents into an empty deployment,
// and reports seconds per million entries restored and per million
// documents:
//
//	go test -run '^$' -bench BenchmarkRestore -benchtime 1x -timeout 30m ./internal/backup/ -backup.msgs 1000000 -backup.docs 200000
func BenchmarkRestore(b *testing.B) {
	benchStreams := streams.Config{HotTier: int64(*benchMsgs/1000) * 9 / 10}
	src := newDeploymentWith(b, true, benchStreams)
	ctx := context.Background()
	body := strings.Repeat("x", 200)
	// The same-run baselines: the source's own async publishes (windows of
	// 2,000, as the replay) and InsertMany of 1,000 documents.
	pubStart := time.Now()
	for i := range *benchMsgs {
		conv := fmt.Sprintf("g_%04d", i%1000)
		if i%10 == 0 {
			// A busy conversation: the hot tier trims most of it, which
			// leaves deleted sequences all along the stream.
			conv = "g_busy"
		}
		m := &nats.Msg{Subject: "im.msg." + conv, Header: nats.Header{}, Data: fmt.Appendf(nil, `{"id":"m_%026d","conv":%q,"seq":%d,"from":"u1","cmid":"c%d","body":%q,"ts":1767225600000}`, i, conv, i/1000+1, i, body)}
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("m_%026d", i))
		m.Header.Set("Natter-Seq", fmt.Sprint(i/1000+1))
		m.Header.Set("Natter-Prev", "BgBgBgBgBgBgBgBgBgBgBgBgBgBgBgBg")
		if _, err := src.js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			<-src.js.PublishAsyncComplete()
		}
	}
	select {
	case <-src.js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publish did not complete")
	}
	pubTime := time.Since(pubStart)
	docs := make([]any, 0, 1000)
	insStart := time.Now()
	for i := range *benchDocs {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("m_%026d", i)}, {Key: "conv", Value: fmt.Sprintf("g_%04d", i%1000)}, {Key: "seq", Value: i/1000 + 1}, {Key: "from", Value: "u1"}, {Key: "body", Value: body}, {Key: "ts", Value: 1767225600000}})
		if len(docs) == cap(docs) {
			if _, err := src.db.Collection("messages").InsertMany(ctx, docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	if len(docs) > 0 {
		if _, err := src.db.Collection("messages").InsertMany(ctx, docs); err != nil {
			b.Fatal(err)
		}
	}
	insTime := time.Since(insStart)
	b.Logf("baseline: %d async publishes in %s (%.0f/s), %d documents inserted in %s (%.0f/s)", *benchMsgs, pubTime.Round(time.Millisecond),
		float64(*benchMsgs)/pubTime.Seconds(), *benchDocs, insTime.Round(time.Millisecond), float64(*benchDocs)/insTime.Seconds())
	target := backup.Dir(b.TempDir())
	start := time.Now()
	m, err := backup.Run(ctx, backup.Config{JS: src.js, DB: src.db, Target: target, Streams: benchStreams})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("backup of %d entries and %d documents: %s", *benchMsgs, *benchDocs, time.Since(start).Round(time.Millisecond))
	b.Logf("backup: MSGS holds %d of %d entries", findStream(m, subjects.StreamMsgs).Count, *benchMsgs)
	b.ResetTimer()
	var streamsTime, collTime time.Duration
	var entries, documents uint64
	for range b.N {
		b.StopTimer()
		dst := newDeploymentWith(b, false, benchStreams)
		b.StartTimer()
		rep, err := backup.Restore(ctx, backup.RestoreConfig{JS: dst.js, DB: dst.db, Target: target, Streams: benchStreams})
		if err != nil {
			b.Fatal(err)
		}
		collTime += rep.CollectionsTime
		entries += rep.Messages
		documents += rep.Documents
		streamsTime += rep.StreamsTime
		b.Logf("restore: %d messages and %d placeholders in %s, %d documents in %s", rep.Messages, rep.Placeholders, rep.StreamsTime.Round(time.Millisecond), rep.Documents, rep.CollectionsTime.Round(time.Millisecond))
	}
	b.ReportMetric(streamsTime.Seconds()/float64(max(entries, 1))*1e6, "s/1M-entries")
	b.ReportMetric(pubTime.Seconds()/float64(*benchMsgs)*1e6, "s/1M-baseline-publishes")
	b.ReportMetric(insTime.Seconds()/float64(*benchDocs)*1e6, "s/1M-baseline-inserts")
	b.ReportMetric(collTime.Seconds()/float64(max(documents, 1))*1e6, "s/1M-docs")
}

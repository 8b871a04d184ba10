package summaries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
)

// ErrDirectGet is a batched read answered with an error status.
var ErrDirectGet = kvbatch.ErrDirectGet

// MaxKeysPerGet is the most keys one batched direct get reads: the server
// answers at most 1,024 subjects per multi_last request.
const MaxKeysPerGet = 1024

// Bucket is the SUMMARIES bucket.
type Bucket struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	prefix    string // $KV.SUMMARIES.
	directGet string // $JS.API.DIRECT.GET.KV_SUMMARIES (honours the API prefix)
}

// Open looks the bucket up (streams.Ensure creates it).
func Open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketSummaries)
	if err != nil {
		return nil, fmt.Errorf("summaries: bucket: %w", err)
	}
	return &Bucket{nc: nc, js: js, kv: kv,
		prefix:    subjects.KVSubject(subjects.BucketSummaries, ""),
		directGet: kvbatch.BucketDirectGet(js.Options(), subjects.BucketSummaries)}, nil
}

// Entry is what the bucket holds for one conversation.
type Entry struct {
	// Conv is the summary; valid when Found.
	Conv  natter.Conversation
	Found bool
	// Rev is the stream sequence of the key's last write or delete (0:
	// none): a write-back compares and sets against it.
	Rev uint64
}

// value is the stored form: the summary with its rev, which
// natter.Conversation may keep out of JSON.
type value struct {
	natter.Conversation
	Rev int64 `json:"rev"`
}

// Get returns the entries of convs: one batched direct get per
// MaxKeysPerGet keys. A conversation whose key was never written is absent.
func (b *Bucket) Get(ctx context.Context, convs []string) (map[string]Entry, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	out := make(map[string]Entry, len(convs))
	for i := 0; i < len(convs); i += MaxKeysPerGet {
		part := convs[i:min(i+MaxKeysPerGet, len(convs))]
		filters := make([]string, len(part))
		for j, k := range part {
			filters[j] = b.prefix + k
		}
		err := kvbatch.MultiLast(ctx, b.nc, b.directGet, filters, func(m *nats.Msg) {
			conv := strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), b.prefix)
			rev, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			e := Entry{Rev: rev}
			if m.Header.Get("KV-Operation") == "" && m.Header.Get(jetstream.MarkerReasonHeader) == "" {
				var v value
				if json.Unmarshal(m.Data, &v) == nil && v.ID == conv {
					v.Conversation.Rev = v.Rev
					e.Conv, e.Found = v.Conversation, true
				}
			}
			out[conv] = e
		})
		if err != nil {
			return nil, fmt.Errorf("summaries: read: %w", err)
		}
	}
	return out, nil
}

// Item is a summary to write back, read from the store after the key's
// revision Rev was read.
type Item struct {
	Conv natter.Conversation
	Rev  uint64
}

// PutAll writes each item's summary if its key's last write or delete is
// still the item's Rev, the writes published together. A key that changed
// meanwhile (a change dropped it, or another instance wrote it) is left as
// it is: that is not an error.
func (b *Bucket) PutAll(ctx context.Context, items []Item) error {
	acks := make([]jetstream.PubAckFuture, 0, len(items))
	for _, it := range items {
		data, err := json.Marshal(value{Conversation: it.Conv, Rev: it.Conv.Rev})
		if err != nil {
			return fmt.Errorf("summaries: encode %s: %w", it.Conv.ID, err)
		}
		ack, err := b.js.PublishAsync(b.prefix+it.Conv.ID, data, jetstream.WithExpectLastSequencePerSubject(it.Rev))
		if err != nil {
			return fmt.Errorf("summaries: write %s: %w", it.Conv.ID, err)
		}
		acks = append(acks, ack)
	}
	for _, ack := range acks {
		select {
		case <-ack.Ok():
		case err := <-ack.Err():
			if !conflict(err) {
				return fmt.Errorf("summaries: write %s: %w", ack.Msg().Subject, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("summaries: write: %w", ctx.Err())
		}
	}
	return nil
}

// conflict reports whether err is a failed compare-and-set.
func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Drop deletes conv's summary (a delete marker, which moves the key's
// revision, so a write-back that read the key before fails).
func (b *Bucket) Drop(ctx context.Context, conv string) error {
	if err := b.kv.Delete(ctx, conv); err != nil {
		return fmt.Errorf("summaries: drop %s: %w", conv, err)
	}
	return nil
}

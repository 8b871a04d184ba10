package cursors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
)

// ErrDirectGet is a batched read answered with an error status.
var ErrDirectGet = kvbatch.ErrDirectGet

// MaxKeysPerGet is the most keys one batched direct get reads: the server
// answers at most 1,024 subjects per multi_last request.
const MaxKeysPerGet = 1024

// raiseAttempts bounds the compare-and-set retries of one key.
const raiseAttempts = 8

// DefaultTimeout bounds a [Bucket.RaiseAll] whose ctx has no deadline.
const DefaultTimeout = kvbatch.DefaultTimeout

// Bucket is the CURSORS bucket.
type Bucket struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	prefix    string    // $KV.CURSORS.
	directGet string    // $JS.API.DIRECT.GET.KV_CURSORS (honours the API prefix)
	revs      *revCache // WithRevisionCache; nil: none
}

// Open looks the bucket up (streams.Ensure creates it).
func Open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, opts ...Option) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketCursors)
	if err != nil {
		return nil, fmt.Errorf("cursors: bucket: %w", err)
	}
	b := &Bucket{nc: nc, js: js, kv: kv,
		prefix:    subjects.KVSubject(subjects.BucketCursors, ""),
		directGet: kvbatch.BucketDirectGet(js.Options(), subjects.BucketCursors)}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// KV is the bucket's key-value handle.
func (b *Bucket) KV() jetstream.KeyValue { return b.kv }

// entry is one key's value and the stream sequence of its last write (0:
// the key never existed).
type entry struct {
	seq uint64
	rev uint64
}

// Get returns the value of each of keys that has one (keys without one, or
// deleted, are absent): one batched direct get per MaxKeysPerGet keys.
func (b *Bucket) Get(ctx context.Context, keys []string) (map[string]uint64, error) {
	es, err := b.entries(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(es))
	for k, e := range es {
		if e.seq > 0 {
			out[k] = e.seq
		}
	}
	return out, nil
}

func (b *Bucket) entries(ctx context.Context, keys []string) (map[string]entry, error) {
	out := make(map[string]entry, len(keys))
	for i := 0; i < len(keys); i += MaxKeysPerGet {
		part := keys[i:min(i+MaxKeysPerGet, len(keys))]
		filters := make([]string, len(part))
		for j, k := range part {
			filters[j] = b.prefix + k
		}
		err := kvbatch.MultiLast(ctx, b.nc, b.directGet, filters, func(m *nats.Msg) {
			key := strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), b.prefix)
			rev, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			e := entry{rev: rev}
			if m.Header.Get("KV-Operation") == "" && m.Header.Get(jetstream.MarkerReasonHeader) == "" {
				e.seq, _ = strconv.ParseUint(string(m.Data), 10, 64)
			}
			out[key] = e
		})
		if err != nil {
			return nil, fmt.Errorf("cursors: read: %w", err)
		}
	}
	return out, nil
}

// Raise moves key to seq unless it is there or further already, and
// reports whether it moved. It compares and sets against the key's last
// revision, so a concurrent writer never moves it back.
func (b *Bucket) Raise(ctx context.Context, key string, seq uint64) (bool, error) {
	for range raiseAttempts {
		es, err := b.entries(ctx, []string{key})
		if err != nil {
			return false, err
		}
		e := es[key]
		if e.seq >= seq {
			return false, nil
		}
		err = b.put(ctx, key, seq, e.rev)
		if err == nil {
			return true, nil
		}
		if !conflict(err) {
			return false, fmt.Errorf("cursors: raise %s: %w", key, err)
		}
	}
	return false, fmt.Errorf("cursors: raise %s: still conflicting after %d attempts", key, raiseAttempts)
}

// put writes seq to key if its last write is still rev (0: none).
func (b *Bucket) put(ctx context.Context, key string, seq, rev uint64) error {
	_, err := b.js.Publish(ctx, b.prefix+key, strconv.AppendUint(nil, seq, 10), jetstream.WithExpectLastSequencePerSubject(rev))
	return err
}

// conflict reports whether err is a failed compare-and-set.
func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// RaiseAll raises every key of want to its value (never back), with one
// batched read per MaxKeysPerGet keys and the writes published together;
// a key another writer changed meanwhile is raised again on its own. With
// [WithRevisionCache], a key whose remembered value is below the wanted one
// is written without the read. A ctx without a deadline gets
// [DefaultTimeout]: the client gives the acks of the writes no timeout of
// its own, and one the server never sends (a frozen stream leader, a
// route dropped with the write) would otherwise block the caller until
// its connection is lost.
func (b *Bucket) RaiseAll(ctx context.Context, want map[string]uint64) error {
	if len(want) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	keys := make([]string, 0, len(want))
	var read []string
	es := make(map[string]entry, len(want))
	for k, v := range want {
		keys = append(keys, k)
		if e, ok := b.revs.get(k); ok && e.seq < v {
			es[k] = e
			continue
		}
		read = append(read, k)
	}
	if len(read) > 0 {
		got, err := b.entries(ctx, read)
		if err != nil {
			return err
		}
		for _, k := range read {
			e := got[k]
			es[k] = e
			b.revs.put(k, e)
		}
	}
	type pending struct {
		key string
		ack jetstream.PubAckFuture
	}
	var ps []pending
	for _, k := range keys {
		e := es[k]
		if e.seq >= want[k] {
			continue
		}
		ack, err := b.js.PublishAsync(b.prefix+k, strconv.AppendUint(nil, want[k], 10), jetstream.WithExpectLastSequencePerSubject(e.rev))
		if err != nil {
			return fmt.Errorf("cursors: raise %s: %w", k, err)
		}
		ps = append(ps, pending{k, ack})
	}
	var again []string
	for _, p := range ps {
		select {
		case pa := <-p.ack.Ok():
			b.revs.put(p.key, entry{seq: want[p.key], rev: pa.Sequence})
		case err := <-p.ack.Err():
			b.revs.forget(p.key)
			if !conflict(err) {
				return fmt.Errorf("cursors: raise %s: %w", p.key, err)
			}
			again = append(again, p.key)
		case <-ctx.Done():
			return fmt.Errorf("cursors: raise: %w", ctx.Err())
		}
	}
	for _, k := range again {
		if _, err := b.Raise(ctx, k, want[k]); err != nil {
			return err
		}
	}
	return nil
}

package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
)

// MaxEdits is the most edits a client may make to one message (the edge
// refuses more); it bounds a record's Edits.
const MaxEdits = 100

// updateAttempts bounds the compare-and-set retries of one key.
const updateAttempts = 16

// Record is what the actions on one message made of it.
type Record struct {
	// ID is the message's id (a check against the key's seq).
	ID string `json:"id"`
	// Body and EditedAt are the latest edit's text and TS; EditSeq is that
	// edit entry's seq (0: not edited).
	Body     string `json:"body,omitempty"`
	EditedAt int64  `json:"edited_at,omitempty"`
	EditSeq  uint64 `json:"edit_seq,omitempty"`
	// Deleted: the message is deleted, its text gone. DeletedBy is the id
	// of the delete entry (for an edit entry: of the message it edits).
	Deleted   bool   `json:"deleted,omitempty"`
	DeletedBy string `json:"deleted_by,omitempty"`
	// Edits are the edit entries naming this message, oldest first.
	Edits []EntryRef `json:"edits,omitempty"`
	// Reactions are the counts per emoji, in the order first added (none
	// at 0); at most MaxReactions (reactions.go).
	Reactions []Count `json:"reactions,omitempty"`
	// ThreadReplies is how many replies the thread rooted at this message
	// has, ThreadLastAt the newest one's TS (threads.go).
	ThreadReplies int   `json:"thread_replies,omitempty"`
	ThreadLastAt  int64 `json:"thread_last_at,omitempty"`
}

// EntryRef names a log entry.
type EntryRef struct {
	Seq uint64 `json:"seq"`
	ID  string `json:"id"`
}

// Bucket is the ACTIONS bucket.
type Bucket struct {
	nc        *nats.Conn
	kv        jetstream.KeyValue
	prefix    string // $KV.ACTIONS.
	directGet string // $JS.API.DIRECT.GET.KV_ACTIONS (honours the API prefix)
	mux       *kvbatch.Mux
}

// Open looks the bucket up (streams.Ensure creates it).
func Open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketActions)
	if err != nil {
		return nil, fmt.Errorf("actions: bucket: %w", err)
	}
	mux, err := kvbatch.NewMux(nc)
	if err != nil {
		return nil, fmt.Errorf("actions: reply subscription: %w", err)
	}
	return &Bucket{nc: nc, kv: kv, mux: mux,
		prefix:    subjects.KVSubject(subjects.BucketActions, ""),
		directGet: kvbatch.BucketDirectGet(js.Options(), subjects.BucketActions)}, nil
}

// Close releases the bucket's reply subscription (the connection is the
// caller's). Safe to call twice.
func (b *Bucket) Close() error {
	if err := b.mux.Close(); err != nil {
		return fmt.Errorf("actions: close: %w", err)
	}
	return nil
}

// multiLast is kvbatch.MultiLast over the bucket's mux.
func (b *Bucket) multiLast(ctx context.Context, filters []string, fn func(*nats.Msg)) error {
	return b.mux.MultiLast(ctx, b.nc, b.directGet, filters, fn)
}

// Get returns the record of the message with seq in conv; ok is false when
// nothing was done to it.
func (b *Bucket) Get(ctx context.Context, conv string, seq uint64) (Record, bool, error) {
	r, _, err := b.get(ctx, subjects.ActionsKey(conv, seq))
	if err != nil {
		return Record{}, false, err
	}
	return r, r.ID != "", nil
}

// get returns the record of key and its revision (0: none).
func (b *Bucket) get(ctx context.Context, key string) (Record, uint64, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, nil
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("actions: get %s: %w", key, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, fmt.Errorf("actions: get %s: %w: %w", key, ErrCorrupt, err)
	}
	return r, e.Revision(), nil
}

// update applies fn to the record of key (the message id, seq) and writes
// it when fn reports a change, comparing and setting against the record's
// revision.
func (b *Bucket) update(ctx context.Context, conv string, seq uint64, id string, fn func(*Record) bool) (Record, error) {
	key := subjects.ActionsKey(conv, seq)
	for attempt := range updateAttempts {
		r, rev, err := b.get(ctx, key)
		if err != nil {
			return Record{}, err
		}
		if r.ID == "" {
			r.ID = id
		}
		if !fn(&r) {
			return r, nil
		}
		val, err := json.Marshal(r)
		if err != nil {
			return Record{}, err
		}
		if _, retry, err := write(ctx, b.kv, key, val, rev, attempt); !retry {
			return r, err
		}
	}
	return Record{}, fmt.Errorf("%w: %s after %d attempts", ErrConflict, key, updateAttempts)
}

// write stores val at key if the key's revision is still rev (0: the key
// does not exist). On a conflict it waits a jittered back-off that grows
// with attempt and answers retry: without it the writer that just lost
// rereads later than the winner's next write, and a busy key starved it.
func write(ctx context.Context, kv jetstream.KeyValue, key string, val []byte, rev uint64, attempt int) (nrev uint64, retry bool, err error) {
	if rev == 0 {
		nrev, err = kv.Create(ctx, key, val)
	} else {
		nrev, err = kv.Update(ctx, key, val, rev)
	}
	if err == nil {
		return nrev, false, nil
	}
	if !conflict(err) {
		return 0, false, fmt.Errorf("actions: write %s: %w", key, err)
	}
	t := time.NewTimer(rand.N(time.Millisecond << min(attempt, 5)))
	defer t.Stop()
	select {
	case <-t.C:
		return 0, true, nil
	case <-ctx.Done():
		return 0, false, fmt.Errorf("actions: write %s: %w", key, ctx.Err())
	}
}

func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Apply records entry, an edit or delete entry (natter.Message.IsEdit,
// IsDelete), on target, the message its ref names. It is idempotent, and
// entries may come in any order: the newest edit wins, a delete wins over
// every edit. A delete (or an edit of a deleted message) also marks the
// edit entries of target deleted. Other entries are ignored.
func (b *Bucket) Apply(ctx context.Context, target, entry natter.Message) error {
	if !entry.IsEdit() && !entry.IsDelete() || entry.Ref != target.ID || target.Conv != entry.Conv {
		return nil
	}
	if entry.IsEdit() {
		ref := EntryRef{Seq: entry.Seq, ID: entry.ID}
		r, err := b.update(ctx, target.Conv, target.Seq, target.ID, func(r *Record) bool {
			changed := false
			if !hasEntry(r.Edits, ref) {
				r.Edits = append(r.Edits, ref)
				changed = true
			}
			if !r.Deleted && entry.Seq > r.EditSeq {
				r.Body, r.EditedAt, r.EditSeq = entry.Body, entry.TS, entry.Seq
				changed = true
			}
			return changed
		})
		if err != nil || !r.Deleted {
			return err
		}
		return b.markDeleted(ctx, target.Conv, []EntryRef{ref}, target.ID)
	}
	r, err := b.update(ctx, target.Conv, target.Seq, target.ID, func(r *Record) bool {
		if r.Deleted {
			return false
		}
		r.Deleted, r.DeletedBy, r.Body, r.EditedAt, r.EditSeq = true, entry.ID, "", 0, 0
		return true
	})
	if err != nil {
		return err
	}
	return b.markDeleted(ctx, target.Conv, r.Edits, target.ID)
}

// markDeleted marks the edit entries refs of conv deleted (their text is
// the deleted message's).
func (b *Bucket) markDeleted(ctx context.Context, conv string, refs []EntryRef, by string) error {
	for _, e := range refs {
		_, err := b.update(ctx, conv, e.Seq, e.ID, func(r *Record) bool {
			if r.Deleted {
				return false
			}
			r.Deleted, r.DeletedBy, r.Body, r.EditedAt, r.EditSeq = true, by, "", 0, 0
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func hasEntry(refs []EntryRef, e EntryRef) bool {
	for _, r := range refs {
		if r == e {
			return true
		}
	}
	return false
}

// Page is the records of a page's messages and the reactions of the user
// who asked for it ([Bucket.Page]).
type Page struct {
	recs map[uint64]Record
	mine map[uint64][]string
}

// Len is how many messages of the page have a record.
func (p Page) Len() int { return len(p.recs) }

// Record returns the record of the message with seq, if any.
func (p Page) Record(seq uint64) (Record, bool) {
	r, ok := p.recs[seq]
	return r, ok
}

// Page returns the records of the messages of conv with from <= seq <= to
// and, when user is set, that user's reactions to them, with one batched
// direct get (one filter per 64 seqs, two with a user).
func (b *Bucket) Page(ctx context.Context, conv string, from, to uint64, user string) (Page, error) {
	var p Page
	if from < 1 || to < from {
		return p, nil
	}
	k0, k1 := (from-1)/subjects.ActionsBlock, (to-1)/subjects.ActionsBlock
	filters := make([]string, 0, 2*(k1-k0+1))
	for k := k0; k <= k1; k++ {
		filters = append(filters, b.prefix+subjects.ActionsBlockFilter(conv, k))
		if user != "" {
			filters = append(filters, b.prefix+subjects.ActionsBlockUserFilter(conv, k, user))
		}
	}
	keyStart := len(b.prefix) + len(conv) + 1 // <k>.<seq>[.<user>]
	var bad error
	err := b.multiLast(ctx, filters, func(m *nats.Msg) {
		if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
			return
		}
		subj := m.Header.Get(jetstream.SubjectHeader)
		if len(subj) <= keyStart {
			return
		}
		_, rest, _ := strings.Cut(subj[keyStart:], ".")
		seqStr, who, isUser := strings.Cut(rest, ".")
		seq, err := strconv.ParseUint(seqStr, 10, 64)
		if err != nil || seq < from || seq > to || isUser && who != user {
			return
		}
		if isUser {
			var u userRecord
			if err := json.Unmarshal(m.Data, &u); err != nil {
				bad = fmt.Errorf("actions: page: %s: %w: %w", subj, ErrCorrupt, err)
				return
			}
			if p.mine == nil {
				p.mine = map[uint64][]string{}
			}
			p.mine[seq] = u.Emojis
			return
		}
		var r Record
		if err := json.Unmarshal(m.Data, &r); err != nil {
			bad = fmt.Errorf("actions: page: %s: %w: %w", subj, ErrCorrupt, err)
			return
		}
		if p.recs == nil {
			p.recs = map[uint64]Record{}
		}
		p.recs[seq] = r
	})
	if err != nil {
		return Page{}, fmt.Errorf("actions: page %s %d..%d: %w", conv, from, to, err)
	}
	return p, bad
}

// Decorate applies the page's records to msgs: a deleted message gets an
// empty body and Deleted, an edited one its latest text and EditedAt, one
// with reactions its Reactions (Mine marked from the page's user). It
// reports whether it changed any.
func (p Page) Decorate(msgs []natter.Message) bool {
	changed := false
	for i := range msgs {
		changed = p.Apply(&msgs[i]) || changed
	}
	return changed
}

// Apply applies the page's record of m (if any) to m and reports whether
// it changed it.
func (p Page) Apply(m *natter.Message) bool {
	r, ok := p.recs[m.Seq]
	if !ok || r.ID != m.ID {
		return false
	}
	m.ThreadReplies, m.ThreadLastAt = r.ThreadReplies, r.ThreadLastAt
	switch {
	case r.Deleted:
		m.Body, m.Deleted, m.EditedAt, m.Reactions = "", true, 0, nil
		return true
	case r.EditSeq > 0:
		m.Body, m.EditedAt = r.Body, r.EditedAt
	}
	if len(r.Reactions) > 0 {
		mine := p.mine[m.Seq]
		rs := make(natter.Reactions, len(r.Reactions))
		for i, c := range r.Reactions {
			rs[i] = natter.Reaction{Emoji: c.Emoji, Count: c.N, Mine: slices.Contains(mine, c.Emoji)}
		}
		m.Reactions = &rs
	}
	return r.EditSeq > 0 || len(r.Reactions) > 0 || r.ThreadReplies > 0
}

package attachments

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Meta is one upload's metadata (the value of its AttachMetaKey).
type Meta struct {
	ID string `json:"id"`
	// Owner is the user who uploaded it.
	Owner string `json:"owner"`
	// Name is the file name the uploader gave.
	Name string `json:"name,omitempty"`
	// Size in bytes.
	Size int64 `json:"size"`
	// Type is the content type, from the allow-list and checked against
	// the bytes.
	Type string `json:"type"`
	// Width and Height of an image (0 when unknown).
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// SHA256 of the bytes, hex: the ETag.
	SHA256 string `json:"sha256"`
	// Created is the upload time, Unix milliseconds.
	Created int64 `json:"created"`
	// Convs are the conversations a message carrying it was sent in: their
	// members may read it.
	Convs []string `json:"convs,omitempty"`
	// Msgs are the messages that carry it. An upload no message carries
	// expires; one whose messages were all deleted is deleted.
	Msgs []string `json:"msgs,omitempty"`
	// Thumb is the thumbnail, once the thumbs role made it.
	Thumb *Thumb `json:"thumb,omitempty"`
}

// Thumb describes an attachment's thumbnail (object AttachThumbObject).
type Thumb struct {
	Size   int64  `json:"size"`
	Type   string `json:"type"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	SHA256 string `json:"sha256"`
}

// Attachment is what a message carries of m.
func (m *Meta) Attachment() natter.Attachment {
	return natter.Attachment{ID: m.ID, Name: m.Name, Size: m.Size, Type: m.Type, Width: m.Width, Height: m.Height}
}

// IsImage reports whether m's type is an image type.
func (m *Meta) IsImage() bool { return strings.HasPrefix(m.Type, "image/") }

// idEnc is lowercase base32 without padding: ids are subject tokens and
// object names.
var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new random attachment id: "a_" and 26 characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "a_" + idEnc.EncodeToString(b[:])
}

// ValidID returns [ErrInvalidID] unless id has the shape NewID gives.
func ValidID(id string) error {
	if len(id) != 28 || !strings.HasPrefix(id, "a_") {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	for i := 2; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return fmt.Errorf("%w: %q", ErrInvalidID, id)
		}
	}
	return nil
}

// Bucket is the ATTACHMENTS key-value bucket.
type Bucket struct {
	kv jetstream.KeyValue
}

// OpenBucket opens the ATTACHMENTS bucket (streams.Ensure creates it).
func OpenBucket(ctx context.Context, js jetstream.JetStream) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketAttach)
	if err != nil {
		return nil, fmt.Errorf("attachments: bucket %s: %w", subjects.BucketAttach, err)
	}
	return &Bucket{kv: kv}, nil
}

// Get returns the metadata of id and its revision.
func (b *Bucket) Get(ctx context.Context, id string) (Meta, uint64, error) {
	var m Meta
	rev, err := b.get(ctx, subjects.AttachMetaKey(id), &m)
	return m, rev, err
}

func (b *Bucket) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("attachments: %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("attachments: get %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("attachments: %s: %w", key, err)
	}
	return e.Revision(), nil
}

// Create stores the metadata of a new upload.
func (b *Bucket) Create(ctx context.Context, m Meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("attachments: create %s: %w", m.ID, err)
	}
	if _, err := b.kv.Create(ctx, subjects.AttachMetaKey(m.ID), v); err != nil {
		return fmt.Errorf("attachments: create %s: %w", m.ID, err)
	}
	return nil
}

// maxCAS bounds the compare-and-set retries of one update.
const maxCAS = 20

// Update applies fn to id's metadata with compare-and-set, retrying on a
// concurrent change, and returns what it stored. fn returning an error
// stores nothing; fn returning false stores nothing either (no change).
func (b *Bucket) Update(ctx context.Context, id string, fn func(*Meta) (bool, error)) (Meta, error) {
	key := subjects.AttachMetaKey(id)
	for range maxCAS {
		m, rev, err := b.Get(ctx, id)
		if err != nil {
			return Meta{}, err
		}
		changed, err := fn(&m)
		if err != nil || !changed {
			return m, err
		}
		v, err := json.Marshal(m)
		if err != nil {
			return Meta{}, fmt.Errorf("attachments: update %s: %w", id, err)
		}
		_, err = b.kv.Update(ctx, key, v, rev)
		if err == nil {
			return m, nil
		}
		if !isWrongRev(err) {
			return Meta{}, fmt.Errorf("attachments: update %s: %w", id, err)
		}
	}
	return Meta{}, fmt.Errorf("attachments: update %s: too many concurrent changes", id)
}

func isWrongRev(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Delete removes id's metadata if it is still at revision rev (0: any).
func (b *Bucket) Delete(ctx context.Context, id string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := b.kv.Purge(ctx, subjects.AttachMetaKey(id), opts...); err != nil {
		return fmt.Errorf("attachments: delete %s: %w", id, err)
	}
	return nil
}

// Used returns user's stored bytes.
func (b *Bucket) Used(ctx context.Context, user string) (int64, error) {
	n, _, err := b.used(ctx, user)
	return n, err
}

func (b *Bucket) used(ctx context.Context, user string) (int64, uint64, error) {
	e, err := b.kv.Get(ctx, subjects.AttachQuotaKey(user))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("attachments: quota of %s: %w", user, err)
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("attachments: quota of %s: %w", user, err)
	}
	return n, e.Revision(), nil
}

// AddUsed adds delta (negative: frees) to user's stored bytes with
// compare-and-set. With limit > 0 an increase past limit stores nothing
// and returns [ErrQuota].
func (b *Bucket) AddUsed(ctx context.Context, user string, delta, limit int64) (int64, error) {
	key := subjects.AttachQuotaKey(user)
	for range maxCAS {
		n, rev, err := b.used(ctx, user)
		if err != nil {
			return 0, err
		}
		next := max(n+delta, 0)
		if delta > 0 && limit > 0 && next > limit {
			return n, fmt.Errorf("%w: %d of %d bytes stored, %d more asked", ErrQuota, n, limit, delta)
		}
		v := []byte(strconv.FormatInt(next, 10))
		if rev == 0 {
			_, err = b.kv.Create(ctx, key, v)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
		} else {
			_, err = b.kv.Update(ctx, key, v, rev)
		}
		if err == nil {
			return next, nil
		}
		if !isWrongRev(err) {
			return 0, fmt.Errorf("attachments: quota of %s: %w", user, err)
		}
	}
	return 0, fmt.Errorf("attachments: quota of %s: too many concurrent changes", user)
}

// AddMsg records that message msgID carries ids (the list a delete of the
// message reads).
func (b *Bucket) AddMsg(ctx context.Context, msgID string, ids []string) error {
	v, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	if _, err := b.kv.Put(ctx, subjects.AttachMsgKey(msgID), v); err != nil {
		return fmt.Errorf("attachments: message %s: %w", msgID, err)
	}
	return nil
}

// MsgAttachments returns the attachments message msgID carries
// ([ErrNotFound]: none recorded).
func (b *Bucket) MsgAttachments(ctx context.Context, msgID string) ([]string, error) {
	var ids []string
	_, err := b.get(ctx, subjects.AttachMsgKey(msgID), &ids)
	return ids, err
}

// DeleteMsg removes the list of message msgID.
func (b *Bucket) DeleteMsg(ctx context.Context, msgID string) error {
	if err := b.kv.Purge(ctx, subjects.AttachMsgKey(msgID)); err != nil {
		return fmt.Errorf("attachments: message %s: %w", msgID, err)
	}
	return nil
}

// IDs returns the id of every attachment with metadata (the sweeper's
// walk; it reads the bucket's keys, not their values).
func (b *Bucket) IDs(ctx context.Context) ([]string, error) {
	kl, err := b.kv.ListKeysFiltered(ctx, subjects.AttachMetaKeys())
	if err != nil {
		return nil, fmt.Errorf("attachments: list: %w", err)
	}
	var ids []string
	for k := range kl.Keys() {
		ids = append(ids, strings.TrimPrefix(k, "a."))
	}
	return ids, nil
}

// Remove deletes attachment id whole: its metadata (if still at rev; 0:
// any), its bytes and thumbnail, and its size from the owner's quota. A
// concurrent change of the metadata (a send recording it) makes it return
// an error and delete nothing.
func Remove(ctx context.Context, b *Bucket, st Store, m Meta, rev uint64) error {
	if err := b.Delete(ctx, m.ID, rev); err != nil {
		return err
	}
	if err := st.Delete(ctx, subjects.AttachThumbObject(m.ID)); err != nil {
		return err
	}
	if err := st.Delete(ctx, subjects.AttachObject(m.ID)); err != nil {
		return err
	}
	_, err := b.AddUsed(ctx, m.Owner, -m.Size, 0)
	return err
}

// removeString returns s without v.
func removeString(s []string, v string) []string {
	return slices.DeleteFunc(s, func(x string) bool { return x == v })
}

// DropMsg removes msgID from the messages carrying id and returns the
// metadata as it is now and its revision.
func (b *Bucket) DropMsg(ctx context.Context, id, msgID string) (Meta, error) {
	return b.Update(ctx, id, func(m *Meta) (bool, error) {
		if !slices.Contains(m.Msgs, msgID) {
			return false, nil
		}
		m.Msgs = removeString(m.Msgs, msgID)
		return true, nil
	})
}

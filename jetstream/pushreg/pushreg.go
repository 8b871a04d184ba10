package pushreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Providers.
const (
	APNs    = "apns"
	FCM     = "fcm"
	WebPush = "webpush"
)

// MaxUsersPerGet is how many users one batched read covers: the server
// answers at most 1,024 subjects per request, which leaves each user eight
// registered devices (or their deletion markers) on average.
const MaxUsersPerGet = 128

// ErrNotFound is a DeleteIf of a key that is gone or was written since.
var ErrNotFound = errors.New("pushreg: registration not found or changed")

// Registration is one device's push registration.
type Registration struct {
	// Provider is APNs, FCM or WebPush.
	Provider string `json:"provider"`
	// Token is the APNs device token (hex) or the FCM registration token.
	Token string `json:"token,omitempty"`
	// Endpoint, P256dh and Auth are the Web Push subscription: the push
	// service URL and the browser's keys (base64url).
	Endpoint string `json:"endpoint,omitempty"`
	P256dh   string `json:"p256dh,omitempty"`
	Auth     string `json:"auth,omitempty"`
	// TS is when it was registered (Unix ms).
	TS int64 `json:"ts"`
}

// Device is a registration as read, with its device and revision.
type Device struct {
	User, Device string
	Registration
	// Rev is the key's revision when read ([Bucket.DeleteIf]).
	Rev uint64
}

// Bucket is the PUSH bucket.
type Bucket struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	prefix    string
	directGet string
}

// Open looks the bucket up (streams.Ensure creates it).
func Open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketPush)
	if err != nil {
		return nil, fmt.Errorf("pushreg: bucket: %w", err)
	}
	return &Bucket{nc: nc, js: js, kv: kv,
		prefix:    subjects.KVSubject(subjects.BucketPush, ""),
		directGet: kvbatch.BucketDirectGet(js.Options(), subjects.BucketPush)}, nil
}

// Put stores r as the registration of user's device, replacing any.
func (b *Bucket) Put(ctx context.Context, user, device string, r Registration) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("pushreg: encode: %w", err)
	}
	if _, err := b.kv.Put(ctx, subjects.PushKey(user, device), data); err != nil {
		return fmt.Errorf("pushreg: put %s.%s: %w", user, device, err)
	}
	return nil
}

// Delete removes the registration of user's device (none is not an error).
func (b *Bucket) Delete(ctx context.Context, user, device string) error {
	if err := b.kv.Delete(ctx, subjects.PushKey(user, device)); err != nil {
		return fmt.Errorf("pushreg: delete %s.%s: %w", user, device, err)
	}
	return nil
}

// DeleteIf removes d's registration if its key is still at d.Rev:
// [ErrNotFound] when it was written (or deleted) since.
func (b *Bucket) DeleteIf(ctx context.Context, d Device) error {
	err := b.kv.Delete(ctx, subjects.PushKey(d.User, d.Device), jetstream.LastRevision(d.Rev))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("pushreg: delete %s.%s: %w", d.User, d.Device, err)
	}
	return nil
}

// DeleteUser removes every registration of user (a revocation of all the
// user's tokens).
func (b *Bucket) DeleteUser(ctx context.Context, user string) error {
	devs, err := b.Users(ctx, []string{user})
	if err != nil {
		return err
	}
	for _, d := range devs[user] {
		if err := b.Delete(ctx, user, d.Device); err != nil {
			return err
		}
	}
	return nil
}

// Users returns the registered devices of each of users that has any: one
// batched direct get per MaxUsersPerGet users. An entry that does not
// decode is skipped.
func (b *Bucket) Users(ctx context.Context, users []string) (map[string][]Device, error) {
	out := make(map[string][]Device)
	for i := 0; i < len(users); i += MaxUsersPerGet {
		part := users[i:min(i+MaxUsersPerGet, len(users))]
		filters := make([]string, 0, len(part))
		for _, u := range part {
			if subjects.ValidID(u) != nil {
				continue
			}
			filters = append(filters, b.prefix+subjects.PushKeys(u))
		}
		if len(filters) == 0 {
			continue
		}
		err := kvbatch.MultiLast(ctx, b.nc, b.directGet, filters, func(m *nats.Msg) {
			if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
				return // deleted or purged
			}
			user, device, ok := strings.Cut(strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), b.prefix), ".")
			if !ok {
				return
			}
			d := Device{User: user, Device: device}
			d.Rev, _ = strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if json.Unmarshal(m.Data, &d.Registration) != nil {
				return
			}
			out[user] = append(out[user], d)
		})
		if err != nil {
			return nil, fmt.Errorf("pushreg: read: %w", err)
		}
	}
	return out, nil
}

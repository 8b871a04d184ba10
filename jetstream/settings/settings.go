package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
)

// MaxKeysPerGet is the most keys one batched read asks for (the server
// answers at most 1,024 subjects).
const MaxKeysPerGet = 1000

// casRetries bounds the compare-and-set attempts of one update.
const casRetries = 10

// Bucket is the SETTINGS bucket.
type Bucket struct {
	nc        *nats.Conn
	kv        jetstream.KeyValue
	prefix    string
	directGet string
}

// Open returns the SETTINGS bucket (which must exist: streams.Ensure).
func Open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (*Bucket, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketSettings)
	if err != nil {
		return nil, fmt.Errorf("settings: bucket: %w", err)
	}
	return &Bucket{nc: nc, kv: kv, prefix: subjects.KVSubject(subjects.BucketSettings, ""),
		directGet: kvbatch.BucketDirectGet(js.Options(), subjects.BucketSettings)}, nil
}

// Get returns user's settings of those of convs that have any (one
// batched direct get per MaxKeysPerGet conversations).
func (b *Bucket) Get(ctx context.Context, user string, convs []string) (map[string]natter.ConvSettings, error) {
	out := map[string]natter.ConvSettings{}
	for i := 0; i < len(convs); i += MaxKeysPerGet {
		part := convs[i:min(i+MaxKeysPerGet, len(convs))]
		filters := make([]string, len(part))
		for j, c := range part {
			filters[j] = b.prefix + subjects.SettingsKey(user, c)
		}
		var derr error
		err := kvbatch.MultiLast(ctx, b.nc, b.directGet, filters, func(m *nats.Msg) {
			if m.Header.Get("KV-Operation") != "" || len(m.Data) == 0 {
				return
			}
			key := strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), b.prefix)
			var s natter.ConvSettings
			if err := json.Unmarshal(m.Data, &s); err != nil {
				derr = fmt.Errorf("settings: %s: %w", key, err)
				return
			}
			if !s.IsZero() {
				out[strings.TrimPrefix(key, user+".")] = s
			}
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return nil, fmt.Errorf("settings: read: %w", err)
		}
	}
	return out, nil
}

// One returns user's settings of conv (zero when none).
func (b *Bucket) One(ctx context.Context, user, conv string) (natter.ConvSettings, error) {
	s, _, err := b.one(ctx, user, conv)
	return s, err
}

func (b *Bucket) one(ctx context.Context, user, conv string) (natter.ConvSettings, uint64, error) {
	var s natter.ConvSettings
	e, err := b.kv.Get(ctx, subjects.SettingsKey(user, conv))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s, 0, nil
	}
	if err != nil {
		return s, 0, fmt.Errorf("settings: get: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return s, 0, fmt.Errorf("settings: %s.%s: %w", user, conv, err)
	}
	return s, e.Revision(), nil
}

// Update applies fn to user's settings of conv with a compare-and-set on
// the key's revision (retried on a concurrent change) and returns them
// after it and whether they changed.
func (b *Bucket) Update(ctx context.Context, user, conv string, fn func(*natter.ConvSettings)) (natter.ConvSettings, bool, error) {
	key := subjects.SettingsKey(user, conv)
	for range casRetries {
		have, rev, err := b.one(ctx, user, conv)
		if err != nil {
			return have, false, err
		}
		next := have
		fn(&next)
		if next == have {
			return have, false, nil
		}
		data, err := json.Marshal(next)
		if err != nil {
			return have, false, err
		}
		if rev == 0 {
			_, err = b.kv.Create(ctx, key, data)
		} else {
			_, err = b.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return next, true, nil
		}
		var ae *jetstream.APIError
		if !errors.Is(err, jetstream.ErrKeyExists) && !(errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
			return have, false, fmt.Errorf("settings: write %s: %w", key, err)
		}
	}
	return natter.ConvSettings{}, false, fmt.Errorf("settings: write %s: still changing after %d attempts", key, casRetries)
}

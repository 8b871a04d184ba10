package streams

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/subjects"
)

// Definitions is the full set of JetStream objects natter needs.
type Definitions struct {
	Streams   []jetstream.StreamConfig
	Consumers map[string][]jetstream.ConsumerConfig // by stream name
	Buckets   []jetstream.KeyValueConfig
	// Objects are the object stores (attachment bytes).
	Objects []jetstream.ObjectStoreConfig
}

// Define returns the definitions for cfg.
func Define(cfg Config) Definitions {
	cfg = cfg.withDefaults()
	storage := jetstream.FileStorage
	if cfg.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	worker := func(durable, filter string) jetstream.ConsumerConfig { return workerConsumer(cfg, durable, filter) }
	return Definitions{
		Streams: []jetstream.StreamConfig{
			{
				Name:              subjects.StreamMsgs,
				Description:       "natter conversation log: accepted messages, newest HotTier per conversation",
				Subjects:          []string{subjects.MsgsAll},
				Retention:         jetstream.LimitsPolicy,
				MaxMsgsPerSubject: cfg.HotTier,
				Discard:           jetstream.DiscardOld,
				Storage:           storage,
				Replicas:          cfg.Replicas,
				Duplicates:        cfg.DedupWindow,
				AllowDirect:       true,
				DenyDelete:        true,
				DenyPurge:         false,
			},
			{
				// A work queue: the ingest role removes what it has
				// appended to the log (or dead-lettered). Nats-Msg-Id is
				// the message's cmid; the dedup window drops re-publishes
				// before they reach the worker, the append's retry check
				// after.
				Name:        subjects.StreamIngest,
				Description: "natter ingest: fire-and-forget sends of internal services, appended to the log by the ingest role",
				Subjects:    []string{subjects.IngestAll},
				Retention:   jetstream.WorkQueuePolicy,
				Discard:     jetstream.DiscardOld,
				Storage:     storage,
				Replicas:    cfg.Replicas,
				Duplicates:  cfg.DedupWindow,
				DenyDelete:  true,
			},
			{
				// Every state change once (Nats-Msg-Id = event id), for
				// consumers to replay with their own durable consumers.
				Name:        subjects.StreamEvents,
				Description: "natter events: message, member, conversation and read changes for consumers",
				Subjects:    []string{subjects.EventsAll},
				Retention:   jetstream.LimitsPolicy,
				MaxAge:      cfg.EventsMaxAge,
				Discard:     jetstream.DiscardOld,
				Storage:     storage,
				Replicas:    cfg.Replicas,
				Duplicates:  min(cfg.EventsDedupWindow, cfg.EventsMaxAge),
				AllowDirect: true,
				DenyDelete:  true,
			},
			{
				// A work queue: the thumbs role removes a job once the
				// thumbnail is stored (or the job dead-lettered).
				Name:        subjects.StreamAttach,
				Description: "natter attachment jobs: thumbnails to make after uploads",
				Subjects:    []string{subjects.AttachAll},
				Retention:   jetstream.WorkQueuePolicy,
				Discard:     jetstream.DiscardOld,
				Storage:     storage,
				Replicas:    cfg.Replicas,
				Duplicates:  cfg.DedupWindow,
				DenyDelete:  true,
			},
			{
				Name:        subjects.StreamDLQ,
				Description: "natter dead letters: messages a worker role gave up on",
				Subjects:    []string{subjects.DLQAll},
				Retention:   jetstream.LimitsPolicy,
				Storage:     storage,
				Replicas:    cfg.Replicas,
				AllowDirect: true,
			},
		},
		// Message events are the log's entries: natter's readers of them
		// read MSGS (docs/events.md); no role copies every entry into
		// EVENTS (the events role, which does, is not a default role and
		// makes its own consumer: EventsCopyConsumer). The attachments of
		// deleted messages are dropped by the persist role, which handles
		// every delete entry anyway.
		Consumers: map[string][]jetstream.ConsumerConfig{
			subjects.StreamMsgs: {
				worker(subjects.ConsumerPersist, subjects.MsgsAll),
				worker(subjects.ConsumerFanout, subjects.MsgsAll),
				worker(subjects.ConsumerPush, subjects.MsgsAll),
			},
			subjects.StreamIngest: {worker(subjects.ConsumerIngest, subjects.IngestAll)},
			subjects.StreamAttach: {worker(subjects.ConsumerThumbs, subjects.AttachThumbs)},
		},
		Buckets: []jetstream.KeyValueConfig{
			{Bucket: subjects.BucketCursors, Description: "natter per-device delivered cursors", Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
			{Bucket: subjects.BucketSettings, Description: "natter per-user conversation settings (mute, pin, archive, cleared)", Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
			{Bucket: subjects.BucketSummaries, Description: "natter conversation summaries (a copy for conv.list pages)", TTL: cfg.SummariesMaxAge, Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
			// No bucket TTL: the online leases carry a per-key TTL (Nats-TTL,
			// which LimitMarkerTTL enables), last_seen and hidden live on.
			{Bucket: subjects.BucketPresence, Description: "natter presence: online leases, last seen, hidden", LimitMarkerTTL: cfg.PresenceTTL, Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
			// Revocations and bans carry a per-key TTL (Nats-TTL); the
			// markers of expired keys tell the edges' watchers to forget
			// them. Values are small (edge/revoke.Entry).
			// One key per message that was edited or deleted; never
			// expires (the tombstones must outlive the hot tier).
			{Bucket: subjects.BucketActions, Description: "natter message actions: latest edit, deletion", Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
			// One key per device (<user>.<device>); a user's devices are
			// read together with one batched direct get (<user>.*).
			{Bucket: subjects.BucketPush, Description: "natter push registrations of devices", MaxValueSize: 4096, Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
			{Bucket: subjects.BucketRevoked, Description: "natter token revocations and user bans", LimitMarkerTTL: time.Minute, MaxValueSize: 1024, Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
			{Bucket: subjects.BucketAttach, Description: "natter attachment metadata, per-message attachment lists, per-user stored bytes", Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
		},
		Objects: []jetstream.ObjectStoreConfig{
			{Bucket: subjects.ObjectAttach, Description: "natter attachment bytes and thumbnails", Storage: jetstream.StorageType(storage), Replicas: cfg.Replicas},
		},
	}
}

// workerConsumer is the durable consumer of a worker role.
func workerConsumer(cfg Config, durable, filter string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "natter worker role " + durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: 10_000,
		FilterSubject: filter,
	}
}

// EventsCopyConsumer is the consumer of the events role on MSGS
// (subjects.ConsumerEvents), which copies every entry into EVENTS as a v1
// message event: not among the definitions, since the role is not a
// default one; the role creates it when it starts (EnsureConsumer). It
// starts with the entries appended after its creation.
func EventsCopyConsumer(cfg Config) jetstream.ConsumerConfig {
	cc := workerConsumer(cfg.withDefaults(), subjects.ConsumerEvents, subjects.MsgsAll)
	cc.DeliverPolicy = jetstream.DeliverNewPolicy
	return cc
}

// EnsureConsumer creates the consumer want on stream if it is missing and
// leaves an existing one as it is (its position included).
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig) (*Change, error) {
	return applyConsumer(ctx, js, stream, want, false)
}

// Change is one thing Apply created or updated.
type Change struct {
	Kind   string // "stream", "consumer", "bucket"
	Name   string
	Action string // "created", "updated", or "differs" (Ensure found it changed and left it)
}

func (c Change) String() string { return c.Action + " " + c.Kind + " " + c.Name }

// Apply creates or updates every definition. It returns what changed, so a
// second Apply with the same cfg returns no changes. It is what
// "natter streams apply" runs.
func Apply(ctx context.Context, js jetstream.JetStream, cfg Config) ([]Change, error) {
	return apply(ctx, js, cfg, true)
}

// Ensure creates the definitions that are missing and leaves existing ones
// as they are, reporting those that differ from cfg as "differs". Every
// process runs it at start: a process started with other settings (say
// --replicas 1 against R3 streams) must not change the cluster's streams.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) ([]Change, error) {
	return apply(ctx, js, cfg, false)
}

func apply(ctx context.Context, js jetstream.JetStream, cfg Config, update bool) ([]Change, error) {
	defs := Define(cfg)
	var changes []Change
	for _, sc := range defs.Streams {
		ch, err := applyStream(ctx, js, sc, update)
		if err != nil {
			return changes, err
		}
		if ch != nil {
			changes = append(changes, *ch)
		}
		for _, cc := range defs.Consumers[sc.Name] {
			ch, err := applyConsumer(ctx, js, sc.Name, cc, update)
			if err != nil {
				return changes, err
			}
			if ch != nil {
				changes = append(changes, *ch)
			}
		}
	}
	for _, oc := range defs.Objects {
		ch, err := applyObjects(ctx, js, oc)
		if err != nil {
			return changes, err
		}
		if ch != nil {
			changes = append(changes, *ch)
		}
	}
	for _, kc := range defs.Buckets {
		ch, err := applyBucket(ctx, js, kc, update)
		if err != nil {
			return changes, err
		}
		if ch != nil {
			changes = append(changes, *ch)
		}
	}
	return changes, nil
}

func applyStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, update bool) (*Change, error) {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("streams: create stream %s: %w", want.Name, err)
		}
		return &Change{"stream", want.Name, "created"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("streams: look up stream %s: %w", want.Name, err)
	}
	have := s.CachedInfo().Config
	if streamEqual(have, want) {
		return nil, nil
	}
	if !update {
		return &Change{"stream", want.Name, "differs"}, nil
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return nil, fmt.Errorf("streams: update stream %s: %w", want.Name, err)
	}
	return &Change{"stream", want.Name, "updated"}, nil
}

// streamEqual compares the fields natter sets; the server fills in others
// (a zero limit comes back as -1, a zero duplicate window as 2m).
func streamEqual(have, want jetstream.StreamConfig) bool {
	if want.MaxMsgsPerSubject == 0 {
		want.MaxMsgsPerSubject = -1
	}
	if want.Duplicates == 0 {
		want.Duplicates = have.Duplicates
	}
	return have.Description == want.Description &&
		reflect.DeepEqual(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention &&
		have.MaxMsgsPerSubject == want.MaxMsgsPerSubject &&
		have.MaxAge == want.MaxAge &&
		have.Discard == want.Discard &&
		have.Storage == want.Storage &&
		have.Replicas == want.Replicas &&
		have.Duplicates == want.Duplicates &&
		have.AllowDirect == want.AllowDirect &&
		have.DenyDelete == want.DenyDelete &&
		have.DenyPurge == want.DenyPurge
}

func applyConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig, update bool) (*Change, error) {
	c, err := js.Consumer(ctx, stream, want.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if _, err := js.CreateConsumer(ctx, stream, want); err != nil {
			return nil, fmt.Errorf("streams: create consumer %s/%s: %w", stream, want.Durable, err)
		}
		return &Change{"consumer", stream + "/" + want.Durable, "created"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("streams: look up consumer %s/%s: %w", stream, want.Durable, err)
	}
	have := c.CachedInfo().Config
	if have.Description == want.Description && have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver &&
		have.MaxAckPending == want.MaxAckPending && have.FilterSubject == want.FilterSubject {
		return nil, nil
	}
	if !update {
		return &Change{"consumer", stream + "/" + want.Durable, "differs"}, nil
	}
	if _, err := js.UpdateConsumer(ctx, stream, want); err != nil {
		return nil, fmt.Errorf("streams: update consumer %s/%s: %w", stream, want.Durable, err)
	}
	return &Change{"consumer", stream + "/" + want.Durable, "updated"}, nil
}

func applyBucket(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig, update bool) (*Change, error) {
	kv, err := js.KeyValue(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateKeyValue(ctx, want); err != nil {
			return nil, fmt.Errorf("streams: create bucket %s: %w", want.Bucket, err)
		}
		return &Change{"bucket", want.Bucket, "created"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("streams: look up bucket %s: %w", want.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("streams: bucket %s status: %w", want.Bucket, err)
	}
	if st.TTL() == want.TTL && bucketDescription(st) == want.Description && limitMarkerTTL(st) == want.LimitMarkerTTL {
		return nil, nil
	}
	if !update {
		return &Change{"bucket", want.Bucket, "differs"}, nil
	}
	if _, err := js.UpdateKeyValue(ctx, want); err != nil {
		return nil, fmt.Errorf("streams: update bucket %s: %w", want.Bucket, err)
	}
	return &Change{"bucket", want.Bucket, "updated"}, nil
}

// applyObjects creates an object store that is missing. An existing one is
// left as it is (its settings are its stream's: replicas and storage).
func applyObjects(ctx context.Context, js jetstream.JetStream, want jetstream.ObjectStoreConfig) (*Change, error) {
	_, err := js.ObjectStore(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateObjectStore(ctx, want); err != nil {
			return nil, fmt.Errorf("streams: create object store %s: %w", want.Bucket, err)
		}
		return &Change{"objects", want.Bucket, "created"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("streams: look up object store %s: %w", want.Bucket, err)
	}
	return nil, nil
}

// limitMarkerTTL is the bucket's LimitMarkerTTL: set, it also enables
// per-key TTLs (what the presence leases need).
func limitMarkerTTL(st jetstream.KeyValueStatus) time.Duration {
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return s.LimitMarkerTTL()
	}
	return 0
}

func bucketDescription(st jetstream.KeyValueStatus) string {
	if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return s.StreamInfo().Config.Description
	}
	return ""
}

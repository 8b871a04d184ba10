package convsvc

import (
	"log/slog"
	"time"

	"github.com/natter-im/natter/jetstream/blocks"
	"github.com/natter-im/natter/jetstream/cursors"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/jetstream/summaries"
	"github.com/natter-im/natter/workers/events"
)

// DefaultMaxGroupSize is the group size limit when Config.MaxGroupSize is
// zero.
const DefaultMaxGroupSize = 100_000

// DefaultPushBroadcastMin is Config.PushBroadcastMin when zero: the fan-out's
// threshold for broadcasting messages by conversation
// (fanout.DefaultConvBroadcastMin).
const DefaultPushBroadcastMin = 1_000

// Config of the service ([Start]).
type Config struct {
	// Version is the service version in micro's discovery (SemVer).
	// Empty means "0.0.0-dev".
	Version string
	// MaxGroupSize is the most members a group may have (DefaultMaxGroupSize
	// when zero). It is checked under the group's lock, so concurrent
	// members.add requests cannot overshoot it.
	MaxGroupSize int
	// MaxUsersPerRequest is the most users one create or members.add /
	// members.remove may name (the store writes each user's membership and
	// list, so this bounds the time of one request). Zero means 1,000.
	MaxUsersPerRequest int
	// StoreTimeout bounds the store work of one request. Zero means 4s,
	// less than the client's default timeout, so that a caller gets
	// "unavailable" from the service rather than its own timeout.
	StoreTimeout time.Duration
	// Logger gets the service's logs. Nil means none.
	Logger *slog.Logger
	// QueueGroup is the queue group the replicas share. Empty means
	// subjects.QueueConversations.
	QueueGroup string
	// Events publishes member_joined, member_left, conversation_created and
	// read_moved after the writes. Nil means no events are published (and
	// no outbox is written or swept).
	Events *events.Publisher
	// Cursors, when set, is the CURSORS bucket, where read also raises the
	// user's read cursor (the copy that sync and conv.list pages read in one
	// batch). Nil means the read cursor is kept in the store only.
	Cursors *cursors.Bucket
	// Summaries, when set, is the SUMMARIES bucket: list pages read the
	// conversations' summaries from it in one batched read (writing back
	// those it lacked), and every change drops the conversation's. Nil
	// means the summaries come from the instance's cache or the store.
	Summaries *summaries.Bucket
	// Blocks, when set, is the users' blocks (jetstream/blocks, in the
	// PRESENCE bucket): block, unblock and blocks work, direct
	// conversations refuse the sends of a blocked user, and creating one
	// with a user who blocks you is forbidden. Nil means block, unblock
	// and blocks answer unavailable and nobody is blocked.
	Blocks *blocks.Bucket
	// OutboxSweep is how often the service republishes the events left in
	// conversation outboxes by a publish that failed, and how old such an
	// event must be first. Zero means 5s.
	OutboxSweep time.Duration
	// Concurrency is how many requests one instance works on at once (all
	// endpoints together); further requests wait, each at most as long as
	// its caller waits (convapi.WaitHeader), then are dropped unanswered.
	// Zero means 32.
	Concurrency int
	// MaxWaiting is how many requests one instance holds waiting for a
	// worker; more are answered unavailable at once. Zero means 16,384.
	MaxWaiting int
	// Metadata annotates the service in discovery ($SRV.INFO). Nil means
	// none.
	Metadata map[string]string
	// ListCacheSize is how many users' conversation lists an instance
	// caches for list (a reconnecting client's sync) and the membership
	// checks of get, read and history; the least recently used go first.
	// A list is dropped by the change notice of every instance's member
	// changes, after a reconnect and after ListCacheTTL. Zero means
	// 100,000; negative turns the cache off (every lookup reads the store).
	ListCacheSize int
	// ReadPushInterval coalesces the read pushes of one user in one
	// conversation on an instance: a read that moves the cursor is pushed
	// at once, the reads within this interval after it are held and only
	// the highest is pushed when it ends. Zero means 250ms; negative
	// pushes every read that moves the cursor.
	ReadPushInterval time.Duration
	// PushBroadcastMin is the member count from which the conv pushes of a
	// group's change to its other members go as one broadcast by
	// conversation that every edge delivers to the members it holds (as
	// the fan-out does for messages from 1,000 members), instead of one
	// message per member. Zero means 1,000; negative means never.
	PushBroadcastMin int
	// ListCacheTTL bounds how long a cached list is used, a safety net for
	// a change whose notice was never published (its instance died between
	// the write and the notice). Zero means 5m.
	ListCacheTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = "0.0.0-dev"
	}
	if c.MaxGroupSize <= 0 {
		c.MaxGroupSize = DefaultMaxGroupSize
	}
	if c.MaxUsersPerRequest <= 0 {
		c.MaxUsersPerRequest = 1_000
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 4 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.MaxWaiting <= 0 {
		c.MaxWaiting = 16_384
	}
	if c.ListCacheSize == 0 {
		c.ListCacheSize = 100_000
	}
	if c.PushBroadcastMin == 0 {
		c.PushBroadcastMin = DefaultPushBroadcastMin
	}
	if c.ListCacheTTL <= 0 {
		c.ListCacheTTL = 5 * time.Minute
	}
	if c.ReadPushInterval == 0 {
		c.ReadPushInterval = 250 * time.Millisecond
	}
	if c.OutboxSweep <= 0 {
		c.OutboxSweep = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.QueueGroup == "" {
		c.QueueGroup = subjects.QueueConversations
	}
	return c
}

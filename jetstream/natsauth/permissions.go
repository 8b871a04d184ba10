package natsauth

import (
	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Tier is a kind of NATS client with a credential of its own.
type Tier string

// The tiers.
const (
	// TierEdge: natter edge processes (WebSockets).
	TierEdge Tier = "edge"
	// TierWorker: natter worker processes, every role (persist, fanout,
	// events, ingest, thumbs, attachgc, webhooks, the conversations service,
	// the service API and the admin API of a worker).
	TierWorker Tier = "worker"
	// TierService: internal services on the bus (billing, bots,
	// analytics): the service API, ingest and their own consumers on
	// EVENTS.
	TierService Tier = "service"
	// TierAdmin: operators and "natter streams apply": everything.
	TierAdmin Tier = "admin"
)

// Tiers is every tier, in the order the configuration lists them.
var Tiers = []Tier{TierEdge, TierWorker, TierService, TierAdmin}

// InboxPrefix is the prefix of the reply subjects of tier's connections
// (nats.go CustomInboxPrefix): each tier reads only its own replies. The
// edge and worker tiers have their own; service (and admin) keep the
// _INBOX default of every NATS client, so an internal service needs no
// setting.
func InboxPrefix(t Tier) string {
	switch t {
	case TierEdge:
		return "_INBOX_EDGE"
	case TierWorker:
		return "_INBOX_WORKER"
	}
	return "_INBOX"
}

// Permissions are a tier's allow lists. All means no limit (admin).
type Permissions struct {
	Publish   []string
	Subscribe []string
	// AllowResponses lets the tier answer the requests it receives (a
	// reply to a subject it could not publish to otherwise), up to
	// ResponsesMax replies to each reply subject within two minutes.
	AllowResponses bool
	// All: no permissions at all (every subject allowed).
	All bool
}

// ResponsesMax bounds the replies a tier with AllowResponses may publish to
// one reply subject. Not 1 (nats-server's default for allow_responses:
// true): nats-server counts each delivery of a request to one of the
// connection's subscriptions against it too, and a natter process has
// several micro services on one connection, all subscribed to the $SRV
// subjects, to which discovery sends INFO and STATS with one reply
// subject: with 1, every discovery reply of such a process is refused.
const ResponsesMax = 1000

const api = "$JS.API."

func directGet(stream string) []string {
	return []string{api + "DIRECT.GET." + stream, api + "DIRECT.GET." + stream + ".>"}
}
func kvPut(bucket string) string    { return subjects.KVSubject(bucket, ">") }
func kvStream(bucket string) string { return "KV_" + bucket }

// startInfo is the read-only JetStream metadata every natter process reads
// at start (streams.Ensure with nothing to change, readiness).
var startInfo = []string{api + "INFO", api + "STREAM.INFO.*", api + "CONSUMER.INFO.*.*"}

// watch is what an ordered consumer of a KV bucket (a watch) needs:
// create, and delete when it stops or is recreated.
func watch(bucket string) []string {
	s := kvStream(bucket)
	return []string{api + "CONSUMER.CREATE." + s, api + "CONSUMER.CREATE." + s + ".>", api + "CONSUMER.DELETE." + s + ".>"}
}

// attach is what the edge and the attachment roles need of attachments:
// the ATTACHMENTS bucket (get, create, compare-and-set, purge) and the
// ATTACHBLOBS object store (chunks and meta, an ordered consumer per read,
// purge of a deleted or failed object).
func attach() []string {
	obj := "OBJ_" + subjects.ObjectAttach
	return cat(
		[]string{kvPut(subjects.BucketAttach)}, directGet(kvStream(subjects.BucketAttach)),
		[]string{api + "STREAM.MSG.GET." + kvStream(subjects.BucketAttach)},
		[]string{"$O." + subjects.ObjectAttach + ".>", api + "STREAM.PURGE." + obj, api + "STREAM.MSG.GET." + obj},
		directGet(obj),
		[]string{api + "CONSUMER.CREATE." + obj, api + "CONSUMER.CREATE." + obj + ".>", api + "CONSUMER.DELETE." + obj + ".>"},
	)
}

func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// For returns tier's permissions; an unknown tier gets nothing allowed.
func For(t Tier) Permissions {
	switch t {
	case TierEdge:
		return Permissions{
			Publish: cat(startInfo,
				// Append to the conversation log; hot-tier reads.
				[]string{subjects.MsgsAll}, directGet(subjects.StreamMsgs),
				// Delivered cursors: KV writes, batched direct gets.
				[]string{kvPut(subjects.BucketCursors)}, directGet(kvStream(subjects.BucketCursors)),
				// Message actions (edits, deletions, reactions) and the
				// reaction events, which the edge publishes.
				[]string{kvPut(subjects.BucketActions)}, directGet(kvStream(subjects.BucketActions)),
				[]string{subjects.Event(natter.EventReactionAdded, "*"), subjects.Event(natter.EventReactionRemoved, "*")},
				// The users' conversation settings (conv.settings: KV
				// writes; pages read them with batched direct gets).
				[]string{kvPut(subjects.BucketSettings)}, directGet(kvStream(subjects.BucketSettings)),
				// Push registrations: push.register puts, push.unregister
				// deletes.
				[]string{kvPut(subjects.BucketPush)},
				// The IDEM bucket of natter versions before the retry check
				// read the log and the archive (docs/operations.md,
				// "Upgrades").
				[]string{kvPut(subjects.BucketIdem)}, directGet(kvStream(subjects.BucketIdem)),
				// Requests to the conversations service.
				[]string{subjects.ConvAPIPrefix + ".>"},
				// Typing and reaction frames go to the members' delivery
				// subjects (one token: not the broadcast subject, which
				// only workers publish).
				[]string{subjects.DeliverAll},
				// Presence: leases, last_seen and hidden in PRESENCE, the
				// changes and the edges' heartbeat on core subjects, and the
				// watches of the users a session follows.
				[]string{kvPut(subjects.BucketPresence)}, directGet(kvStream(subjects.BucketPresence)),
				[]string{subjects.PresenceAll, subjects.PresenceHeartbeat}, watch(subjects.BucketPresence),
				// Watch REVOKED (revocations, bans, freezes); writing it is
				// the worker tier's (admin API).
				watch(subjects.BucketRevoked),
				// The deployment-wide limits: every edge shares its users'
				// usage.
				[]string{subjects.LimitsUsage},
				// Attachments, and the thumbnail jobs it queues on ATTACH.
				attach(), []string{subjects.AttachAll},
			),
			Subscribe: []string{
				// Deliveries (per user and the groups' broadcast),
				// membership changes, presence changes and heartbeats.
				"im.dlv.>", subjects.MembersChangedAll, "im.presence.>",
				// The other edges' usage of the limits; the admin API's
				// questions to every edge (answered as responses).
				subjects.LimitsUsage, subjects.AdminSessions, subjects.AdminDisconnect,
				// Its own replies (JetStream acks, direct gets, requests,
				// watches): not the other tiers'.
				InboxPrefix(TierEdge) + ".>",
				// Discovery and status requests it answers.
				"$SRV.>", subjects.StatusAll,
			},
			AllowResponses: true,
		}
	case TierWorker:
		return Permissions{
			Publish: cat(startInfo,
				// Pull from the roles' durable consumers and settle.
				[]string{
					api + "CONSUMER.MSG.NEXT." + subjects.StreamMsgs + ".*",
					api + "CONSUMER.MSG.NEXT." + subjects.StreamIngest + ".*",
					api + "CONSUMER.MSG.NEXT." + subjects.StreamEvents + ".*",
					api + "CONSUMER.MSG.NEXT." + subjects.StreamAttach + ".*",
					"$JS.ACK." + subjects.StreamMsgs + ".>",
					"$JS.ACK." + subjects.StreamIngest + ".>",
					"$JS.ACK." + subjects.StreamEvents + ".>",
					"$JS.ACK." + subjects.StreamAttach + ".>",
					// The webhooks role creates and updates WEBHOOK_<NAME>
					// (on MSGS for the message kinds); the events role
					// creates its consumer on MSGS.
					api + "CONSUMER.CREATE." + subjects.StreamEvents + ".>",
					api + "CONSUMER.CREATE." + subjects.StreamMsgs + ".>",
				},
				// Deliveries (fanout), dead letters, events, membership
				// notices.
				[]string{"im.dlv.>", subjects.DLQAll, subjects.EventsAll, subjects.MembersChangedAll},
				// The ingest role and the service API append as an edge does.
				[]string{subjects.MsgsAll}, directGet(subjects.StreamMsgs),
				[]string{kvPut(subjects.BucketIdem)}, directGet(kvStream(subjects.BucketIdem)),
				// Read cursors and the conversations service's summaries.
				[]string{kvPut(subjects.BucketCursors)}, directGet(kvStream(subjects.BucketCursors)),
				[]string{kvPut(subjects.BucketSummaries)}, directGet(kvStream(subjects.BucketSummaries)),
				// Message actions: the persist role applies edits and deletes.
				[]string{kvPut(subjects.BucketActions)}, directGet(kvStream(subjects.BucketActions)),
				// The admin API writes revocations, bans and freezes (its
				// audit events go to im.evt.>), asks every edge for a
				// user's sessions or to close them, reads a freeze, lists a
				// user's CURSORS keys (erase) and purges a deleted
				// conversation's hot tier; the api and ingest roles watch
				// REVOKED for freezes.
				[]string{kvPut(subjects.BucketRevoked), subjects.AdminSessions, subjects.AdminDisconnect,
					api + "STREAM.PURGE." + subjects.StreamMsgs},
				watch(subjects.BucketRevoked), directGet(kvStream(subjects.BucketRevoked)),
				watch(subjects.BucketCursors),
				// Erase also purges the user's SETTINGS keys and their last
				// seen, hidden and block keys of PRESENCE (listed with a
				// watch).
				[]string{kvPut(subjects.BucketSettings),
					subjects.KVSubject(subjects.BucketPresence, subjects.PresenceSeenKey("*")),
					subjects.KVSubject(subjects.BucketPresence, subjects.PresenceHiddenKey("*"))},
				watch(subjects.BucketSettings), watch(subjects.BucketPresence),
				// The conversations service's block lists (the block.<user>
				// keys of PRESENCE: writes and reads) and the change it
				// publishes on the blocker's presence subject.
				[]string{
					subjects.KVSubject(subjects.BucketPresence, subjects.PresenceBlockKey(">")),
					api + "DIRECT.GET." + kvStream(subjects.BucketPresence) + "." + subjects.KVSubject(subjects.BucketPresence, subjects.PresenceBlockKey(">")),
					subjects.PresenceAll,
				},
				// The push role reads the devices' registrations and the
				// online leases (batched direct gets: the leases' base
				// subject, unlike the block keys below) and deletes
				// registrations a provider answered "unregistered" for (so
				// does the admin API on a revocation).
				[]string{kvPut(subjects.BucketPush)}, directGet(kvStream(subjects.BucketPush)),
				[]string{api + "DIRECT.GET." + kvStream(subjects.BucketPresence)},
				// ... and the users' mute settings of conversations
				// (batched direct gets of SETTINGS).
				[]string{api + "DIRECT.GET." + kvStream(subjects.BucketSettings)},
				// Requests to the conversations service.
				[]string{subjects.ConvAPIPrefix + ".>"},
				// Attachments (thumbs, attachgc); the sweep lists the
				// ATTACHMENTS keys with an ordered consumer.
				attach(), watch(subjects.BucketAttach),
			),
			Subscribe: []string{
				InboxPrefix(TierWorker) + ".>",
				// Services the tier serves (queue groups) and discovery.
				subjects.ConvAPIPrefix + ".>", subjects.APIPrefix + ".>", subjects.StatusAll, "$SRV.>",
				// Membership changes (member cache).
				subjects.MembersChangedAll,
			},
			AllowResponses: true,
		}
	case TierService:
		return Permissions{
			Publish: cat(
				[]string{api + "INFO",
					// The service API (request/reply) and fire-and-forget
					// ingest.
					subjects.APIPrefix + ".>", subjects.IngestAll,
					// Own consumers on EVENTS: create, look up, pull, ack;
					// replay single events by direct get. (Not on MSGS:
					// a service could pull from, or change, the roles'
					// consumers there; its message events come from the
					// events role, docs/events.md.)
					api + "STREAM.INFO." + subjects.StreamEvents,
					api + "STREAM.INFO." + subjects.StreamIngest,
					api + "CONSUMER.CREATE." + subjects.StreamEvents + ".>",
					api + "CONSUMER.INFO." + subjects.StreamEvents + ".*",
					api + "CONSUMER.MSG.NEXT." + subjects.StreamEvents + ".*",
					"$JS.ACK." + subjects.StreamEvents + ".>",
				},
				directGet(subjects.StreamEvents),
				// Discovery: which natter services run.
				[]string{"$SRV.>"},
			),
			Subscribe: []string{InboxPrefix(TierService) + ".>"},
		}
	case TierAdmin:
		return Permissions{All: true}
	}
	return Permissions{}
}

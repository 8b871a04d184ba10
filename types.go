package natter

import (
	"crypto/sha256"
	"encoding/hex"
)

// Message is one accepted message. The same JSON is the payload of its log
// entry in the MSGS stream, the body of a delivery on im.dlv.<user>, the
// "msg" of a push frame and the MongoDB document (with ID as _id).
type Message struct {
	// ID is derived from (Conv, From, Cmid): retries of one send get one ID.
	ID string `json:"id" bson:"_id"`
	// Conv is the conversation id.
	Conv string `json:"conv" bson:"conv"`
	// Seq is the per-conversation sequence: 1, 2, 3 ... gap-free.
	Seq uint64 `json:"seq" bson:"seq"`
	// From is the sending user (from the token, never from the client).
	From string `json:"from" bson:"from"`
	// Cmid is the client message id the sender chose.
	Cmid string `json:"cmid" bson:"cmid"`
	// Type is an application-defined kind ("text" when empty on send).
	Type string `json:"type,omitempty" bson:"type,omitempty"`
	// Body is the message text (UTF-8, at most the configured body limit).
	Body string `json:"body" bson:"body"`
	// TS is the server time of acceptance, Unix milliseconds.
	TS int64 `json:"ts" bson:"ts"`
}

// Ack is what a sender gets back once its message is durable in the log.
type Ack struct {
	ID   string `json:"id"`
	Conv string `json:"conv"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"`
	// Dup is true when the send was a retry of an already accepted message.
	Dup bool `json:"dup,omitempty"`
}

// Conversation kinds.
const (
	KindDirect = "direct"
	KindGroup  = "group"
)

// Conversation is a direct (one per pair of users) or group conversation.
type Conversation struct {
	ID        string   `json:"id" bson:"_id"`
	Kind      string   `json:"kind" bson:"kind"`
	Name      string   `json:"name,omitempty" bson:"name,omitempty"`
	CreatedBy string   `json:"created_by" bson:"created_by"`
	CreatedAt int64    `json:"created_at" bson:"created_at"`
	Members   []string `json:"members,omitempty" bson:"members"`
	// Head is the newest seq, filled in by readers of the log; not stored.
	Head uint64 `json:"head" bson:"-"`
}

// DirectID is the deterministic id of the direct conversation between users
// a and b (in either order): "d_" + 32 hex digits of sha256.
func DirectID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte(a + "\n" + b))
	return "d_" + hex.EncodeToString(sum[:16])
}

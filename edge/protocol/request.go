package protocol

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
)

// Request is one client frame. Which fields an op uses is listed on each
// field; the others are zero. The JSON names are the wire names, and empty
// fields are left out when a client encodes it.
type Request struct {
	// Op is the operation (OpSend, ...). Every request.
	Op string `json:"op"`
	// ID is the request id the reply echoes: 1..64 printable ASCII
	// characters, no space. Every request.
	ID string `json:"id"`

	// Token is the JWT (auth), or the device token of an apns or fcm
	// push registration (push.register).
	Token string `json:"token,omitempty"`
	// Device optionally names the device. auth.
	Device string `json:"device,omitempty"`

	// Conv is the conversation id. send, ack, read, history, conv.get,
	// conv.rename, members.*.
	Conv string `json:"conv,omitempty"`
	// Cmid is the client message id, the idempotency key of a send. send.
	Cmid string `json:"cmid,omitempty"`
	// Body is the message text. send.
	Body string `json:"body,omitempty"`
	// Type is an application-defined message kind (<= 32 bytes). send.
	Type string `json:"type,omitempty"`
	// From, if set, must be the token's user (the edge checks). send.
	From string `json:"from,omitempty"`
	// First says this is the first attempt to send Cmid: a cmid the client
	// made for this message and has never sent before. The edge then skips
	// the lookup that answers resends from before the dedup window (one
	// round trip). Resends of the cmid must leave it out. send.
	First bool `json:"first,omitempty"`
	// Seq is a cursor: delivered (ack) or read (read). Must be >= 1.
	Seq uint64 `json:"seq,omitempty"`

	// Cursors maps conversation ids to the last seq the device has. sync.
	Cursors map[string]uint64 `json:"cursors,omitempty"`
	// Limit bounds the messages returned: per conversation for sync,
	// per page for history. 0 means the default; see [Request.LimitOrDefault].
	Limit int `json:"limit,omitempty"`
	// Before and After select a history page by an exclusive seq bound; at
	// most one is set, and nil means absent. After 0 is the page from the
	// first message on; Before must be >= 1. Neither: the newest page.
	// [Seq] makes the pointer. history.
	Before *uint64 `json:"before,omitempty"`
	After  *uint64 `json:"after,omitempty"`

	// PageSize turns paging on: the reply covers at most PageSize of the
	// user's conversations (1..MaxPageSize) and names the next page in
	// "next". Zero means no paging: every conversation. sync, conv.list.
	PageSize int `json:"page_size,omitempty"`
	// Page is the "next" of the previous page's reply, as it was (opaque);
	// empty for the first page. Needs PageSize. sync, conv.list.
	Page string `json:"page,omitempty"`

	// Kind is "direct" or "group". conv.create.
	Kind string `json:"kind,omitempty"`
	// With is the other user of a direct conversation. conv.create.
	With string `json:"with,omitempty"`
	// Name is a group's name (<= 128 characters). conv.create,
	// conv.rename (1..128 characters).
	Name string `json:"name,omitempty"`
	// Members are a group's first members besides the creator. conv.create.
	Members []string `json:"members,omitempty"`
	// Users are the users to add or remove (members.add, members.remove),
	// or to watch or stop watching the presence of (presence.sub,
	// presence.unsub: 1..MaxPresenceUsers).
	Users []string `json:"users,omitempty"`

	// Hidden hides the user's presence: others see the user offline.
	// presence.set.
	Hidden bool `json:"hidden,omitempty"`
	// State is TypingStarted or TypingStopped. typing.
	State string `json:"state,omitempty"`
	// AfterUser asks for the receipts page after this user id (the Next
	// of the previous page). receipts.
	AfterUser string `json:"after_user,omitempty"`
	// Ref is the id of the message acted on. msg.edit, msg.delete, react.
	Ref string `json:"ref,omitempty"`
	// ReplyTo is the id of the message of Conv a send replies to. send.
	ReplyTo string `json:"reply_to,omitempty"`
	// Thread is the id of the root message of the thread (in Conv) a send
	// is a reply in. send.
	Thread string `json:"thread,omitempty"`
	// Mentions are the user ids (members of Conv) a send mentions, or
	// natter.MentionAll (group owners and admins). send.
	Mentions []string `json:"mentions,omitempty"`
	// Root is the id of the thread's root message. thread.
	Root string `json:"root,omitempty"`
	// Emoji is the reaction: 1..MaxEmoji bytes of UTF-8 without white
	// space or control characters. react.
	Emoji string `json:"emoji,omitempty"`
	// Remove takes the reaction back instead of adding it. react.
	Remove bool `json:"remove,omitempty"`

	// Description (<= MaxDescription characters) and AvatarURL (http or
	// https, <= MaxAvatarURL bytes) set a group's when present; "" clears.
	// Announce turns announcement mode on or off when present. At least
	// one of the three. conv.update.
	Description *string `json:"description,omitempty"`
	AvatarURL   *string `json:"avatar_url,omitempty"`
	Announce    *bool   `json:"announce,omitempty"`
	// To is the member who becomes the group's owner. owner.transfer.
	To string `json:"to,omitempty"`
	// DurationMS is how long a mute lasts: 1..MaxMuteMS. members.mute.
	DurationMS uint64 `json:"duration_ms,omitempty"`

	// MutedUntil (Unix ms; 0 unmutes), Pinned, Archived and Cleared (a
	// seq, at most the head; never lowered) set the user's settings of
	// Conv when present; at least one. conv.settings.
	MutedUntil *uint64 `json:"muted_until,omitempty"`
	Pinned     *bool   `json:"pinned,omitempty"`
	Archived   *bool   `json:"archived,omitempty"`
	Cleared    *uint64 `json:"cleared,omitempty"`
	// Attachments are files the sender uploaded (POST /v1/attachments),
	// at most MaxAttachments, by id; a name given here replaces the
	// upload's in this message. The edge fills in the rest from the
	// upload. send.
	Attachments []natter.Attachment `json:"attachments,omitempty"`
	// Provider is the push service: PushAPNs, PushFCM or PushWebPush.
	// push.register.
	Provider string `json:"provider,omitempty"`
	// Subscription is the browser's Web Push subscription (what
	// PushSubscription.toJSON() gives). push.register with webpush.
	Subscription *PushSubscription `json:"subscription,omitempty"`
}

// PushSubscription is a Web Push subscription.
type PushSubscription struct {
	// Endpoint is the push service's https URL for this browser.
	Endpoint string `json:"endpoint"`
	// Keys are the browser's keys, base64url.
	Keys PushKeys `json:"keys"`
}

// PushKeys are a Web Push subscription's keys: p256dh, the browser's P-256
// public key (65 bytes uncompressed), and auth, its 16-byte secret.
type PushKeys struct {
	P256dh string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// Encode validates r like the edge will ([Request.Validate] plus the request
// id) and returns its frame. Errors are [*Error].
func (r *Request) Encode() ([]byte, error) {
	if err := checkRequestID(r.ID); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// Seq returns a pointer to seq, for [Request.Before] and [Request.After].
func Seq(seq uint64) *uint64 { return &seq }

// LimitOrDefault is r.Limit, or the op's default limit when it is 0.
func (r *Request) LimitOrDefault() int {
	if r.Limit != 0 {
		return r.Limit
	}
	switch r.Op {
	case OpSync:
		return DefaultSyncLimit
	case OpHistory:
		return DefaultHistoryLimit
	case OpReceipts:
		return DefaultReceiptsLimit
	case OpThread:
		return DefaultThreadLimit
	}
	return 0
}

// Validate checks the op and the fields it uses; [Decode] calls it. It does
// not check the request id, so REST handlers, which have none, can use it on
// a Request they fill from the URL and body. Errors are [*Error] with r.ID:
// [CodeUnknownOp] or [CodeBadFrame] naming the field.
func (r *Request) Validate() error {
	if err := r.validate(); err != nil {
		err.ID = r.ID
		return err
	}
	return nil
}

func (r *Request) validate() *Error {
	switch r.Op {
	case OpAuth:
		if r.Token == "" {
			return badFrame("", "token: required")
		}
		if r.Device != "" {
			return checkID("device", r.Device)
		}
	case OpSend:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if r.Cmid == "" {
			return badFrame("", "cmid: required")
		}
		if subjects.ValidID(r.Cmid) != nil {
			return badFrame("", "cmid: must be 1..64 characters of [A-Za-z0-9_-]")
		}
		if r.Body == "" && len(r.Attachments) == 0 {
			return badFrame("", "body: required (or attachments)")
		}
		if e := checkAttachments(r.Attachments); e != nil {
			return e
		}
		if len(r.Type) > MaxType {
			return badFrame("", "type: longer than "+strconv.Itoa(MaxType)+" bytes")
		}
		if r.ReplyTo != "" {
			if err := checkID("reply_to", r.ReplyTo); err != nil {
				return err
			}
		}
		if r.Thread != "" {
			if err := checkID("thread", r.Thread); err != nil {
				return err
			}
		}
		if e := checkMentions(r.Mentions); e != nil {
			return e
		}
	case OpAck, OpRead:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if r.Seq == 0 {
			return badFrame("", "seq: required (>= 1)")
		}
	case OpSync:
		for conv := range r.Cursors {
			if subjects.ValidID(conv) != nil {
				return badFrame("", "cursors: key must be a conversation id (1..64 characters of [A-Za-z0-9_-])")
			}
		}
		if err := checkLimit(r.Limit, MaxSyncLimit); err != nil {
			return err
		}
		return r.checkPage()
	case OpHistory:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if r.Before != nil && r.After != nil {
			return badFrame("", "before: not allowed together with after")
		}
		if r.Before != nil && *r.Before == 0 {
			return badFrame("", "before: must be >= 1 (leave it out for the newest page)")
		}
		return checkLimit(r.Limit, MaxHistoryLimit)
	case OpConvCreate:
		return r.validateCreate()
	case OpConvList:
		return r.checkPage()
	case OpPing:
	case OpConvGet, OpMembersList:
		return checkID("conv", r.Conv)
	case OpConvRename:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if r.Name == "" {
			return badFrame("", "name: required (1.."+strconv.Itoa(MaxName)+" characters)")
		}
		return checkName(r.Name)
	case OpBlock, OpUnblock:
		if len(r.Users) == 0 {
			return badFrame("", "users: required (1.."+strconv.Itoa(MaxUsers)+" users)")
		}
		return checkIDs("users", r.Users)
	case OpBlocksList:
	case OpMembersAdd, OpMembersRemove, OpAdminsAdd, OpAdminsRemove, OpMembersMute, OpMembersUnmute:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if len(r.Users) == 0 {
			return badFrame("", "users: required (1.."+strconv.Itoa(MaxUsers)+" users)")
		}
		if r.Op == OpMembersMute && (r.DurationMS == 0 || r.DurationMS > MaxMuteMS) {
			return badFrame("", "duration_ms: required, 1.."+strconv.Itoa(MaxMuteMS)+" (366 days)")
		}
		return checkIDs("users", r.Users)
	case OpOwnerTransfer:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		return checkID("to", r.To)
	case OpConvUpdate:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		return r.checkUpdate()
	case OpConvSettings:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if r.MutedUntil == nil && r.Pinned == nil && r.Archived == nil && r.Cleared == nil {
			return badFrame("", "muted_until: conv.settings needs muted_until, pinned, archived or cleared")
		}
		if r.MutedUntil != nil && *r.MutedUntil > 1<<53 {
			return badFrame("", "muted_until: must be a time in Unix milliseconds (0 unmutes)")
		}
	case OpPresenceSub, OpPresenceUnsub:
		if len(r.Users) == 0 {
			return badFrame("", "users: required (1.."+strconv.Itoa(MaxPresenceUsers)+" users)")
		}
		if len(r.Users) > MaxPresenceUsers {
			return &Error{Code: CodeTooMany, Msg: "users: more than " + strconv.Itoa(MaxPresenceUsers) + " users per connection"}
		}
		return checkIDs("users", r.Users)
	case OpPresenceSet:
	case OpTyping:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if r.State != TypingStarted && r.State != TypingStopped {
			return badFrame("", "state: must be started or stopped")
		}
	case OpReceipts:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if r.AfterUser != "" {
			if err := checkID("after_user", r.AfterUser); err != nil {
				return err
			}
		}
		return checkLimit(r.Limit, MaxReceiptsLimit)
	case OpMsgEdit, OpMsgDelete:
		for _, f := range [...]struct{ name, v string }{{"conv", r.Conv}, {"ref", r.Ref}, {"cmid", r.Cmid}} {
			if err := checkID(f.name, f.v); err != nil {
				return err
			}
		}
		if r.Op == OpMsgEdit && r.Body == "" {
			return badFrame("", "body: required (the new text)")
		}
		if r.Op == OpMsgDelete && r.Body != "" {
			return badFrame("", "body: not allowed in msg.delete")
		}
	case OpThread:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if err := checkID("root", r.Root); err != nil {
			return err
		}
		if r.Before != nil && r.After != nil {
			return badFrame("", "before: not allowed together with after")
		}
		if r.Before != nil && *r.Before == 0 {
			return badFrame("", "before: must be >= 1 (leave it out for the newest page)")
		}
		return checkLimit(r.Limit, MaxThreadLimit)
	case OpReact:
		if err := checkID("conv", r.Conv); err != nil {
			return err
		}
		if err := checkID("ref", r.Ref); err != nil {
			return err
		}
		return checkEmoji(r.Emoji)
	case OpPushRegister:
		return r.validatePush()
	case OpPushUnregister:
	case "":
		return badFrame("", "op: required")
	default:
		return &Error{Code: CodeUnknownOp, Msg: "op: unknown op " + strconv.Quote(truncate(r.Op, 32))}
	}
	return nil
}

func (r *Request) validateCreate() *Error {
	switch r.Kind {
	case "direct":
		if err := checkID("with", r.With); err != nil {
			return err
		}
		if r.Name != "" {
			return badFrame("", "name: only for a group")
		}
		if len(r.Members) != 0 {
			return badFrame("", "members: only for a group")
		}
	case "group":
		if r.With != "" {
			return badFrame("", "with: only for a direct conversation")
		}
		if err := checkName(r.Name); err != nil {
			return err
		}
		return checkIDs("members", r.Members)
	case "":
		return badFrame("", "kind: required (direct or group)")
	default:
		return badFrame("", "kind: must be direct or group")
	}
	return nil
}

// checkUpdate checks the fields of conv.update.
func (r *Request) checkUpdate() *Error {
	if r.Description == nil && r.AvatarURL == nil && r.Announce == nil {
		return badFrame("", "description: conv.update needs description, avatar_url or announce")
	}
	if d := r.Description; d != nil && len(*d) > MaxDescription && utf8.RuneCountInString(*d) > MaxDescription {
		return badFrame("", "description: longer than "+strconv.Itoa(MaxDescription)+" characters")
	}
	if a := r.AvatarURL; a != nil && *a != "" {
		if len(*a) > MaxAvatarURL {
			return badFrame("", "avatar_url: longer than "+strconv.Itoa(MaxAvatarURL)+" bytes")
		}
		if !strings.HasPrefix(*a, "https://") && !strings.HasPrefix(*a, "http://") {
			return badFrame("", "avatar_url: must be an http or https URL (or empty to clear)")
		}
	}
	return nil
}

// checkPage checks the paging fields of sync and conv.list.
func (r *Request) checkPage() *Error {
	if r.PageSize < 0 || r.PageSize > MaxPageSize {
		return badFrame("", "page_size: must be 1.."+strconv.Itoa(MaxPageSize)+" (0 or absent: no paging)")
	}
	if r.Page == "" {
		return nil
	}
	if r.PageSize == 0 {
		return badFrame("", "page: needs page_size")
	}
	if _, _, ok := ParsePage(r.Page); !ok {
		return badFrame("", "page: must be the next of the previous reply")
	}
	return nil
}

// checkEmoji checks a reaction: 1..MaxEmoji bytes of valid UTF-8 without
// white space or control characters (an emoji with its modifiers and
// joiners, or a short code such as ":+1:").
func checkEmoji(e string) *Error {
	if e == "" {
		return badFrame("", "emoji: required")
	}
	if len(e) > MaxEmoji {
		return badFrame("", "emoji: longer than "+strconv.Itoa(MaxEmoji)+" bytes")
	}
	if !utf8.ValidString(e) {
		return badFrame("", "emoji: not valid UTF-8")
	}
	for _, c := range e {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return badFrame("", "emoji: must not hold white space or control characters")
		}
	}
	return nil
}

// checkName checks a group name's length.
func checkName(name string) *Error {
	if len(name) > MaxName && utf8.RuneCountInString(name) > MaxName {
		return badFrame("", "name: longer than "+strconv.Itoa(MaxName)+" characters")
	}
	return nil
}

// ParsePage splits a page token (the "next" of a sync or conv.list reply):
// the id of the last conversation of the previous page, and for sync the
// unread count of the pages so far, after a dot.
func ParsePage(page string) (after string, unread uint64, ok bool) {
	after, n, dotted := strings.Cut(page, ".")
	if subjects.ValidID(after) != nil {
		return "", 0, false
	}
	if !dotted {
		return after, 0, true
	}
	unread, err := strconv.ParseUint(n, 10, 64)
	if err != nil || len(n) == 0 || n[0] == '+' {
		return "", 0, false
	}
	return after, unread, true
}

// PageToken is the "next" of a page whose last conversation is after, with
// the unread count of the pages so far (sync) when unread is set.
func PageToken(after string, unread *uint64) string {
	if unread == nil {
		return after
	}
	return after + "." + strconv.FormatUint(*unread, 10)
}

// checkID checks a required id field.
func checkID(field, id string) *Error {
	if id == "" {
		return badFrame("", field+": required")
	}
	if subjects.ValidID(id) != nil {
		return badFrame("", field+": must be 1..64 characters of [A-Za-z0-9_-]")
	}
	return nil
}

// checkIDs checks a list of at most MaxUsers ids.
func checkIDs(field string, ids []string) *Error {
	if len(ids) > MaxUsers {
		return badFrame("", field+": more than "+strconv.Itoa(MaxUsers)+" users")
	}
	for i, id := range ids {
		if subjects.ValidID(id) != nil {
			return badFrame("", field+"["+strconv.Itoa(i)+"]: must be 1..64 characters of [A-Za-z0-9_-]")
		}
	}
	return nil
}

func checkLimit(limit, max int) *Error {
	if limit < 0 || limit > max {
		return badFrame("", "limit: must be 1.."+strconv.Itoa(max)+" (0 or absent: default)")
	}
	return nil
}

// checkRequestID checks a request id: 1..MaxRequestID bytes of printable
// ASCII without space.
func checkRequestID(id string) *Error {
	if id == "" {
		return badFrame("", "id: required")
	}
	if len(id) > MaxRequestID {
		return badFrame("", "id: longer than "+strconv.Itoa(MaxRequestID)+" characters")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return badFrame("", "id: must be printable ASCII without space")
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// checkAttachments checks the attachments of a send: at most
// MaxAttachments, each with an id of an upload's shape ("a_" and 26
// characters of [a-z2-7]), once, and a name of at most MaxAttachmentName
// bytes of UTF-8 without control characters.
func checkAttachments(as []natter.Attachment) *Error {
	if len(as) > MaxAttachments {
		return badFrame("", "attachments: "+strconv.Itoa(len(as))+" given, at most "+strconv.Itoa(MaxAttachments))
	}
	for i, a := range as {
		field := "attachments[" + strconv.Itoa(i) + "]"
		if !ValidAttachmentID(a.ID) {
			return badFrame("", field+".id: "+strconv.Quote(a.ID)+" is not an attachment id (the id POST /v1/attachments returned)")
		}
		for _, b := range as[:i] {
			if b.ID == a.ID {
				return badFrame("", field+".id: "+a.ID+" given twice")
			}
		}
		if e := CheckAttachmentName(a.Name); e != nil {
			return badFrame("", field+"."+e.Msg)
		}
	}
	return nil
}

// ValidAttachmentID reports whether id has the shape of an attachment id:
// "a_" and 26 characters of [a-z2-7].
func ValidAttachmentID(id string) bool {
	if len(id) != 28 || id[:2] != "a_" {
		return false
	}
	for i := 2; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// CheckAttachmentName returns a [CodeBadFrame] error unless name is a
// usable file name: at most MaxAttachmentName bytes of UTF-8, no control
// characters, no path separators.
func CheckAttachmentName(name string) *Error {
	if len(name) > MaxAttachmentName {
		return badFrame("", "name: longer than "+strconv.Itoa(MaxAttachmentName)+" bytes")
	}
	if !utf8.ValidString(name) {
		return badFrame("", "name: not valid UTF-8")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || c == '/' || c == '\\' {
			return badFrame("", "name: has "+strconv.QuoteRune(c)+" (no control characters or path separators)")
		}
	}
	return nil
}

// checkMentions checks the mentions of a send: at most natter.MaxMentions,
// each a user id or natter.MentionAll, none twice. Whether each is a
// member is the edge's check.
func checkMentions(ms []string) *Error {
	if len(ms) > natter.MaxMentions {
		return badFrame("", "mentions: more than "+strconv.Itoa(natter.MaxMentions))
	}
	for i, u := range ms {
		name := "mentions[" + strconv.Itoa(i) + "]"
		if u != natter.MentionAll {
			if err := checkID(name, u); err != nil {
				return err
			}
		}
		if slices.Contains(ms[:i], u) {
			return badFrame("", name+": "+strconv.Quote(u)+" mentioned twice")
		}
	}
	return nil
}

package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"

	natter "github.com/natter-im/natter"
)

// Decode parses and validates one client frame. Errors are [*Error]:
//
//   - [CodeBadJSON] for an empty frame, invalid JSON or JSON that is not an
//     object (ID "");
//   - [CodeBadFrame] with ID "" when the request id is missing or invalid;
//   - [CodeBadFrame] naming the field for a missing, mistyped or invalid
//     field, and [CodeUnknownOp], both with the request id.
//
// Fields Decode does not know are ignored, so that newer clients can send
// them to older edges. Field names are case-sensitive; when a field appears
// twice the last one counts. Strings are unescaped as encoding/json does.
// Decode does not check the body size: the edge limits the frame size before
// decoding and calls [CheckBody] after.
func Decode(data []byte) (*Request, error) {
	r := new(Request)
	if err := decodeInto(data, r); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeInto is [Decode] into r, which it zeroes first: a reader of many
// frames reuses one Request instead of allocating one per frame. Nothing
// DecodeInto stores in r aliases data (strings are copies).
func DecodeInto(data []byte, r *Request) error {
	*r = Request{}
	if err := decodeInto(data, r); err != nil {
		return err
	}
	return nil
}

func decodeInto(data []byte, r *Request) *Error {
	if !isObject(data) {
		return &Error{Code: CodeBadJSON, Msg: "frame must be one JSON object"}
	}
	d := decoder{data: data}
	d.ws()
	err := d.each('{', func(key []byte) error { return d.field(r, key) })
	if err == nil {
		d.ws()
		if d.pos != len(data) {
			err = d.fail(d.pos)
		}
	}
	if err != nil {
		return &Error{Code: CodeBadJSON, Msg: "invalid JSON at byte " + strconv.Itoa(d.off)}
	}
	if d.typeErr == "id" {
		return badFrame("", "id: must be a string")
	}
	if e := checkRequestID(r.ID); e != nil {
		return e
	}
	if d.typeErr != "" {
		return badFrame(r.ID, d.typeErr+": "+typeHint(d.typeErr))
	}
	if e := r.validate(); e != nil {
		e.ID = r.ID
		return e
	}
	return nil
}

// field decodes the value of one member of the frame into r.
func (d *decoder) field(r *Request, key []byte) error {
	switch string(key) {
	case "op":
		return d.op(r)
	case "id":
		return d.strField(&r.ID, "id")
	case "token":
		return d.strField(&r.Token, "token")
	case "device":
		return d.strField(&r.Device, "device")
	case "conv":
		return d.strField(&r.Conv, "conv")
	case "cmid":
		return d.strField(&r.Cmid, "cmid")
	case "body":
		return d.strField(&r.Body, "body")
	case "type":
		return d.strField(&r.Type, "type")
	case "from":
		return d.strField(&r.From, "from")
	case "first":
		return d.boolField(&r.First, "first")
	case "seq":
		return d.uintField(&r.Seq, "seq")
	case "cursors":
		return d.cursors(r)
	case "limit":
		return d.intField(&r.Limit, "limit")
	case "before":
		return d.uintPtrField(&r.Before, "before")
	case "after":
		return d.uintPtrField(&r.After, "after")
	case "page_size":
		return d.intField(&r.PageSize, "page_size")
	case "page":
		return d.strField(&r.Page, "page")
	case "kind":
		return d.strField(&r.Kind, "kind")
	case "with":
		return d.strField(&r.With, "with")
	case "name":
		return d.strField(&r.Name, "name")
	case "members":
		return d.listField(&r.Members, "members")
	case "users":
		return d.listField(&r.Users, "users")
	case "hidden":
		return d.boolField(&r.Hidden, "hidden")
	case "state":
		return d.strField(&r.State, "state")
	case "after_user":
		return d.strField(&r.AfterUser, "after_user")
	case "ref":
		return d.strField(&r.Ref, "ref")
	case "emoji":
		return d.strField(&r.Emoji, "emoji")
	case "reply_to":
		return d.strField(&r.ReplyTo, "reply_to")
	case "thread":
		return d.strField(&r.Thread, "thread")
	case "mentions":
		return d.listField(&r.Mentions, "mentions")
	case "root":
		return d.strField(&r.Root, "root")
	case "remove":
		return d.boolField(&r.Remove, "remove")
	case "attachments":
		return d.attachments(r)
	case "description":
		return d.strPtrField(&r.Description, "description")
	case "avatar_url":
		return d.strPtrField(&r.AvatarURL, "avatar_url")
	case "announce":
		return d.boolPtrField(&r.Announce, "announce")
	case "to":
		return d.strField(&r.To, "to")
	case "duration_ms":
		return d.uintField(&r.DurationMS, "duration_ms")
	case "muted_until":
		return d.uintPtrField(&r.MutedUntil, "muted_until")
	case "pinned":
		return d.boolPtrField(&r.Pinned, "pinned")
	case "archived":
		return d.boolPtrField(&r.Archived, "archived")
	case "cleared":
		return d.uintPtrField(&r.Cleared, "cleared")
	case "provider":
		return d.strField(&r.Provider, "provider")
	case "subscription":
		return d.subscription(r)
	default:
		return d.skip()
	}
}

// ops lets the op of a frame share the constant's memory.
var ops = [...]string{
	OpAuth, OpSend, OpAck, OpSync, OpHistory, OpConvCreate, OpConvList,
	OpConvGet, OpMembersAdd, OpMembersRemove, OpMembersList, OpRead, OpPing,
	OpPresenceSub, OpPresenceUnsub, OpPresenceSet, OpTyping, OpReceipts,
	OpMsgEdit, OpMsgDelete, OpReact, OpThread,
	OpConvUpdate, OpAdminsAdd, OpAdminsRemove, OpOwnerTransfer, OpMembersMute, OpMembersUnmute,
	OpBlock, OpUnblock, OpBlocksList, OpConvSettings,
	OpPushRegister, OpPushUnregister,
}

func (d *decoder) op(r *Request) error {
	if d.peek() != '"' {
		return d.scalar("op")
	}
	b, err := d.str()
	if err != nil {
		return err
	}
	for _, op := range ops {
		if string(b) == op {
			r.Op = op
			return nil
		}
	}
	r.Op = string(b)
	return nil
}

// scalar handles a value that is not of the field's type: null leaves the
// field as it is (as in encoding/json), anything else is a type error.
func (d *decoder) scalar(field string) error {
	if d.null() {
		return nil
	}
	return d.mistyped(field)
}

func (d *decoder) strField(dst *string, field string) error {
	if d.peek() != '"' {
		return d.scalar(field)
	}
	b, err := d.str()
	if err != nil {
		return err
	}
	*dst = string(b)
	return nil
}

func (d *decoder) boolField(dst *bool, field string) error {
	switch {
	case bytes.HasPrefix(d.data[d.pos:], []byte("true")):
		d.pos += 4
		*dst = true
		return nil
	case bytes.HasPrefix(d.data[d.pos:], []byte("false")):
		d.pos += 5
		*dst = false
		return nil
	}
	return d.scalar(field)
}

func (d *decoder) uintField(dst *uint64, field string) error {
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		return d.scalar(field)
	}
	num, isInt, err := d.number()
	if err != nil {
		return err
	}
	n, ok := parseUint(num)
	if !isInt || !ok {
		if d.typeErr == "" {
			d.typeErr = field
		}
		return nil
	}
	*dst = n
	return nil
}

// uintPtrField is uintField for an optional field, where present 0 differs
// from absent: a number sets *dst, null sets it to nil (as encoding/json
// does for a pointer).
func (d *decoder) uintPtrField(dst **uint64, field string) error {
	return optional(d, dst, func(v *uint64) error { return d.uintField(v, field) })
}

// strPtrField is strField for an optional field, where present "" differs
// from absent: a string sets *dst, null sets it to nil.
func (d *decoder) strPtrField(dst **string, field string) error {
	return optional(d, dst, func(v *string) error {
		if d.peek() != '"' {
			return d.mistyped(field)
		}
		return d.strField(v, field)
	})
}

// boolPtrField is boolField for an optional field: null sets *dst to nil.
func (d *decoder) boolPtrField(dst **bool, field string) error {
	return optional(d, dst, func(v *bool) error {
		switch {
		case bytes.HasPrefix(d.data[d.pos:], []byte("true")):
			d.pos += 4
			*v = true
		case bytes.HasPrefix(d.data[d.pos:], []byte("false")):
			d.pos += 5
		default:
			return d.mistyped(field)
		}
		return nil
	})
}

// optional reads an optional field into *dst with read: null sets *dst to
// nil, as encoding/json does for a pointer.
func optional[T any](d *decoder, dst **T, read func(*T) error) error {
	if d.null() {
		*dst = nil
		return nil
	}
	var v T
	if err := read(&v); err != nil {
		return err
	}
	*dst = &v
	return nil
}

func (d *decoder) intField(dst *int, field string) error {
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		return d.scalar(field)
	}
	num, isInt, err := d.number()
	if err != nil {
		return err
	}
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	n, ok := parseUint(num)
	const maxInt = 1<<(strconv.IntSize-1) - 1
	switch {
	case !isInt || !ok || n > maxInt+1 || n == maxInt+1 && !neg:
		if d.typeErr == "" {
			d.typeErr = field
		}
	case neg:
		*dst = int(-n)
	default:
		*dst = int(n)
	}
	return nil
}

// parseUint parses the digits of an integer literal.
func parseUint(num []byte) (uint64, bool) {
	if len(num) == 0 || num[0] == '-' {
		return 0, false
	}
	var n uint64
	for _, c := range num {
		if n > (1<<64-1)/10 {
			return 0, false
		}
		n1 := n*10 + uint64(c-'0')
		if n1 < n*10 {
			return 0, false
		}
		n = n1
	}
	return n, true
}

func (d *decoder) cursors(r *Request) error {
	if d.peek() != '{' {
		if d.null() {
			r.Cursors = nil
			return nil
		}
		return d.mistyped("cursors")
	}
	if r.Cursors == nil {
		r.Cursors = make(map[string]uint64)
	}
	return d.each('{', func(key []byte) error {
		conv := string(key)
		var seq uint64
		if err := d.uintField(&seq, "cursors"); err != nil {
			return err
		}
		r.Cursors[conv] = seq
		return nil
	})
}

// subscription decodes a Web Push subscription as encoding/json would into
// a *PushSubscription: null sets nil, an object fills the (new or present)
// value, unknown members are skipped, and member names match regardless of
// case, as encoding/json matches the fields of a nested struct.
func (d *decoder) subscription(r *Request) error {
	if d.peek() != '{' {
		if d.null() {
			r.Subscription = nil
			return nil
		}
		return d.mistyped("subscription")
	}
	if r.Subscription == nil {
		r.Subscription = new(PushSubscription)
	}
	s := r.Subscription
	return d.each('{', func(key []byte) error {
		switch {
		case bytes.EqualFold(key, []byte("endpoint")):
			return d.strField(&s.Endpoint, "subscription")
		case bytes.EqualFold(key, []byte("keys")):
			if d.peek() != '{' {
				return d.scalar("subscription")
			}
			return d.each('{', func(key []byte) error {
				switch {
				case bytes.EqualFold(key, []byte("p256dh")):
					return d.strField(&s.Keys.P256dh, "subscription")
				case bytes.EqualFold(key, []byte("auth")):
					return d.strField(&s.Keys.Auth, "subscription")
				}
				return d.skip()
			})
		}
		return d.skip()
	})
}

func (d *decoder) listField(dst *[]string, field string) error {
	if d.peek() != '[' {
		if d.null() {
			*dst = nil
			return nil
		}
		return d.mistyped(field)
	}
	out := []string{}
	err := d.each('[', func([]byte) error {
		var s string
		if err := d.strField(&s, field); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	*dst = out
	return err
}

// isObject reports whether data starts (after white space) with '{'.
func isObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// typeHint says what type a field must have.
func typeHint(field string) string {
	switch field {
	case "seq", "before", "after", "duration_ms", "muted_until", "cleared":
		return "must be an integer >= 0"
	case "limit", "page_size":
		return "must be an integer"
	case "cursors":
		return `must be an object of conversation id to seq ({"c1": 12})`
	case "members", "users":
		return "must be an array of user ids"
	case "attachments":
		return `must be an array of objects ({"id":"a_...","name":"x.png"})`
	case "first", "hidden", "announce", "pinned", "archived", "remove":
		return "must be a boolean"
	case "subscription":
		return `must be an object {"endpoint": "https://...", "keys": {"p256dh": "...", "auth": "..."}}`
	default:
		return "must be a string"
	}
}

// attachments reads the attachments of a send with encoding/json (rare,
// and a list of objects): a value that is not such a list is a type error.
func (d *decoder) attachments(r *Request) error {
	start := d.pos
	if err := d.skip(); err != nil {
		return err
	}
	raw := d.data[start:d.pos]
	if string(raw) == "null" {
		r.Attachments = nil
		return nil
	}
	var as []natter.Attachment
	if raw[0] != '[' || json.Unmarshal(raw, &as) != nil {
		if d.typeErr == "" {
			d.typeErr = "attachments"
		}
		return nil
	}
	r.Attachments = as
	return nil
}

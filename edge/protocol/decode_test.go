package protocol_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/natter-im/natter/edge/protocol"
)

var allOps = []string{
	protocol.OpAuth, protocol.OpSend, protocol.OpAck, protocol.OpSync, protocol.OpHistory,
	protocol.OpConvCreate, protocol.OpConvList, protocol.OpConvGet, protocol.OpConvRename, protocol.OpMembersAdd,
	protocol.OpMembersRemove, protocol.OpMembersList, protocol.OpRead, protocol.OpPing,
	protocol.OpPresenceSub, protocol.OpPresenceUnsub, protocol.OpPresenceSet, protocol.OpTyping,
	protocol.OpReceipts, protocol.OpMsgEdit, protocol.OpMsgDelete, protocol.OpReact, protocol.OpThread,
	protocol.OpReceipts, protocol.OpConvUpdate, protocol.OpAdminsAdd, protocol.OpAdminsRemove,
	protocol.OpOwnerTransfer, protocol.OpMembersMute, protocol.OpMembersUnmute,
	protocol.OpBlock, protocol.OpUnblock, protocol.OpBlocksList, protocol.OpConvSettings, protocol.OpPushRegister, protocol.OpPushUnregister,
}

var allCodes = []protocol.Code{
	protocol.CodeBadJSON, protocol.CodeBadFrame, protocol.CodeUnknownOp, protocol.CodeTooBig,
	protocol.CodeBadVersion, protocol.CodeUnauthorized, protocol.CodeNotMember,
	protocol.CodeNotFound, protocol.CodeForbidden, protocol.CodeRateLimited,
	protocol.CodeConflict, protocol.CodeUnavailable, protocol.CodeInternal, protocol.CodeTooMany,
	protocol.CodeTokenRevoked, protocol.CodeBanned,
	protocol.CodeUnsupportedType, protocol.CodeQuotaExceeded,
}

func TestDecodeValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string
		want  protocol.Request
	}{
		{"auth", `{"op":"auth","id":"1","token":"t.o.k"}`,
			protocol.Request{Op: "auth", ID: "1", Token: "t.o.k"}},
		{"auth device", `{"op":"auth","id":"1","token":"tok","device":"d-1"}`,
			protocol.Request{Op: "auth", ID: "1", Token: "tok", Device: "d-1"}},
		{"send", `{"op":"send","id":"2","conv":"c1","cmid":"x_1","body":"hi"}`,
			protocol.Request{Op: "send", ID: "2", Conv: "c1", Cmid: "x_1", Body: "hi"}},
		{"send all fields", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"h\u00e9\n","type":"text","from":"alice"}`,
			protocol.Request{Op: "send", ID: "2", Conv: "c1", Cmid: "x", Body: "hé\n", Type: "text", From: "alice"}},
		{"send first", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","first":true}`,
			protocol.Request{Op: "send", ID: "2", Conv: "c1", Cmid: "x", Body: "b", First: true}},
		{"send first false", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","first":true,"first":false}`,
			protocol.Request{Op: "send", ID: "2", Conv: "c1", Cmid: "x", Body: "b"}},
		{"send type 32", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","type":"` + strings.Repeat("t", 32) + `"}`,
			protocol.Request{Op: "send", ID: "2", Conv: "c1", Cmid: "x", Body: "b", Type: strings.Repeat("t", 32)}},
		{"send unknown fields ignored", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","future":{"a":[1,2]},"x":null}`,
			protocol.Request{Op: "send", ID: "2", Conv: "c1", Cmid: "x", Body: "b"}},
		{"white space", " \n\t{ \"op\" : \"ping\" , \"id\" : \"9\" } \r\n",
			protocol.Request{Op: "ping", ID: "9"}},
		{"ack", `{"op":"ack","id":"3","conv":"c1","seq":18446744073709551615}`,
			protocol.Request{Op: "ack", ID: "3", Conv: "c1", Seq: 1<<64 - 1}},
		{"read", `{"op":"read","id":"3","conv":"c1","seq":1}`,
			protocol.Request{Op: "read", ID: "3", Conv: "c1", Seq: 1}},
		{"sync empty", `{"op":"sync","id":"4","cursors":{}}`,
			protocol.Request{Op: "sync", ID: "4", Cursors: map[string]uint64{}}},
		{"sync absent cursors", `{"op":"sync","id":"4"}`,
			protocol.Request{Op: "sync", ID: "4"}},
		{"sync cursors limit", `{"op":"sync","id":"4","cursors":{"c1":0,"c2":12},"limit":1000}`,
			protocol.Request{Op: "sync", ID: "4", Cursors: map[string]uint64{"c1": 0, "c2": 12}, Limit: 1000}},
		{"sync first page", `{"op":"sync","id":"4","page_size":500}`,
			protocol.Request{Op: "sync", ID: "4", PageSize: 500}},
		{"sync next page", `{"op":"sync","id":"4","page_size":1,"page":"g_1.12"}`,
			protocol.Request{Op: "sync", ID: "4", PageSize: 1, Page: "g_1.12"}},
		{"conv.list page", `{"op":"conv.list","id":"4","page_size":20,"page":"d_1"}`,
			protocol.Request{Op: "conv.list", ID: "4", PageSize: 20, Page: "d_1"}},
		{"history newest", `{"op":"history","id":"5","conv":"c1"}`,
			protocol.Request{Op: "history", ID: "5", Conv: "c1"}},
		{"history before", `{"op":"history","id":"5","conv":"c1","before":10,"limit":200}`,
			protocol.Request{Op: "history", ID: "5", Conv: "c1", Before: protocol.Seq(10), Limit: 200}},
		{"history after", `{"op":"history","id":"5","conv":"c1","after":10,"limit":1}`,
			protocol.Request{Op: "history", ID: "5", Conv: "c1", After: protocol.Seq(10), Limit: 1}},
		{"history after 0", `{"op":"history","id":"5","conv":"c1","after":0}`,
			protocol.Request{Op: "history", ID: "5", Conv: "c1", After: protocol.Seq(0)}},
		{"history after null", `{"op":"history","id":"5","conv":"c1","after":0,"after":null,"before":3}`,
			protocol.Request{Op: "history", ID: "5", Conv: "c1", Before: protocol.Seq(3)}},
		{"create direct", `{"op":"conv.create","id":"6","kind":"direct","with":"bob"}`,
			protocol.Request{Op: "conv.create", ID: "6", Kind: "direct", With: "bob"}},
		{"create group", `{"op":"conv.create","id":"6","kind":"group","name":"Tëam","members":["bob","carol"]}`,
			protocol.Request{Op: "conv.create", ID: "6", Kind: "group", Name: "Tëam", Members: []string{"bob", "carol"}}},
		{"create group bare", `{"op":"conv.create","id":"6","kind":"group"}`,
			protocol.Request{Op: "conv.create", ID: "6", Kind: "group"}},
		{"create group name 128 runes", `{"op":"conv.create","id":"6","kind":"group","name":"` + strings.Repeat("é", 128) + `"}`,
			protocol.Request{Op: "conv.create", ID: "6", Kind: "group", Name: strings.Repeat("é", 128)}},
		{"conv.list", `{"op":"conv.list","id":"7"}`,
			protocol.Request{Op: "conv.list", ID: "7"}},
		{"conv.get", `{"op":"conv.get","id":"7","conv":"c1"}`,
			protocol.Request{Op: "conv.get", ID: "7", Conv: "c1"}},
		{"conv.rename of 128 characters", `{"op":"conv.rename","id":"7","conv":"c1","name":"` + strings.Repeat("é", 128) + `"}`,
			protocol.Request{Op: "conv.rename", ID: "7", Conv: "c1", Name: strings.Repeat("é", 128)}},
		{"members.add", `{"op":"members.add","id":"8","conv":"c1","users":["u1","u2"]}`,
			protocol.Request{Op: "members.add", ID: "8", Conv: "c1", Users: []string{"u1", "u2"}}},
		{"members.add 1000", `{"op":"members.add","id":"8","conv":"c1","users":[` + userList(1000) + `]}`,
			protocol.Request{Op: "members.add", ID: "8", Conv: "c1", Users: users(1000)}},
		{"members.remove", `{"op":"members.remove","id":"8","conv":"c1","users":["u1"]}`,
			protocol.Request{Op: "members.remove", ID: "8", Conv: "c1", Users: []string{"u1"}}},
		{"members.list", `{"op":"members.list","id":"8","conv":"c1"}`,
			protocol.Request{Op: "members.list", ID: "8", Conv: "c1"}},
		{"ping", `{"op":"ping","id":"9"}`,
			protocol.Request{Op: "ping", ID: "9"}},
		{"msg.edit", `{"op":"msg.edit","id":"9","conv":"c1","ref":"m_1","cmid":"e1","body":"new"}`,
			protocol.Request{Op: "msg.edit", ID: "9", Conv: "c1", Ref: "m_1", Cmid: "e1", Body: "new"}},
		{"msg.delete", `{"op":"msg.delete","id":"9","conv":"c1","ref":"m_1","cmid":"d1"}`,
			protocol.Request{Op: "msg.delete", ID: "9", Conv: "c1", Ref: "m_1", Cmid: "d1"}},
		{"react", `{"op":"react","id":"9","conv":"c1","ref":"m_1","emoji":"👍🏽"}`,
			protocol.Request{Op: "react", ID: "9", Conv: "c1", Ref: "m_1", Emoji: "👍🏽"}},
		{"react remove", `{"op":"react","id":"9","conv":"c1","ref":"m_1","emoji":":+1:","remove":true}`,
			protocol.Request{Op: "react", ID: "9", Conv: "c1", Ref: "m_1", Emoji: ":+1:", Remove: true}},
		{"id 64 printable", `{"op":"ping","id":"` + strings.Repeat("~", 64) + `"}`,
			protocol.Request{Op: "ping", ID: strings.Repeat("~", 64)}},
		{"id escaped", `{"op":"ping","id":"a\"b"}`,
			protocol.Request{Op: "ping", ID: `a"b`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := protocol.Decode([]byte(tt.frame))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("Decode =\n%+v\nwant\n%+v", *got, tt.want)
			}
			// What a client encodes decodes to the same request.
			enc, err := got.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := protocol.Decode(enc)
			if err != nil {
				t.Fatalf("Decode(Encode) %s: %v", enc, err)
			}
			if !sameRequest(got, again) {
				t.Fatalf("round trip %s:\n%+v\nwant\n%+v", enc, *again, *got)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 65)
	tests := []struct {
		name  string
		frame string
		code  protocol.Code
		id    string
		msg   string // prefix of the message
	}{
		{"empty", ``, protocol.CodeBadJSON, "", ""},
		{"space", "  \n", protocol.CodeBadJSON, "", ""},
		{"null", `null`, protocol.CodeBadJSON, "", ""},
		{"array", `[{"op":"ping","id":"1"}]`, protocol.CodeBadJSON, "", ""},
		{"string", `"ping"`, protocol.CodeBadJSON, "", ""},
		{"number", `1`, protocol.CodeBadJSON, "", ""},
		{"truncated", `{"op":"ping","id":"1"`, protocol.CodeBadJSON, "", ""},
		{"syntax", `{"op":"ping","id":"1",}`, protocol.CodeBadJSON, "", "invalid JSON at byte"},
		{"two objects", `{"op":"ping","id":"1"}{}`, protocol.CodeBadJSON, "", ""},
		{"missing id", `{"op":"ping"}`, protocol.CodeBadFrame, "", "id: required"},
		{"empty id", `{"op":"ping","id":""}`, protocol.CodeBadFrame, "", "id: required"},
		{"numeric id", `{"op":"ping","id":1}`, protocol.CodeBadFrame, "", "id: must be a string"},
		{"long id", `{"op":"ping","id":"` + long + `"}`, protocol.CodeBadFrame, "", "id: longer"},
		{"id with space", `{"op":"ping","id":"a b"}`, protocol.CodeBadFrame, "", "id: must be printable"},
		{"id control", `{"op":"ping","id":"a\u0000"}`, protocol.CodeBadFrame, "", "id: must be printable"},
		{"id non-ascii", `{"op":"ping","id":"é"}`, protocol.CodeBadFrame, "", "id: must be printable"},
		{"bad id wins over bad field", `{"op":"send","id":"","body":1}`, protocol.CodeBadFrame, "", "id:"},
		{"missing op", `{"id":"1"}`, protocol.CodeBadFrame, "1", "op: required"},
		{"numeric op", `{"op":7,"id":"1"}`, protocol.CodeBadFrame, "1", "op: must be a string"},
		{"unknown op", `{"op":"dance","id":"1"}`, protocol.CodeUnknownOp, "1", "op:"},

		{"auth no token", `{"op":"auth","id":"1"}`, protocol.CodeBadFrame, "1", "token: required"},
		{"auth bad device", `{"op":"auth","id":"1","token":"t","device":"d 1"}`, protocol.CodeBadFrame, "1", "device:"},
		{"auth long device", `{"op":"auth","id":"1","token":"t","device":"` + long + `"}`, protocol.CodeBadFrame, "1", "device:"},

		{"send no conv", `{"op":"send","id":"2","cmid":"x","body":"b"}`, protocol.CodeBadFrame, "2", "conv: required"},
		{"send bad conv", `{"op":"send","id":"2","conv":"im.msg.x","cmid":"x","body":"b"}`, protocol.CodeBadFrame, "2", "conv:"},
		{"send no cmid", `{"op":"send","id":"2","conv":"c1","body":"b"}`, protocol.CodeBadFrame, "2", "cmid: required"},
		{"send bad cmid", `{"op":"send","id":"2","conv":"c1","cmid":"a/b","body":"b"}`, protocol.CodeBadFrame, "2", "cmid:"},
		{"send long cmid", `{"op":"send","id":"2","conv":"c1","cmid":"` + long + `","body":"b"}`, protocol.CodeBadFrame, "2", "cmid:"},
		{"send no body", `{"op":"send","id":"2","conv":"c1","cmid":"x"}`, protocol.CodeBadFrame, "2", "body: required"},
		{"send empty body", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":""}`, protocol.CodeBadFrame, "2", "body: required"},
		{"send numeric body", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":5}`, protocol.CodeBadFrame, "2", "body: must be a string"},
		{"send string first", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","first":"true"}`, protocol.CodeBadFrame, "2", "first: must be a boolean"},
		{"send numeric first", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","first":1}`, protocol.CodeBadFrame, "2", "first: must be a boolean"},
		{"send object body", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":{"a":1}}`, protocol.CodeBadFrame, "2", "body: must be a string"},
		{"send long type", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","type":"` + strings.Repeat("t", 33) + `"}`, protocol.CodeBadFrame, "2", "type:"},
		{"send numeric from", `{"op":"send","id":"2","conv":"c1","cmid":"x","body":"b","from":1}`, protocol.CodeBadFrame, "2", "from:"},

		{"sync page_size 0 with page", `{"op":"sync","id":"4","page":"g_1"}`, protocol.CodeBadFrame, "4", "page: needs page_size"},
		{"sync page_size too big", `{"op":"sync","id":"4","page_size":501}`, protocol.CodeBadFrame, "4", "page_size: must be 1..500"},
		{"sync page_size negative", `{"op":"sync","id":"4","page_size":-1}`, protocol.CodeBadFrame, "4", "page_size: must be 1..500"},
		{"sync page_size string", `{"op":"sync","id":"4","page_size":"5"}`, protocol.CodeBadFrame, "4", "page_size: must be an integer"},
		{"sync bad page", `{"op":"sync","id":"4","page_size":5,"page":"a/b"}`, protocol.CodeBadFrame, "4", "page: must be the next"},
		{"sync bad page count", `{"op":"sync","id":"4","page_size":5,"page":"g_1.x"}`, protocol.CodeBadFrame, "4", "page: must be the next"},
		{"sync empty page count", `{"op":"sync","id":"4","page_size":5,"page":"g_1."}`, protocol.CodeBadFrame, "4", "page: must be the next"},
		{"conv.list page_size too big", `{"op":"conv.list","id":"4","page_size":1000}`, protocol.CodeBadFrame, "4", "page_size: must be 1..500"},
		{"conv.list numeric page", `{"op":"conv.list","id":"4","page_size":5,"page":7}`, protocol.CodeBadFrame, "4", "page: must be a string"},

		{"edit no ref", `{"op":"msg.edit","id":"3","conv":"c1","cmid":"e","body":"b"}`, protocol.CodeBadFrame, "3", "ref: required"},
		{"edit bad ref", `{"op":"msg.edit","id":"3","conv":"c1","ref":"m.1","cmid":"e","body":"b"}`, protocol.CodeBadFrame, "3", "ref: must be"},
		{"edit no cmid", `{"op":"msg.edit","id":"3","conv":"c1","ref":"m_1","body":"b"}`, protocol.CodeBadFrame, "3", "cmid: required"},
		{"edit no body", `{"op":"msg.edit","id":"3","conv":"c1","ref":"m_1","cmid":"e"}`, protocol.CodeBadFrame, "3", "body: required"},
		{"delete no conv", `{"op":"msg.delete","id":"3","ref":"m_1","cmid":"d"}`, protocol.CodeBadFrame, "3", "conv: required"},
		{"delete with body", `{"op":"msg.delete","id":"3","conv":"c1","ref":"m_1","cmid":"d","body":"x"}`, protocol.CodeBadFrame, "3", "body: not allowed"},
		{"delete numeric ref", `{"op":"msg.delete","id":"3","conv":"c1","ref":1,"cmid":"d"}`, protocol.CodeBadFrame, "3", "ref: must be a string"},

		{"react no emoji", `{"op":"react","id":"3","conv":"c1","ref":"m_1"}`, protocol.CodeBadFrame, "3", "emoji: required"},
		{"react long emoji", `{"op":"react","id":"3","conv":"c1","ref":"m_1","emoji":"` + strings.Repeat("x", 33) + `"}`, protocol.CodeBadFrame, "3", "emoji: longer"},
		{"react space", `{"op":"react","id":"3","conv":"c1","ref":"m_1","emoji":"a b"}`, protocol.CodeBadFrame, "3", "emoji: must not"},
		{"react control", `{"op":"react","id":"3","conv":"c1","ref":"m_1","emoji":"a\u0007"}`, protocol.CodeBadFrame, "3", "emoji: must not"},
		{"react no ref", `{"op":"react","id":"3","conv":"c1","emoji":"x"}`, protocol.CodeBadFrame, "3", "ref: required"},
		{"react string remove", `{"op":"react","id":"3","conv":"c1","ref":"m_1","emoji":"x","remove":"yes"}`, protocol.CodeBadFrame, "3", "remove: must be a boolean"},

		{"ack no conv", `{"op":"ack","id":"3","seq":1}`, protocol.CodeBadFrame, "3", "conv: required"},
		{"ack no seq", `{"op":"ack","id":"3","conv":"c1"}`, protocol.CodeBadFrame, "3", "seq: required"},
		{"ack zero seq", `{"op":"ack","id":"3","conv":"c1","seq":0}`, protocol.CodeBadFrame, "3", "seq: required"},
		{"ack negative seq", `{"op":"ack","id":"3","conv":"c1","seq":-1}`, protocol.CodeBadFrame, "3", "seq: must be an integer"},
		{"ack float seq", `{"op":"ack","id":"3","conv":"c1","seq":1.5}`, protocol.CodeBadFrame, "3", "seq: must be an integer"},
		{"ack string seq", `{"op":"ack","id":"3","conv":"c1","seq":"1"}`, protocol.CodeBadFrame, "3", "seq: must be an integer"},
		{"ack huge seq", `{"op":"ack","id":"3","conv":"c1","seq":18446744073709551616}`, protocol.CodeBadFrame, "3", "seq:"},
		{"read no seq", `{"op":"read","id":"3","conv":"c1"}`, protocol.CodeBadFrame, "3", "seq: required"},
		{"read bad conv", `{"op":"read","id":"3","conv":"","seq":1}`, protocol.CodeBadFrame, "3", "conv: required"},

		{"sync cursors array", `{"op":"sync","id":"4","cursors":["c1"]}`, protocol.CodeBadFrame, "4", "cursors:"},
		{"sync negative cursor", `{"op":"sync","id":"4","cursors":{"c1":-1}}`, protocol.CodeBadFrame, "4", "cursors:"},
		{"sync bad conv key", `{"op":"sync","id":"4","cursors":{"a.b":1}}`, protocol.CodeBadFrame, "4", "cursors:"},
		{"sync empty conv key", `{"op":"sync","id":"4","cursors":{"":1}}`, protocol.CodeBadFrame, "4", "cursors:"},
		{"sync limit high", `{"op":"sync","id":"4","limit":1001}`, protocol.CodeBadFrame, "4", "limit:"},
		{"sync limit negative", `{"op":"sync","id":"4","limit":-1}`, protocol.CodeBadFrame, "4", "limit:"},

		{"history no conv", `{"op":"history","id":"5"}`, protocol.CodeBadFrame, "5", "conv: required"},
		{"history both", `{"op":"history","id":"5","conv":"c1","before":9,"after":2}`, protocol.CodeBadFrame, "5", "before:"},
		{"history after 0 with before", `{"op":"history","id":"5","conv":"c1","after":0,"before":9}`, protocol.CodeBadFrame, "5", "before: not allowed together with after"},
		{"history before 0", `{"op":"history","id":"5","conv":"c1","before":0}`, protocol.CodeBadFrame, "5", "before: must be >= 1"},
		{"history limit high", `{"op":"history","id":"5","conv":"c1","limit":201}`, protocol.CodeBadFrame, "5", "limit:"},
		{"history limit float", `{"op":"history","id":"5","conv":"c1","limit":2.5}`, protocol.CodeBadFrame, "5", "limit:"},
		{"history before string", `{"op":"history","id":"5","conv":"c1","before":"9"}`, protocol.CodeBadFrame, "5", "before:"},

		{"create no kind", `{"op":"conv.create","id":"6","with":"bob"}`, protocol.CodeBadFrame, "6", "kind: required"},
		{"create bad kind", `{"op":"conv.create","id":"6","kind":"channel"}`, protocol.CodeBadFrame, "6", "kind:"},
		{"direct no with", `{"op":"conv.create","id":"6","kind":"direct"}`, protocol.CodeBadFrame, "6", "with: required"},
		{"direct bad with", `{"op":"conv.create","id":"6","kind":"direct","with":"b*b"}`, protocol.CodeBadFrame, "6", "with:"},
		{"direct name", `{"op":"conv.create","id":"6","kind":"direct","with":"bob","name":"x"}`, protocol.CodeBadFrame, "6", "name:"},
		{"direct members", `{"op":"conv.create","id":"6","kind":"direct","with":"bob","members":["c"]}`, protocol.CodeBadFrame, "6", "members:"},
		{"group with", `{"op":"conv.create","id":"6","kind":"group","with":"bob"}`, protocol.CodeBadFrame, "6", "with:"},
		{"group long name", `{"op":"conv.create","id":"6","kind":"group","name":"` + strings.Repeat("é", 129) + `"}`, protocol.CodeBadFrame, "6", "name:"},
		{"group bad member", `{"op":"conv.create","id":"6","kind":"group","members":["bob",""]}`, protocol.CodeBadFrame, "6", "members[1]:"},
		{"group members not array", `{"op":"conv.create","id":"6","kind":"group","members":"bob"}`, protocol.CodeBadFrame, "6", "members:"},
		{"group too many", `{"op":"conv.create","id":"6","kind":"group","members":[` + userList(1001) + `]}`, protocol.CodeBadFrame, "6", "members:"},

		{"conv.get no conv", `{"op":"conv.get","id":"7"}`, protocol.CodeBadFrame, "7", "conv: required"},
		{"conv.rename no conv", `{"op":"conv.rename","id":"7","name":"x"}`, protocol.CodeBadFrame, "7", "conv: required"},
		{"conv.rename no name", `{"op":"conv.rename","id":"7","conv":"g_1"}`, protocol.CodeBadFrame, "7", "name: required"},
		{"conv.rename empty name", `{"op":"conv.rename","id":"7","conv":"g_1","name":""}`, protocol.CodeBadFrame, "7", "name: required"},
		{"conv.rename long name", `{"op":"conv.rename","id":"7","conv":"g_1","name":"` + strings.Repeat("é", 129) + `"}`, protocol.CodeBadFrame, "7", "name: longer than 128"},
		{"members.list bad conv", `{"op":"members.list","id":"7","conv":"c 1"}`, protocol.CodeBadFrame, "7", "conv:"},
		{"members.add no users", `{"op":"members.add","id":"8","conv":"c1"}`, protocol.CodeBadFrame, "8", "users: required"},
		{"members.add empty users", `{"op":"members.add","id":"8","conv":"c1","users":[]}`, protocol.CodeBadFrame, "8", "users: required"},
		{"members.add bad user", `{"op":"members.add","id":"8","conv":"c1","users":["ok","no way"]}`, protocol.CodeBadFrame, "8", "users[1]:"},
		{"members.add numeric user", `{"op":"members.add","id":"8","conv":"c1","users":[1]}`, protocol.CodeBadFrame, "8", "users:"},
		{"members.add too many", `{"op":"members.add","id":"8","conv":"c1","users":[` + userList(1001) + `]}`, protocol.CodeBadFrame, "8", "users:"},
		{"members.remove no conv", `{"op":"members.remove","id":"8","users":["u"]}`, protocol.CodeBadFrame, "8", "conv: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := protocol.Decode([]byte(tt.frame))
			if err == nil {
				t.Fatalf("Decode = %+v, want error %s", *r, tt.code)
			}
			if r != nil {
				t.Errorf("Decode returned a request with error %v", err)
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not *protocol.Error", err, err)
			}
			if pe.Code != tt.code || pe.ID != tt.id || !strings.HasPrefix(pe.Msg, tt.msg) {
				t.Fatalf("error = {ID:%q Code:%s Msg:%q}, want {ID:%q Code:%s Msg:%q...}", pe.ID, pe.Code, pe.Msg, tt.id, tt.code, tt.msg)
			}
			if !errors.Is(err, &protocol.Error{Code: tt.code}) {
				t.Errorf("errors.Is(err, code %s) = false", tt.code)
			}
			if !strings.HasPrefix(err.Error(), "protocol: "+string(tt.code)) {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestValidateWithoutID(t *testing.T) {
	t.Parallel()
	// REST handlers validate a Request they build, which has no id.
	r := protocol.Request{Op: protocol.OpHistory, Conv: "c1", Before: protocol.Seq(5)}
	if err := r.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r.After = protocol.Seq(3)
	if got := protocol.CodeOf(r.Validate()); got != protocol.CodeBadFrame {
		t.Fatalf("Validate with before and after: code %q, want bad_frame", got)
	}
	bad := protocol.Request{Op: protocol.OpPing}
	if _, err := bad.Encode(); protocol.CodeOf(err) != protocol.CodeBadFrame {
		t.Fatalf("Encode without id: %v, want bad_frame", err)
	}
}

func TestLimitOrDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    protocol.Request
		want int
	}{
		{protocol.Request{Op: protocol.OpSync}, protocol.DefaultSyncLimit},
		{protocol.Request{Op: protocol.OpSync, Limit: 7}, 7},
		{protocol.Request{Op: protocol.OpHistory}, protocol.DefaultHistoryLimit},
		{protocol.Request{Op: protocol.OpHistory, Limit: 200}, 200},
		{protocol.Request{Op: protocol.OpPing}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.r.Op, func(t *testing.T) {
			t.Parallel()
			if got := tt.r.LimitOrDefault(); got != tt.want {
				t.Fatalf("LimitOrDefault = %d, want %d", got, tt.want)
			}
		})
	}
}

// sameRequest compares requests, treating nil and empty maps and slices alike
// (an encoded request leaves empty ones out).
func sameRequest(a, b *protocol.Request) bool {
	x, y := *a, *b
	for _, r := range []*protocol.Request{&x, &y} {
		if len(r.Cursors) == 0 {
			r.Cursors = nil
		}
		if len(r.Members) == 0 {
			r.Members = nil
		}
		if len(r.Users) == 0 {
			r.Users = nil
		}
	}
	return reflect.DeepEqual(x, y)
}

func users(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "u" + strings.Repeat("x", i%10) + string(rune('a'+i%26))
	}
	return out
}

func userList(n int) string {
	u := users(n)
	return `"` + strings.Join(u, `","`) + `"`
}

func TestDecodeDepth(t *testing.T) {
	t.Parallel()
	// encoding/json's limit: 10000 levels, the frame's object included.
	for _, levels := range []int{9999, 10000} {
		frame := `{"op":"ping","id":"1","x":` + strings.Repeat("[", levels-1) + strings.Repeat("]", levels-1) + `}`
		_, err := protocol.Decode([]byte(frame))
		valid := json.Valid([]byte(frame))
		if (err == nil) != valid || err != nil && protocol.CodeOf(err) != protocol.CodeBadJSON {
			t.Errorf("%d levels: Decode error %v, json.Valid %v", levels, err, valid)
		}
	}
	frame := `{"op":"ping","id":"1","x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`
	if _, err := protocol.Decode([]byte(frame)); protocol.CodeOf(err) != protocol.CodeBadJSON {
		t.Errorf("10001 levels: Decode error %v, want bad_json", err)
	}
}

// TestDecodeIntoReused: DecodeInto a Request that held another frame (every
// example in turn, each after every other) gives what Decode gives: nothing
// of the frame before is left, and an error is the same error.
func TestDecodeIntoReused(t *testing.T) {
	t.Parallel()
	frames := append(slices.Clone(clientExamples), `{"op":"send","id":"1"}`, `{}`, `nope`)
	var r protocol.Request
	for _, before := range frames {
		for _, frame := range frames {
			_ = protocol.DecodeInto([]byte(before), &r)
			want, werr := protocol.Decode([]byte(frame))
			err := protocol.DecodeInto([]byte(frame), &r)
			if !reflect.DeepEqual(err, werr) {
				t.Fatalf("%s after %s: error %v, want %v", frame, before, err, werr)
			}
			if werr == nil && !reflect.DeepEqual(&r, want) {
				t.Fatalf("%s after %s: %+v, want %+v", frame, before, r, *want)
			}
		}
	}
}

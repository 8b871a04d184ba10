package protocol_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/jetstream/actions"
)

// docPath is docs/protocol.md, relative to this package.
const docPath = "../../docs/protocol.md"

// clientExamples are the client frames of docs/protocol.md, in order.
// TestDocClientExamples fails when the two differ, so the doc, this table
// and the fuzz seeds stay the same.
var clientExamples = []string{
	`{"op":"auth","id":"1","token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig","device":"d1"}`,
	`{"op":"send","id":"2","conv":"g_7f3a9c","cmid":"c-1001","body":"hi all","first":true}`,
	`{"op":"send","id":"3","conv":"d_1cb15457d1ddab60e205c0fe3ca2f65d","cmid":"c-1002","body":"{\"w\":640}","type":"image"}`,
	`{"op":"send","id":"3a","conv":"g_7f3a9c","cmid":"c-1003","body":"the plan","attachments":[{"id":"a_mfrggzdfmztwq2lknnwg23tpoa","name":"plan.png"}]}`,
	`{"op":"ack","id":"4","conv":"g_7f3a9c","seq":42}`,
	`{"op":"read","id":"5","conv":"g_7f3a9c","seq":42}`,
	`{"op":"sync","id":"6","cursors":{}}`,
	`{"op":"sync","id":"7","cursors":{"g_7f3a9c":40,"d_1cb15457d1ddab60e205c0fe3ca2f65d":7},"limit":100}`,
	`{"op":"sync","id":"7a","cursors":{"d_1cb15457d1ddab60e205c0fe3ca2f65d":7},"page_size":1}`,
	`{"op":"sync","id":"7b","cursors":{"g_7f3a9c":40},"page_size":1,"page":"d_1cb15457d1ddab60e205c0fe3ca2f65d.0"}`,
	`{"op":"sync","id":"7c","cursors":{"g_5e1d":3}}`,
	`{"op":"history","id":"8","conv":"g_7f3a9c","limit":2}`,
	`{"op":"history","id":"9","conv":"g_7f3a9c","before":41,"limit":1}`,
	`{"op":"history","id":"10","conv":"g_7f3a9c","after":42}`,
	`{"op":"history","id":"10a","conv":"g_7f3a9c","after":0,"limit":2}`,
	`{"op":"history","id":"10b","conv":"g_5e1d","before":1000}`,
	`{"op":"conv.create","id":"11","kind":"direct","with":"bob"}`,
	`{"op":"conv.create","id":"12","kind":"group","name":"Team","members":["bob","carol"]}`,
	`{"op":"conv.list","id":"13"}`,
	`{"op":"conv.list","id":"13a","page_size":2}`,
	`{"op":"conv.get","id":"14","conv":"g_7f3a9c"}`,
	`{"op":"conv.rename","id":"14a","conv":"g_7f3a9c","name":"Team B"}`,
	`{"op":"members.add","id":"15","conv":"g_7f3a9c","users":["dave"]}`,
	`{"op":"members.remove","id":"16","conv":"g_7f3a9c","users":["carol"]}`,
	`{"op":"members.list","id":"17","conv":"g_7f3a9c"}`,
	`{"op":"conv.update","id":"17a","conv":"g_7f3a9c","description":"Release planning","announce":true}`,
	`{"op":"admins.add","id":"17b","conv":"g_7f3a9c","users":["bob"]}`,
	`{"op":"admins.remove","id":"17c","conv":"g_7f3a9c","users":["bob"]}`,
	`{"op":"owner.transfer","id":"17d","conv":"g_7f3a9c","to":"bob"}`,
	`{"op":"members.mute","id":"17e","conv":"g_7f3a9c","users":["dave"],"duration_ms":3600000}`,
	`{"op":"members.unmute","id":"17f","conv":"g_7f3a9c","users":["dave"]}`,
	`{"op":"block","id":"19a","users":["mallory"]}`,
	`{"op":"unblock","id":"19b","users":["mallory"]}`,
	`{"op":"blocks.list","id":"19c"}`,
	`{"op":"conv.settings","id":"19d","conv":"g_7f3a9c","pinned":true,"muted_until":1767229200000}`,
	`{"op":"conv.settings","id":"19e","conv":"g_7f3a9c","cleared":40}`,
	`{"op":"ping","id":"18"}`,
	`{"op":"presence.sub","id":"21","users":["bob","carol"]}`,
	`{"op":"presence.unsub","id":"22","users":["carol"]}`,
	`{"op":"presence.set","id":"23","hidden":true}`,
	`{"op":"typing","id":"24","conv":"g_7f3a9c","state":"started"}`,
	`{"op":"typing","id":"25","conv":"g_7f3a9c","state":"stopped"}`,
	`{"op":"receipts","id":"27","conv":"g_7f3a9c"}`,
	`{"op":"receipts","id":"28","conv":"g_9b2e41","after_user":"carol","limit":2}`,
	`{"op":"push.register","id":"40","provider":"apns","token":"5b1f0c3a9e2d4f6a8b7c1d0e3f2a4b6c8d9e0f1a2b3c4d5e6f708192a3b4c5d6"}`,
	`{"op":"push.register","id":"41","provider":"fcm","token":"dXk3Yz9QRmGx0rT:APA91bH7zq_3kLmN0pQrStUvWxYz-12345"}`,
	`{"op":"push.register","id":"42","provider":"webpush","subscription":{"endpoint":"https://push.example.net/wp/abc123","keys":{"p256dh":"BGuD43Mzyedq42_VFeRhxeHl5WVR9s0YhrQ6hYFp-IdYomXhnYW7s8ueRsJUGZoRd3lExF9e282hUz37DdGxKrU","auth":"62kRtUpxHN1E5gOByJjVTg"}}}`,
	`{"op":"push.unregister","id":"43"}`,
	`{"op":"msg.edit","id":"29","conv":"g_7f3a9c","ref":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","cmid":"c-1002","body":"hi all!"}`,
	`{"op":"msg.delete","id":"30","conv":"g_7f3a9c","ref":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","cmid":"c-1003"}`,
	`{"op":"react","id":"31","conv":"g_7f3a9c","ref":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","emoji":"👍"}`,
	`{"op":"react","id":"32","conv":"g_7f3a9c","ref":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","emoji":"👍","remove":true}`,
	`{"op":"send","id":"33","conv":"g_7f3a9c","cmid":"c-2001","body":"agreed","reply_to":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","thread":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ"}`,
	`{"op":"thread","id":"34","conv":"g_7f3a9c","root":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","limit":20}`,
	`{"op":"thread","id":"35","conv":"g_7f3a9c","root":"m_K5QWY3DFMZXGC4TBNFZGK2LMNQ","after":45}`,
	`{"op":"send","id":"36","conv":"g_7f3a9c","cmid":"c-2002","body":"@bob @carol look","mentions":["bob","carol"]}`,
	`{"op":"send","id":"37","conv":"g_7f3a9c","cmid":"c-2003","body":"@all meeting at 3","mentions":["@all"]}`,
}

// docExamples returns the frames of the ```json <side> blocks of
// docs/protocol.md, one per non-empty line.
func docExamples(tb testing.TB, side string) []string {
	tb.Helper()
	data, err := os.ReadFile(docPath)
	if err != nil {
		tb.Fatalf("read %s: %v", docPath, err)
	}
	var (
		out []string
		in  bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.TrimSpace(line) == "```json "+side:
			in = true
		case in && strings.TrimSpace(line) == "```":
			in = false
		case in && strings.TrimSpace(line) != "":
			out = append(out, strings.TrimSpace(line))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("scan %s: %v", docPath, err)
	}
	if in {
		tb.Fatalf("%s: unterminated json %s block", docPath, side)
	}
	return out
}

func TestDocClientExamples(t *testing.T) {
	t.Parallel()
	got := docExamples(t, "client")
	if !slices.Equal(got, clientExamples) {
		t.Errorf("client examples in %s differ from clientExamples:\ndoc:\n%s\ntable:\n%s",
			docPath, strings.Join(got, "\n"), strings.Join(clientExamples, "\n"))
	}
	ops := map[string]bool{}
	for _, ex := range got {
		t.Run(ex, func(t *testing.T) {
			t.Parallel()
			if _, err := protocol.Decode([]byte(ex)); err != nil {
				t.Fatalf("Decode: %v", err)
			}
		})
		var r struct{ Op string }
		_ = json.Unmarshal([]byte(ex), &r)
		ops[r.Op] = true
	}
	for _, op := range allOps {
		if !ops[op] {
			t.Errorf("%s has no client example of op %q", docPath, op)
		}
	}
}

func TestDocServerExamples(t *testing.T) {
	t.Parallel()
	types := map[string]bool{}
	for _, ex := range docExamples(t, "server") {
		t.Run(ex, func(t *testing.T) {
			t.Parallel()
			f, err := protocol.DecodeServer([]byte(ex))
			if err != nil {
				t.Fatalf("DecodeServer: %v", err)
			}
			if f.T == protocol.FrameRes && !json.Valid(f.Data) {
				t.Fatalf("data is not JSON: %s", f.Data)
			}
			// A conv push in the doc is byte for byte what the encoder
			// writes for its content.
			if f.T == protocol.FrameConv {
				if b := protocol.ConvPush(*f.Conv); string(b) != ex {
					t.Fatalf("conv push encodes as %s", b)
				}
			}
		})
		var f struct{ T string }
		_ = json.Unmarshal([]byte(ex), &f)
		types[f.T] = true
	}
	for _, ft := range []string{protocol.FrameRes, protocol.FrameErr, protocol.FrameMsg, protocol.FrameHello, protocol.FrameBye, protocol.FrameConv, protocol.FramePresence, protocol.FrameTyping, protocol.FrameRead} {
		if !types[ft] {
			t.Errorf("%s has no server example of frame %q", docPath, ft)
		}
	}
}

// TestDocTables checks that every error code and close code is in the doc.
func TestDocTables(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, c := range allCodes {
		if !strings.Contains(doc, "| `"+string(c)+"` |") {
			t.Errorf("error code %s is not in the error table of %s", c, docPath)
		}
	}
	for _, c := range []int{
		protocol.CloseNormal, protocol.ClosePolicy, protocol.CloseTooBig, protocol.CloseInternal,
		protocol.CloseBadProtocol, protocol.CloseUnauthorized, protocol.CloseAuthTimeout,
		protocol.CloseTokenRevoked, protocol.CloseBanned, protocol.CloseSlowConsumer, protocol.CloseIdleTimeout, protocol.CloseGoingAway,
		protocol.CloseTooManyConnections, protocol.CloseDisconnected,
	} {
		if !strings.Contains(doc, "| "+strconv.Itoa(c)+" |") {
			t.Errorf("close code %d is not in the close table of %s", c, docPath)
		}
	}
}

// TestDocLimits checks that the bounds docs/protocol.md states are the
// package's: a changed constant must change the doc too.
func TestDocLimits(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(data)), " ")
	for _, want := range []string{
		"`limit?` (messages per conversation: 1.." + strconv.Itoa(protocol.MaxSyncLimit) + "; 0 or absent means " + strconv.Itoa(protocol.DefaultSyncLimit) + ")",
		"`limit?` (1.." + strconv.Itoa(protocol.MaxHistoryLimit) + "; 0 or absent means " + strconv.Itoa(protocol.DefaultHistoryLimit),
		"at most " + strconv.Itoa(protocol.MaxName) + " characters",
		"at most " + strconv.Itoa(protocol.MaxUsers) + " users per",
		"`type` at most " + strconv.Itoa(protocol.MaxType) + " bytes",
		"request ids 1.." + strconv.Itoa(protocol.MaxRequestID) + " printable ASCII",
		`"limit: must be 1..` + strconv.Itoa(protocol.MaxHistoryLimit) + ` (0 or absent: default)"`,
		"`sync` and `conv.list` 1.." + strconv.Itoa(protocol.MaxPageSize) + " conversations per page",
		`"page_size: must be 1..` + strconv.Itoa(protocol.MaxPageSize) + ` (0 or absent: no paging)"`,
		"`limit?` (1.." + strconv.Itoa(protocol.MaxReceiptsLimit) + "; 0 or absent means " + strconv.Itoa(protocol.DefaultReceiptsLimit) + ")",
		"groups of at most " + strconv.Itoa(protocol.MaxReceiptMembers) + " members get receipts",
		"at most " + strconv.Itoa(protocol.MaxAttachments) + " attachments per message",
		"file names of at most " + strconv.Itoa(protocol.MaxAttachmentName) + " bytes",
		"`description` (at most " + strconv.Itoa(protocol.MaxDescription) + " characters)",
		"URL of at most " + strconv.Itoa(protocol.MaxAvatarURL) + " bytes",
		"`limit?` (1.." + strconv.Itoa(protocol.MaxThreadLimit) + "; 0 or absent means " + strconv.Itoa(protocol.DefaultThreadLimit) + ")",
		"in chunks of " + strconv.Itoa(actions.ThreadChunk) + " (one key each",
		"`duration_ms` (1.." + strconv.Itoa(protocol.MaxMuteMS) + ", 366 days)",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("%s does not say %q", docPath, want)
		}
	}
}

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/admin"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/presencekv"
	"github.com/natter-im/natter/jetstream/pushreg"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/push/pushtest"
)

// pushEnv is a dev node whose push role sends to local stand-ins of APNs,
// FCM and Web Push.
type pushEnv struct {
	*svcEnv
	n    *node.Node
	apns *pushtest.APNs
	fcm  *pushtest.FCM
	wp   *pushtest.WebPush
	regs *pushreg.Bucket
}

func newPushEnv(t testing.TB, mut ...func(*node.Config)) *pushEnv {
	t.Helper()
	e := &pushEnv{apns: pushtest.NewAPNs(t), fcm: pushtest.NewFCM(t), wp: pushtest.NewWebPush(t)}
	ac, fc, wc := e.apns.Config(), e.fcm.Config(), e.wp.Config()
	cfg := node.Config{Mode: node.ModeDev, Edge: edgeConfig(), Admin: admin.Config{Token: adminToken},
		Push: node.PushConfig{APNs: &ac, FCM: &fc, WebPush: &wc}}
	for _, f := range mut {
		f(&cfg)
	}
	e.n = startNode(t, cfg)
	e.svcEnv = newSvcEnv(t, e.n)
	var err error
	if e.regs, err = pushreg.Open(ctx10(t), e.nc, e.js); err != nil {
		t.Fatal(err)
	}
	return e
}

// device connects user's device and registers it with frame's provider
// fields (a JSON object's members, without braces).
func (e *pushEnv) device(t testing.TB, user, device, fields string) *rawConn {
	t.Helper()
	c := mustDialTok(t, e.n, token(t, user), device)
	c.request("r", `{"op":"push.register","id":"r",`+fields+`}`, nil)
	return c
}

func apnsFields(tok string) string { return `"provider":"apns","token":"` + tok + `"` }
func fcmFields(tok string) string  { return `"provider":"fcm","token":"` + tok + `"` }
func webFields(s protocol.PushSubscription) string {
	b, _ := json.Marshal(s)
	return `"provider":"webpush","subscription":` + string(b)
}

// online waits until the PRESENCE leases list exactly devices as user's
// connected devices.
func (e *pushEnv) online(t testing.TB, user string, devices ...string) {
	t.Helper()
	slices.Sort(devices)
	direct := "$JS.API.DIRECT.GET.KV_" + subjects.BucketPresence
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		on, err := presencekv.Read(ctx10(t), e.nc, direct, []string{user})
		if err != nil {
			return err
		}
		var got []string
		for d := range on[user].Devices {
			got = append(got, d)
		}
		slices.Sort(got)
		if !slices.Equal(got, devices) {
			return fmt.Errorf("%s online on %v, want %v", user, got, devices)
		}
		return nil
	})
}

// registered returns user's registered devices, sorted.
func (e *pushEnv) registered(t testing.TB, user string) []string {
	t.Helper()
	devs, err := e.regs.Users(ctx10(t), []string{user})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range devs[user] {
		out = append(out, d.Device)
	}
	slices.Sort(out)
	return out
}

func received(rs []pushtest.Received, device string) []pushtest.Received {
	var out []pushtest.Received
	for _, r := range rs {
		if r.Device == device {
			out = append(out, r)
		}
	}
	return out
}

// settledPush waits until the push role has settled every log entry.
func (e *pushEnv) settledPush(t testing.TB) { e.settled(t, subjects.StreamMsgs, subjects.ConsumerPush) }

func (e *pushEnv) noStandInErrors(t *testing.T) {
	t.Helper()
	for name, errs := range map[string][]string{"apns": e.apns.Errors(), "fcm": e.fcm.Errors(), "webpush": e.wp.Errors()} {
		if len(errs) > 0 {
			t.Errorf("%s stand-in refused requests: %v", name, errs)
		}
	}
}

func (c *rawConn) direct(with string) natter.Conversation {
	c.t.Helper()
	var conv natter.Conversation
	c.request("cd", `{"op":"conv.create","id":"cd","kind":"direct","with":"`+with+`"}`, &conv)
	return conv
}

// TestPushOfflineDevices: alice has three registered devices, one per
// provider. With the web device connected and the two phones not, each of
// bob's messages is pushed once to each phone and never to the web device,
// with the badge = alice's unread count and no body (previews off); the
// sender's own devices get nothing. With all three connected nothing is
// pushed.
func TestPushOfflineDevices(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	apnsTok, fcmTok, sub := pushtest.Token(), pushtest.FCMToken(), e.wp.Subscribe("alice-web")
	phone := e.device(t, "alice", "phone", apnsFields(apnsTok))
	android := e.device(t, "alice", "android", fcmFields(fcmTok))
	web := e.device(t, "alice", "web", webFields(sub))
	bobTok := pushtest.Token()
	bobPhone := e.device(t, "bob", "bob-phone", apnsFields(bobTok))
	if got := e.registered(t, "alice"); !slices.Equal(got, []string{"android", "phone", "web"}) {
		t.Fatalf("alice registered %v", got)
	}
	phone.conn.Close()
	android.conn.Close()
	bobPhone.conn.Close()
	e.online(t, "alice", "web")
	e.online(t, "bob")
	bob := mustDial(t, e.n, "bob")
	conv := bob.direct("alice")

	for i := 1; i <= 3; i++ {
		ack := bob.send(conv.ID, fmt.Sprintf("c%d", i), "secret text")
		testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
			if a, f := len(received(e.apns.Received(), apnsTok)), len(received(e.fcm.Received(), fcmTok)); a < i || f < i {
				return fmt.Errorf("after message %d: apns %d, fcm %d", i, a, f)
			}
			return nil
		})
		a := received(e.apns.Received(), apnsTok)
		var p struct {
			APS struct {
				Alert struct{ Body string } `json:"alert"`
				Badge uint64                `json:"badge"`
			} `json:"aps"`
			Natter struct {
				Seq uint64 `json:"seq"`
			} `json:"natter"`
		}
		if err := json.Unmarshal(a[i-1].Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Natter.Seq != ack.Seq || p.APS.Badge != uint64(i) || p.APS.Alert.Body != "New message" || a[i-1].Collapse != conv.ID {
			t.Fatalf("push %d: %s (collapse %q), want seq %d badge %d", i, a[i-1].Body, a[i-1].Collapse, ack.Seq, i)
		}
	}
	e.settledPush(t)
	for name, rs := range map[string][]pushtest.Received{"apns": e.apns.Received(), "fcm": e.fcm.Received()} {
		for _, r := range rs {
			if strings.Contains(string(r.Body), "secret text") {
				t.Fatalf("%s got the body with previews off: %s", name, r.Body)
			}
		}
	}
	if a, f, w, b := len(received(e.apns.Received(), apnsTok)), len(received(e.fcm.Received(), fcmTok)),
		len(received(e.wp.Received(), "alice-web")), len(received(e.apns.Received(), bobTok)); a != 3 || f != 3 || w != 0 || b != 0 {
		t.Fatalf("pushes: phone %d, android %d (want 3 each), web %d, bob's own phone %d (want 0)", a, f, w, b)
	}
	web.collect(conv.ID, 3) // the connected device got them live

	// Every device connected: no push.
	mustDialTok(t, e.n, token(t, "alice"), "phone")
	mustDialTok(t, e.n, token(t, "alice"), "android")
	e.online(t, "alice", "android", "phone", "web")
	bob.send(conv.ID, "c4", "while online")
	e.settledPush(t)
	if a, f, w := len(e.apns.Received()), len(e.fcm.Received()), len(e.wp.Received()); a != 3 || f != 3 || w != 0 {
		t.Fatalf("pushes after a message to alice online everywhere: apns %d, fcm %d, webpush %d; want 3, 3, 0", a, f, w)
	}
	e.noStandInErrors(t)
}

// TestPushWebPushAndUnregistered: a Web Push device gets the payload
// (decrypted by the stand-in with the subscription's keys); a provider's
// "unregistered" answer removes the registration, and nothing is sent to
// it again.
func TestPushWebPushAndUnregistered(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	sub := e.wp.Subscribe("carol-web")
	gone := pushtest.Token()
	e.device(t, "carol", "web", webFields(sub)).conn.Close()
	e.device(t, "carol", "old-phone", apnsFields(gone)).conn.Close()
	e.apns.Answer(gone, pushtest.Answer{Status: http.StatusGone, Body: `{"reason":"Unregistered"}`})
	e.online(t, "carol")
	dave := mustDial(t, e.n, "dave")
	conv := dave.direct("carol")
	dave.send(conv.ID, "w1", "hi carol")
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if got := e.registered(t, "carol"); !slices.Equal(got, []string{"web"}) {
			return fmt.Errorf("carol registered %v, want [web]", got)
		}
		if n := len(e.wp.Received()); n != 1 {
			return fmt.Errorf("%d web pushes", n)
		}
		return nil
	})
	var p struct {
		Conv, From, Text string
		Seq, Badge       uint64
	}
	if err := json.Unmarshal(e.wp.Received()[0].Body, &p); err != nil || p.Conv != conv.ID || p.From != "dave" || p.Seq != 1 || p.Badge != 1 || p.Text != "New message" {
		t.Fatalf("web push payload %s (%v)", e.wp.Received()[0].Body, err)
	}
	dave.send(conv.ID, "w2", "again")
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if n := len(e.wp.Received()); n != 2 {
			return fmt.Errorf("%d web pushes", n)
		}
		return nil
	})
	e.settledPush(t)
	if errs := e.apns.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(e.apns.Received()) != 0 {
		t.Fatalf("the unregistered token was accepted: %v", e.apns.Received())
	}
}

// TestPushRetries: a 503 answer is retried with back-off in the role and
// the device gets the notification once; a provider that keeps failing has
// the entry dead-lettered after the consumer's deliveries.
func TestPushRetries(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, func(c *node.Config) { c.Streams.MaxDeliver = 2 })
	flaky, dead := pushtest.Token(), pushtest.Token()
	e.apns.Answer(flaky, pushtest.Answer{Status: 503, Body: `{"reason":"ServiceUnavailable"}`, Times: 2})
	e.device(t, "erin", "phone", apnsFields(flaky)).conn.Close()
	e.online(t, "erin")
	frank := mustDial(t, e.n, "frank")
	frank.send(frank.direct("erin").ID, "r1", "hello")
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if n := len(received(e.apns.Received(), flaky)); n != 1 {
			return fmt.Errorf("%d pushes", n)
		}
		return nil
	})

	e.apns.Answer(dead, pushtest.Answer{Status: 500, Body: `{"reason":"InternalServerError"}`})
	e.device(t, "gina", "phone", apnsFields(dead)).conn.Close()
	e.online(t, "gina")
	frank.send(frank.direct("gina").ID, "r2", "hello")
	testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		m, err := e.js.Stream(ctx10(t), subjects.StreamDLQ)
		if err != nil {
			return err
		}
		msg, err := m.GetLastMsgForSubject(ctx10(t), subjects.DLQ(node.RolePush))
		if err != nil {
			return fmt.Errorf("no dead letter of the push role yet: %w", err)
		}
		if !strings.Contains(string(msg.Data), `"r2"`) && !strings.Contains(string(msg.Data), "hello") {
			return fmt.Errorf("dead letter %s", msg.Data)
		}
		return nil
	})
	e.settledPush(t)
	if n := len(received(e.apns.Received(), flaky)); n != 1 {
		t.Fatalf("%d pushes to the flaky device, want 1", n)
	}
}

// TestPushRegisterBadInput: an unknown provider, a malformed token or
// subscription is bad_frame naming the field, over the WebSocket and REST,
// and nothing is stored.
func TestPushRegisterBadInput(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	c := mustDialTok(t, e.n, token(t, "hank"), "phone")
	goodSub := e.wp.Subscribe("x")
	badKey := goodSub
	badKey.Keys.P256dh = "AAAA"
	plainHTTP := goodSub
	plainHTTP.Endpoint = "http://push.example/x"
	for _, tt := range []struct{ fields, field string }{
		{`"provider":"mpns","token":"` + pushtest.Token() + `"`, "provider"},
		{`"token":"` + pushtest.Token() + `"`, "provider"},
		{`"provider":"apns","token":"not-hex"`, "token"},
		{`"provider":"apns"`, "token"},
		{`"provider":"fcm","token":"short"`, "token"},
		{`"provider":"webpush"`, "subscription"},
		{webFields(badKey), "subscription.keys.p256dh"},
		{webFields(plainHTTP), "subscription.endpoint"},
		{`"provider":"webpush","subscription":"x"`, "subscription"},
		{`"provider":"apns","token":"` + pushtest.Token() + `","subscription":` + strings.TrimPrefix(webFields(goodSub), `"provider":"webpush","subscription":`), "subscription"},
	} {
		c.write(`{"op":"push.register","id":"b",` + tt.fields + `}`)
		f := c.reply("b")
		if f.T != protocol.FrameErr || f.Err.Code != protocol.CodeBadFrame || !strings.HasPrefix(f.Err.Msg, tt.field+":") {
			t.Errorf("%s: got %+v, want bad_frame naming %s", tt.fields, f.Err, tt.field)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+e.n.Addr()+"/v1/push", strings.NewReader(`{"provider":"mpns","token":"abc"}`))
	req.Header.Set("Authorization", "Bearer "+token(t, "hank"))
	req.Header.Set("Origin", "https://app.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"code":"bad_frame"`) || !strings.Contains(string(body), "provider:") {
		t.Fatalf("REST unknown provider: %d %s", resp.StatusCode, body)
	}
	if got := e.registered(t, "hank"); len(got) != 0 {
		t.Fatalf("bad registrations stored: %v", got)
	}
}

// TestPushRegisterReplaceAndRemove: re-registering replaces the device's
// registration; push.unregister (logout), DELETE /v1/push and an admin
// revocation of the device remove it.
func TestPushRegisterReplaceAndRemove(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	c := e.device(t, "ivy", "phone", apnsFields(pushtest.Token()))
	fcmTok := pushtest.FCMToken()
	c.request("r2", `{"op":"push.register","id":"r2",`+fcmFields(fcmTok)+`}`, nil)
	devs, err := e.regs.Users(ctx10(t), []string{"ivy"})
	if err != nil || len(devs["ivy"]) != 1 || devs["ivy"][0].Provider != pushreg.FCM || devs["ivy"][0].Token != fcmTok {
		t.Fatalf("after re-register: %+v, %v", devs, err)
	}
	c.request("u", `{"op":"push.unregister","id":"u"}`, nil)
	if got := e.registered(t, "ivy"); len(got) != 0 {
		t.Fatalf("after unregister: %v", got)
	}

	// REST: the X-Natter-Device header names the device.
	rest := func(method, body string) int {
		req, _ := http.NewRequest(method, "http://"+e.n.Addr()+"/v1/push", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token(t, "ivy"))
		req.Header.Set(protocol.HeaderDevice, "tablet")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := rest(http.MethodPut, `{`+apnsFields(pushtest.Token())+`}`); st != http.StatusOK {
		t.Fatalf("PUT /v1/push: %d", st)
	}
	if got := e.registered(t, "ivy"); !slices.Equal(got, []string{"tablet"}) {
		t.Fatalf("after PUT: %v", got)
	}
	if st := rest(http.MethodDelete, ""); st != http.StatusOK {
		t.Fatalf("DELETE /v1/push: %d", st)
	}
	if got := e.registered(t, "ivy"); len(got) != 0 {
		t.Fatalf("after DELETE: %v", got)
	}

	// A revoked device's registration goes; the user's other one stays.
	e.device(t, "ivy", "phone", apnsFields(pushtest.Token()))
	e.device(t, "ivy", "laptop", webFields(e.wp.Subscribe("ivy-laptop")))
	if st, m := call(t, e.n, admin.PathRevoke, adminToken, `{"user":"ivy","device":"phone"}`); st != http.StatusOK {
		t.Fatalf("revoke: %d %v", st, m)
	}
	if got := e.registered(t, "ivy"); !slices.Equal(got, []string{"laptop"}) {
		t.Fatalf("after revoking phone: %v", got)
	}
	if st, m := call(t, e.n, admin.PathRevoke, adminToken, `{"user":"ivy"}`); st != http.StatusOK {
		t.Fatalf("revoke user: %d %v", st, m)
	}
	if got := e.registered(t, "ivy"); len(got) != 0 {
		t.Fatalf("after revoking the user: %v", got)
	}
}

// TestPushSkipOnlineUsers: with the per-user rule, a user connected on one
// device gets no push on the others; once the user is offline, one per
// device again.
func TestPushSkipOnlineUsers(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, func(c *node.Config) { c.Push.SkipOnlineUsers = true })
	tok := pushtest.Token()
	e.device(t, "jack", "phone", apnsFields(tok)).conn.Close()
	laptop := mustDialTok(t, e.n, token(t, "jack"), "laptop")
	e.online(t, "jack", "laptop")
	kim := mustDial(t, e.n, "kim")
	conv := kim.direct("jack")
	kim.send(conv.ID, "k1", "while the laptop is on")
	e.settledPush(t)
	if n := len(e.apns.Received()); n != 0 {
		t.Fatalf("%d pushes to a user online on another device", n)
	}
	laptop.collect(conv.ID, 1)
	laptop.conn.Close()
	e.online(t, "jack")
	kim.send(conv.ID, "k2", "now offline")
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if n := len(received(e.apns.Received(), tok)); n != 1 {
			return fmt.Errorf("%d pushes", n)
		}
		return nil
	})
}

// TestPushPreview: with previews on, the notification carries the body,
// cut to 1,000 bytes.
func TestPushPreview(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, func(c *node.Config) { c.Push.Preview = true })
	tok := pushtest.Token()
	e.device(t, "lee", "phone", apnsFields(tok)).conn.Close()
	e.online(t, "lee")
	mia := mustDial(t, e.n, "mia")
	conv := mia.direct("lee")
	long := strings.Repeat("é", 600) // 1,200 bytes
	mia.send(conv.ID, "p1", "short one")
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if n := len(e.apns.Received()); n != 1 {
			return fmt.Errorf("%d pushes", n)
		}
		return nil
	})
	mia.send(conv.ID, "p2", long)
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if n := len(e.apns.Received()); n != 2 {
			return fmt.Errorf("%d pushes", n)
		}
		return nil
	})
	text := func(r pushtest.Received) string {
		var p struct {
			APS struct {
				Alert struct{ Body string } `json:"alert"`
			} `json:"aps"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		return p.APS.Alert.Body
	}
	got := e.apns.Received()
	if text(got[0]) != "short one" {
		t.Fatalf("preview %q", text(got[0]))
	}
	if s := text(got[1]); len(s) > 1000 || !strings.HasSuffix(s, "…") || !strings.HasPrefix(long, strings.TrimSuffix(s, "…")) {
		t.Fatalf("long preview of %d bytes: %q", len(s), s)
	}
}

// TestPushBadge: the badge is the user's unread count over every
// conversation, a conversation joined a moment ago included, and drops
// when the user reads.
func TestPushBadge(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	tok := pushtest.Token()
	nora := e.device(t, "nora", "phone", apnsFields(tok))
	nora.conn.Close()
	e.online(t, "nora")
	badgeOf := func(i int) uint64 {
		t.Helper()
		testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
			if n := len(e.apns.Received()); n < i {
				return fmt.Errorf("%d pushes, want %d", n, i)
			}
			return nil
		})
		var p struct {
			APS struct {
				Badge uint64 `json:"badge"`
			} `json:"aps"`
		}
		if err := json.Unmarshal(e.apns.Received()[i-1].Body, &p); err != nil {
			t.Fatal(err)
		}
		return p.APS.Badge
	}
	omar := mustDial(t, e.n, "omar")
	withOmar := omar.direct("nora")
	omar.send(withOmar.ID, "o1", "one")
	if b := badgeOf(1); b != 1 {
		t.Fatalf("badge %d, want 1", b)
	}
	omar.send(withOmar.ID, "o2", "two")
	if b := badgeOf(2); b != 2 {
		t.Fatalf("badge %d, want 2", b)
	}
	pam := mustDial(t, e.n, "pam")
	withPam := pam.direct("nora")
	pam.send(withPam.ID, "p1", "three")
	if b := badgeOf(3); b != 3 {
		t.Fatalf("badge %d, want 3 (2 unread with omar, 1 with pam)", b)
	}
	omar.send(withOmar.ID, "o3", "four")
	if b := badgeOf(4); b != 4 {
		t.Fatalf("badge %d, want 4", b)
	}
	reader := mustDialTok(t, e.n, token(t, "nora"), "tablet") // not registered
	reader.request("rd", `{"op":"read","id":"rd","conv":"`+withOmar.ID+`","seq":3}`, nil)
	reader.conn.Close()
	e.online(t, "nora")
	pam.send(withPam.ID, "p2", "five")
	if b := badgeOf(5); b != 2 {
		t.Fatalf("badge %d after reading omar's, want 2 (pam's)", b)
	}
}

// TestPushRetryAfter: a 429's Retry-After is honoured: a short one by the
// role's own wait, one longer than its 5 s bound by redelivering the entry
// after it; each device gets the notification once.
func TestPushRetryAfter(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	short, long := pushtest.Token(), pushtest.Token()
	e.apns.Answer(short, pushtest.Answer{Status: 429, Body: `{"reason":"TooManyRequests"}`, RetryAfter: "1", Times: 1})
	e.apns.Answer(long, pushtest.Answer{Status: 429, Body: `{"reason":"TooManyRequests"}`, RetryAfter: "7", Times: 1})
	e.device(t, "quinn", "phone", apnsFields(short)).conn.Close()
	e.device(t, "rosa", "phone", apnsFields(long)).conn.Close()
	e.online(t, "quinn")
	e.online(t, "rosa")
	sam := mustDial(t, e.n, "sam")
	toQuinn, toRosa := sam.direct("quinn"), sam.direct("rosa")
	sent := time.Now()
	sam.send(toQuinn.ID, "q1", "hi")
	sam.send(toRosa.ID, "r1", "hi")
	testenv.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if a, b := len(received(e.apns.Received(), short)), len(received(e.apns.Received(), long)); a != 1 || b != 1 {
			return fmt.Errorf("pushes: %d and %d", a, b)
		}
		return nil
	})
	if d := received(e.apns.Received(), short)[0].At.Sub(sent); d < time.Second {
		t.Fatalf("Retry-After 1 s: accepted after %v", d)
	}
	if d := received(e.apns.Received(), long)[0].At.Sub(sent); d < 7*time.Second {
		t.Fatalf("Retry-After 7 s: accepted after %v", d)
	}
	e.settledPush(t)
	if a, b := len(received(e.apns.Received(), short)), len(received(e.apns.Received(), long)); a != 1 || b != 1 {
		t.Fatalf("pushes after settling: %d and %d, want 1 each", a, b)
	}
}

// TestPushMuted: a member who muted the conversation (push.Config.Muted,
// a hook in place of the conversation settings here) gets no push; the
// others do.
func TestPushMuted(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, func(c *node.Config) {
		c.Push.Muted = func(_ context.Context, _, user string) (bool, error) { return user == "tara", nil }
	})
	muted, heard := pushtest.Token(), pushtest.Token()
	e.device(t, "tara", "phone", apnsFields(muted)).conn.Close()
	e.device(t, "uma", "phone", apnsFields(heard)).conn.Close()
	e.online(t, "tara")
	e.online(t, "uma")
	vic := mustDial(t, e.n, "vic")
	g := vic.createGroup("g", "tara", "uma")
	vic.send(g.ID, "m1", "hello both")
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if n := len(received(e.apns.Received(), heard)); n != 1 {
			return fmt.Errorf("%d pushes to uma", n)
		}
		return nil
	})
	e.settledPush(t)
	if n := len(received(e.apns.Received(), muted)); n != 0 {
		t.Fatalf("%d pushes to tara, who muted the group", n)
	}
}

// TestPushBurstCollapses: a burst into one conversation is pushed as at
// most one notification per message (entries of one batch collapse to
// the newest), all with the conversation as collapse id, the newest last.
func TestPushBurstCollapses(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	tok := pushtest.Token()
	e.device(t, "wes", "phone", apnsFields(tok)).conn.Close()
	e.online(t, "wes")
	xia := mustDial(t, e.n, "xia")
	conv := xia.direct("wes")
	const n = 10
	for i := 1; i <= n; i++ {
		xia.write(fmt.Sprintf(`{"op":"send","id":"s%d","conv":%q,"cmid":"burst%d","body":"b%d"}`, i, conv.ID, i, i))
	}
	for i := 1; i <= n; i++ {
		if f := xia.reply(fmt.Sprintf("s%d", i)); f.T != protocol.FrameRes {
			t.Fatalf("send %d: %+v", i, f.Err)
		}
	}
	e.settledPush(t)
	got := received(e.apns.Received(), tok)
	if len(got) == 0 || len(got) > n {
		t.Fatalf("%d pushes for a burst of %d", len(got), n)
	}
	var last struct {
		Natter struct {
			Seq uint64 `json:"seq"`
		} `json:"natter"`
	}
	if err := json.Unmarshal(got[len(got)-1].Body, &last); err != nil || last.Natter.Seq != n {
		t.Fatalf("last push %s, want seq %d", got[len(got)-1].Body, n)
	}
	for _, r := range got {
		if r.Collapse != conv.ID {
			t.Fatalf("collapse id %q, want %q", r.Collapse, conv.ID)
		}
	}
	t.Logf("a burst of %d messages: %d pushes", n, len(got))
}

// TestPushMutedBySettings: a member whose conv.settings mute the
// conversation (muted_until in the future) gets no push; after unmuting
// (muted_until 0), one again.
func TestPushMutedBySettings(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	tok := pushtest.Token()
	yan := e.device(t, "yan", "phone", apnsFields(tok))
	zed := mustDial(t, e.n, "zed")
	conv := zed.direct("yan")
	yan.request("mu", fmt.Sprintf(`{"op":"conv.settings","id":"mu","conv":%q,"muted_until":%d}`, conv.ID, time.Now().Add(time.Hour).UnixMilli()), nil)
	yan.conn.Close()
	e.online(t, "yan")
	zed.send(conv.ID, "z1", "muted")
	e.settledPush(t)
	if n := len(e.apns.Received()); n != 0 {
		t.Fatalf("%d pushes in a muted conversation", n)
	}
	again := mustDialTok(t, e.n, token(t, "yan"), "phone")
	again.request("um", fmt.Sprintf(`{"op":"conv.settings","id":"um","conv":%q,"muted_until":0}`, conv.ID), nil)
	again.conn.Close()
	e.online(t, "yan")
	zed.send(conv.ID, "z2", "unmuted")
	testenv.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		if n := len(received(e.apns.Received(), tok)); n != 1 {
			return fmt.Errorf("%d pushes after unmuting", n)
		}
		return nil
	})
}

// TestPushReplicaWithoutProviders: a second process runs the push role
// with no provider configured, beside one that has them. Replicas share
// the PUSH consumer, so the one without providers must take no entries:
// every message is pushed by the other (the old role acknowledged the
// entries it took, dropping their notifications).
func TestPushReplicaWithoutProviders(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t)
	startNode(t, node.Config{Mode: node.ModeWorker, NATSURL: e.n.NATSURL(), MongoURI: e.n.MongoURI(), Roles: []string{node.RolePush}})
	tok := pushtest.Token()
	e.device(t, "ada", "phone", apnsFields(tok)).conn.Close()
	e.online(t, "ada")
	ben := mustDial(t, e.n, "ben")
	conv := ben.direct("ada")
	const n = 12
	for i := 1; i <= n; i++ {
		ben.send(conv.ID, fmt.Sprintf("r%d", i), "hello")
		testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if got := len(received(e.apns.Received(), tok)); got != i {
				return fmt.Errorf("after message %d of %d: %d pushes", i, n, got)
			}
			return nil
		})
	}
	e.settledPush(t)
}

// TestPushNoProvidersNoConsumer: a push role without providers (natter dev
// with no push settings) pulls nothing from PUSH: the entries wait there
// for a replica with providers.
func TestPushNoProvidersNoConsumer(t *testing.T) {
	t.Parallel()
	n := startNode(t, node.Config{Mode: node.ModeDev})
	s := newSvcEnv(t, n)
	cal := mustDial(t, n, "cal")
	conv := cal.direct("dot")
	cal.send(conv.ID, "p1", "hello")
	s.settled(t, subjects.StreamMsgs, subjects.ConsumerFanout)
	c, err := s.js.Consumer(ctx10(t), subjects.StreamMsgs, subjects.ConsumerPush)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx10(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != 0 || info.NumWaiting != 0 || info.NumPending == 0 {
		t.Fatalf("PUSH without providers: %d delivered, %d pulls waiting, %d pending; want 0, 0, > 0",
			info.Delivered.Consumer, info.NumWaiting, info.NumPending)
	}
}

package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natter-im/natter/jetstream/convapi"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// newConvBroadcastRig is newBroadcastRig with a member cache behind the hub,
// loading from a stand-in of the conversations service's members op (on
// the same real NATS server) that answers from members (each list sorted),
// in pages of 10,000.
func newConvBroadcastRig(t testing.TB, users int, members map[string][]string) *broadcastRig {
	t.Helper()
	srv, nc := testNATS(t)
	svc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	_, err = svc.Subscribe(subjects.ConvEndpoint(convapi.OpMembers), func(m *nats.Msg) {
		var req convapi.MembersRequest
		_ = json.Unmarshal(m.Data, &req)
		list, ok := members[req.Conv]
		if !ok {
			reply := nats.NewMsg(m.Reply)
			reply.Header.Set(micro.ErrorCodeHeader, convapi.CodeNotFound)
			reply.Header.Set(micro.ErrorHeader, "no conversation "+req.Conv)
			_ = m.RespondMsg(reply)
			return
		}
		start, _ := slices.BinarySearch(list, req.After)
		if req.After != "" && start < len(list) && list[start] == req.After {
			start++
		}
		page := convapi.MembersReply{Members: list[start:min(start+10_000, len(list))]}
		if end := start + len(page.Members); end < len(list) {
			page.Next = list[end-1]
		}
		b, _ := json.Marshal(page)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	cache, err := convapi.NewMemberCache(context.Background(), nc, convapi.NewClient(nc, 0), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	e := testEdge(t, Config{PingInterval: time.Hour})
	if e.hub, err = newHub(nc, e.m, time.Hour, e.since, cache); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.hub.stop)
	r := &broadcastRig{t: t, e: e, clients: map[string][]*websocket.Conn{}}
	for i := range users {
		u := "u" + strconv.Itoa(i)
		s, c := dialSession(t, e, u)
		s.expires = e.since() + int64(time.Hour)
		if err := e.hub.add(s); err != nil {
			t.Fatal(err)
		}
		s.inHub = true
		r.clients[u] = append(r.clients[u], c)
	}
	r.pub, err = nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.pub.Close)
	return r
}

// TestBroadcastConv: a broadcast addressed by conversation (no member list)
// reaches the sessions here of the conversation's members, as the member
// cache knows them, whether the group is larger than the users here (the
// edge walks its users) or smaller (it walks the members); an unknown
// conversation reaches nobody, an invalid id counts as a bad delivery.
func TestBroadcastConv(t *testing.T) {
	t.Parallel()
	big := []string{"u0", "u2"}
	for i := range 15_000 {
		big = append(big, fmt.Sprintf("away%05d", i))
	}
	slices.Sort(big)
	r := newConvBroadcastRig(t, 6, map[string][]string{"g_big": big, "g_small": {"u1", "u5"}})
	a, b := entry("m1"), entry("m2")
	r.publish(delivery.PackConv("g_big", [][]byte{a, b}, 1<<20)...)
	r.expect("u0", a, b)
	r.expect("u2", a, b)
	for _, u := range []string{"u1", "u3", "u4", "u5"} {
		r.marker(u)
	}
	c := entry("m3")
	r.publish(delivery.PackConv("g_small", [][]byte{c}, 1<<20)...)
	r.expect("u1", c)
	r.expect("u5", c)
	bad := r.e.m.badDeliveries
	before := counterValue(bad)
	r.publish(delivery.PackConv("g_none", [][]byte{entry("m4")}, 1<<20)...)
	r.publish(delivery.PackConv("g.bad", [][]byte{entry("m5")}, 1<<20)...)
	for _, u := range []string{"u0", "u1", "u2", "u3", "u4", "u5"} {
		r.marker(u)
	}
	if got := counterValue(bad) - before; got != 1 {
		t.Fatalf("bad deliveries +%v, want +1", got)
	}
}

// TestBroadcastSignal: a conv signal broadcast (delivery.PackSignal) queues
// its frame as it is on the sessions here of the conversation's members but
// the users it leaves out, walking the members or the users here; another
// kind of signal, or one without a frame, is a bad delivery.
func TestBroadcastSignal(t *testing.T) {
	t.Parallel()
	big := []string{"u0", "u2", "u4"}
	for i := range 15_000 {
		big = append(big, fmt.Sprintf("away%05d", i))
	}
	slices.Sort(big)
	r := newConvBroadcastRig(t, 6, map[string][]string{"g_big": big, "g_small": {"u1", "u3", "u5"}})
	expectRaw := func(user, want string) {
		t.Helper()
		for d, c := range r.clients[user] {
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != want {
				t.Fatalf("%s device %d: %s (%v), want %s", user, d, got, err, want)
			}
		}
	}
	frame := `{"t":"conv","conv":"g_big","event":"members_added","rev":2,"by":"u0","users":["u4"],"n":1,"member_count":15003}`
	r.publish(delivery.PackSignal("g_big", delivery.SignalConv, []byte(frame), []string{"u4"}))
	expectRaw("u0", frame)
	expectRaw("u2", frame)
	small := `{"t":"conv","conv":"g_small","event":"renamed","rev":1,"by":"u1","name":"x"}`
	r.publish(delivery.PackSignal("g_small", delivery.SignalConv, []byte(small), nil))
	for _, u := range []string{"u1", "u3", "u5"} {
		expectRaw(u, small)
	}
	bad := r.e.m.badDeliveries
	before := counterValue(bad)
	r.publish(delivery.PackSignal("g_small", delivery.SignalTyping, []byte(small), nil))
	r.publish(delivery.PackSignal("g_small", delivery.SignalConv, nil, []string{"u1"}))
	for _, u := range []string{"u0", "u1", "u2", "u3", "u4", "u5"} {
		r.marker(u)
	}
	if got := counterValue(bad) - before; got != 2 {
		t.Fatalf("bad deliveries +%v, want +2", got)
	}
	if got := counterValue(r.e.m.convPushes); got != 5 {
		t.Fatalf("conv pushes %v, want 5", got)
	}
}

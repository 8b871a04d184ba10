package edge

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/delivery"
	"github.com/natter-im/natter/jetstream/subjects"
)

// broadcastRig is a test hub edge on a real NATS server with sockets of
// users u0..u<n-1> (u0 with two) and a worker-side connection to publish.
type broadcastRig struct {
	t       testing.TB
	e       *Edge
	pub     *nats.Conn
	clients map[string][]*websocket.Conn
}

func newBroadcastRig(t *testing.T, users int) *broadcastRig {
	t.Helper()
	e, srv := testHubEdge(t, time.Hour)
	r := &broadcastRig{t: t, e: e, clients: map[string][]*websocket.Conn{}}
	for i := range users {
		u := "u" + strconv.Itoa(i)
		devices := 1
		if i == 0 {
			devices = 2
		}
		for range devices {
			s, c := dialSession(t, e, u)
			s.expires = e.since() + int64(time.Hour)
			if err := e.hub.add(s); err != nil {
				t.Fatal(err)
			}
			s.inHub = true
			r.clients[u] = append(r.clients[u], c)
		}
	}
	pub := testenv.Connect(t, srv.ClientURL())
	r.pub = pub
	return r
}

func (r *broadcastRig) publish(ps ...delivery.Payload) {
	r.t.Helper()
	for _, p := range ps {
		if err := r.pub.PublishMsg(p.Msg(subjects.DeliverGroups)); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.pub.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// expect reads the next frames of every socket of user: the pushes of
// entries, in order.
func (r *broadcastRig) expect(user string, entries ...[]byte) {
	r.t.Helper()
	for d, c := range r.clients[user] {
		for k, e := range entries {
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			_, got, err := c.ReadMessage()
			if err != nil {
				r.t.Fatalf("%s device %d, frame %d: %v", user, d, k, err)
			}
			if want := `{"t":"msg","msg":` + string(e) + `}`; string(got) != want {
				r.t.Fatalf("%s device %d, frame %d: %s, want %s", user, d, k, got, want)
			}
		}
	}
}

// marker sends user a push of its own (per-user subject) and expects it as
// the next frame of each socket: nothing else was queued before it.
func (r *broadcastRig) marker(user string) {
	r.t.Helper()
	m := []byte(`{"id":"marker-` + user + `"}`)
	if err := r.pub.Publish(subjects.Deliver(user), m); err != nil {
		r.t.Fatal(err)
	}
	if err := r.pub.Flush(); err != nil {
		r.t.Fatal(err)
	}
	r.expect(user, m)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func entry(id string) []byte { return []byte(`{"id":"` + id + `"}`) }

// TestBroadcastDelivers: a broadcast reaches every socket of the listed
// members this edge holds, once and in order, whichever shard they are in;
// listed users with no socket here cost nothing and break nothing; users
// not listed get nothing. A malformed broadcast counts as a bad delivery
// and the dispatcher goes on with the next one.
func TestBroadcastDelivers(t *testing.T) {
	t.Parallel()
	r := newBroadcastRig(t, 8)
	listed := []string{"elsewhere1", "u0", "u1", "elsewhere2", "u2", "u3"}
	a, b := entry("m1"), entry("m2")
	r.publish(delivery.PackMembers(listed, [][]byte{a, b}, 1<<20)...)
	for _, u := range []string{"u0", "u1", "u2", "u3"} {
		r.expect(u, a, b)
	}
	for _, u := range []string{"u4", "u5", "u6", "u7"} {
		r.marker(u) // the broadcast queued nothing before it
	}

	bad := r.e.m.badDeliveries
	before := counterValue(bad)
	r.publish(
		delivery.Payload{Data: []byte("u0xyz"), Header: nats.Header{delivery.MembersHeader: {"9"}}},
		delivery.Payload{Data: []byte("u0\n\nu1xyz"), Header: nats.Header{delivery.MembersHeader: {"6"}}},
		delivery.Payload{Data: []byte("u0"), Header: nil},
	)
	c := entry("m3")
	r.publish(delivery.PackMembers([]string{"u0", "u5"}, [][]byte{c}, 1<<20)...)
	r.expect("u0", c)
	r.expect("u5", c)
	if got := counterValue(bad) - before; got != 3 {
		t.Fatalf("bad deliveries +%v, want +3", got)
	}
	for _, u := range []string{"u0", "u1", "u5"} {
		r.marker(u)
	}
}

// TestBroadcastSplit: a broadcast split into many messages (a long member
// list, a small limit) still gives every member on this edge every entry
// exactly once, in order.
func TestBroadcastSplit(t *testing.T) {
	t.Parallel()
	const here = 8
	r := newBroadcastRig(t, here)
	var listed []string
	for i := range 500 {
		if i%60 == 0 && i/60 < here {
			listed = append(listed, "u"+strconv.Itoa(i/60))
		}
		listed = append(listed, fmt.Sprintf("away%03d", i))
	}
	var entries [][]byte
	for i := range 5 {
		entries = append(entries, entry(fmt.Sprintf("m%d-%0200d", i, 0)))
	}
	payloads := delivery.PackMembers(listed, entries, 1000)
	if len(payloads) < 10 {
		t.Fatalf("%d payloads: not split much", len(payloads))
	}
	r.publish(payloads...)
	for i := range here {
		u := "u" + strconv.Itoa(i)
		r.expect(u, entries...)
		r.marker(u)
	}
}

package convsvc_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/natter-im/natter/jetstream/convapi"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/bson"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/convsvc"
	"github.com/natter-im/natter/workers/store"
)

// TestService runs every op against one service: success and each error
// code. Subtests use their own users, so they run in parallel.
func TestService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{svc: convsvc.Config{MaxGroupSize: 5, MaxUsersPerRequest: 10}})
	t.Run("create", func(t *testing.T) { t.Parallel(); testCreate(t, e) })
	t.Run("get", func(t *testing.T) { t.Parallel(); testGet(t, e) })
	t.Run("list", func(t *testing.T) { t.Parallel(); testList(t, e) })
	t.Run("members.add", func(t *testing.T) { t.Parallel(); testMembersAdd(t, e) })
	t.Run("members.remove", func(t *testing.T) { t.Parallel(); testMembersRemove(t, e) })
	t.Run("members.list", func(t *testing.T) { t.Parallel(); testMembersList(t, e) })
	t.Run("read", func(t *testing.T) { t.Parallel(); testRead(t, e) })
	t.Run("history", func(t *testing.T) { t.Parallel(); testHistory(t, e) })
	t.Run("wire", func(t *testing.T) { t.Parallel(); testWire(t, e) })
	t.Run("internal", func(t *testing.T) { t.Parallel(); testInternal(t, e) })
	t.Run("notice", func(t *testing.T) { t.Parallel(); testNotice(t, e) })
}

// group creates a group of creator and members and returns its id.
func group(t *testing.T, e *env, creator string, members ...string) string {
	t.Helper()
	c, err := e.cl.Create(ctxT(t), convapi.CreateRequest{User: creator, Kind: natter.KindGroup, Name: "g", Members: members})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func direct(t *testing.T, e *env, a, b string) string {
	t.Helper()
	c, err := e.cl.Create(ctxT(t), convapi.CreateRequest{User: a, Kind: natter.KindDirect, With: b})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func testCreate(t *testing.T, e *env) {
	u := names("alice", "bob", "carol", "dave", "erin", "frank", "gina")
	a, b, c := u[0], u[1], u[2]
	long := strings.Repeat("n", convapi.MaxNameLen+1)
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("m%d_%s", i, a)
	}
	dm := []string{a, b}
	slices.Sort(dm)
	cases := []struct {
		name  string
		req   convapi.CreateRequest
		code  string
		check func(t *testing.T, got natter.Conversation)
	}{
		{"direct", convapi.CreateRequest{User: a, Kind: "direct", With: b}, "", func(t *testing.T, got natter.Conversation) {
			if got.ID != natter.DirectID(a, b) || got.Kind != natter.KindDirect || got.CreatedBy != a || len(got.Members) != 2 {
				t.Fatalf("got %+v", got)
			}
		}},
		{"direct again, same side", convapi.CreateRequest{User: a, Kind: "direct", With: b}, "", func(t *testing.T, got natter.Conversation) {
			if got.ID != natter.DirectID(a, b) || got.CreatedBy != a {
				t.Fatalf("got %+v", got)
			}
		}},
		{"direct again, other side", convapi.CreateRequest{User: b, Kind: "direct", With: a}, "", func(t *testing.T, got natter.Conversation) {
			ms := slices.Sorted(slices.Values(got.Members))
			if got.ID != natter.DirectID(a, b) || got.CreatedBy != a || !slices.Equal(ms, dm) {
				t.Fatalf("got %+v, want the one alice created", got)
			}
		}},
		{"group", convapi.CreateRequest{User: a, Kind: "group", Name: "team", Members: []string{b, c, b, a}}, "", func(t *testing.T, got natter.Conversation) {
			if !strings.HasPrefix(got.ID, "g_") || len(got.ID) != 22 || got.Name != "team" || got.Kind != natter.KindGroup {
				t.Fatalf("got %+v", got)
			}
			if !slices.Equal(got.Members, []string{a, b, c}) {
				t.Fatalf("members %v, want creator first, deduplicated", got.Members)
			}
		}},
		{"group of the creator alone", convapi.CreateRequest{User: a, Kind: "group"}, "", nil},
		{"missing user", convapi.CreateRequest{Kind: "direct", With: b}, convapi.CodeBadFrame, nil},
		{"invalid user", convapi.CreateRequest{User: "al.ice", Kind: "direct", With: b}, convapi.CodeBadFrame, nil},
		{"missing kind", convapi.CreateRequest{User: a, With: b}, convapi.CodeBadFrame, nil},
		{"unknown kind", convapi.CreateRequest{User: a, Kind: "channel"}, convapi.CodeBadFrame, nil},
		{"direct with self", convapi.CreateRequest{User: a, Kind: "direct", With: a}, convapi.CodeBadFrame, nil},
		{"direct without with", convapi.CreateRequest{User: a, Kind: "direct"}, convapi.CodeBadFrame, nil},
		{"direct with name", convapi.CreateRequest{User: a, Kind: "direct", With: c, Name: "x"}, convapi.CodeBadFrame, nil},
		{"direct with members", convapi.CreateRequest{User: a, Kind: "direct", With: c, Members: []string{c}}, convapi.CodeBadFrame, nil},
		{"group with with", convapi.CreateRequest{User: a, Kind: "group", With: b}, convapi.CodeBadFrame, nil},
		{"group member invalid", convapi.CreateRequest{User: a, Kind: "group", Members: []string{b, "c d"}}, convapi.CodeBadFrame, nil},
		{"group name too long", convapi.CreateRequest{User: a, Kind: "group", Name: long}, convapi.CodeBadFrame, nil},
		{"group too big", convapi.CreateRequest{User: a, Kind: "group", Members: u[1:]}, convapi.CodeTooBig, nil},
		{"too many users in one request", convapi.CreateRequest{User: a, Kind: "group", Members: many}, convapi.CodeTooBig, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.cl.Create(ctxT(t), tc.req)
			wantCode(t, err, tc.code)
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
	// Nothing half-stored: the bad requests left no conversation behind.
	convs, err := e.cl.List(ctxT(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 3 {
		t.Fatalf("alice is in %d conversations, want 3 (direct and two groups): %+v", len(convs), convs)
	}
	for _, who := range append(u[3:], many...) {
		if convs, _ := e.st.UserConversations(ctxT(t), who); len(convs) != 0 {
			t.Fatalf("%s was stored in %v by a refused create", who, convs)
		}
	}
}

func testGet(t *testing.T, e *env) {
	u := names("alice", "bob", "carol")
	a, b, c := u[0], u[1], u[2]
	d := direct(t, e, a, b)
	g := group(t, e, a, b)
	cases := []struct {
		name, user, conv, code string
	}{
		{"direct", a, d, ""},
		{"direct other side", b, d, ""},
		{"group member", b, g, ""},
		{"outsider", c, d, convapi.CodeNotMember},
		{"unknown conversation", a, "g_nope", convapi.CodeNotMember},
		{"unknown direct does not leak", c, natter.DirectID(a, c), convapi.CodeNotMember},
		{"invalid conv", a, "g.1", convapi.CodeBadFrame},
		{"missing user", "", g, convapi.CodeBadFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.cl.Get(ctxT(t), tc.user, tc.conv)
			wantCode(t, err, tc.code)
			want := []string{a, b}
			slices.Sort(want)
			if tc.code == "" && (got.ID != tc.conv || !slices.Equal(got.Members, want) || got.MemberCount != 2 || got.CreatedBy != a) {
				t.Fatalf("got %+v, want %s with members %v", got, tc.conv, want)
			}
		})
	}
}

func testList(t *testing.T, e *env) {
	u := names("alice", "bob", "carol")
	a, b, c := u[0], u[1], u[2]
	d := direct(t, e, a, b)
	g := group(t, e, b, a)
	t.Run("two", func(t *testing.T) {
		got, err := e.cl.List(ctxT(t), a)
		wantCode(t, err, "")
		ids := []string{got[0].ID, got[1].ID}
		if len(got) != 2 || !slices.Equal(ids, slices.Sorted(slices.Values([]string{d, g}))) {
			t.Fatalf("got %+v", got)
		}
		want := []string{a, b}
		slices.Sort(want)
		for _, cv := range got {
			if !slices.Equal(cv.Members, want) || cv.MemberCount != 2 {
				t.Fatalf("list entry %+v, want members %v", cv, want)
			}
		}
	})
	t.Run("none", func(t *testing.T) {
		got, err := e.cl.List(ctxT(t), c)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %v %v", got, err)
		}
	})
	t.Run("missing user", func(t *testing.T) {
		_, err := e.cl.List(ctxT(t), "")
		wantCode(t, err, convapi.CodeBadFrame)
	})
}

func testRead(t *testing.T, e *env) {
	u := names("alice", "bob", "carol")
	a, b, c := u[0], u[1], u[2]
	d := direct(t, e, a, b)
	cases := []struct {
		name, user, conv string
		seq              uint64
		code             string
		want             uint64
	}{
		{"forward", a, d, 7, "", 7},
		{"never back", a, d, 3, "", 7},
		{"outsider", c, d, 9, convapi.CodeNotMember, 0},
		{"seq zero", a, d, 0, convapi.CodeBadFrame, 7},
		{"seq too big", a, d, 1 << 63, convapi.CodeBadFrame, 7},
		{"invalid conv", a, "", 1, convapi.CodeBadFrame, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, e.cl.SetRead(ctxT(t), tc.user, tc.conv, tc.seq), tc.code)
			if tc.conv == "" {
				return
			}
			if got, err := e.st.ReadCursor(ctxT(t), tc.user, tc.conv); err != nil || got != tc.want {
				t.Fatalf("cursor %d %v, want %d", got, err, tc.want)
			}
		})
	}
}

func testHistory(t *testing.T, e *env) {
	u := names("alice", "bob", "carol")
	a, b, c := u[0], u[1], u[2]
	g := group(t, e, a, b)
	var msgs []natter.Message
	for seq := uint64(1); seq <= 30; seq++ {
		msgs = append(msgs, natter.Message{ID: fmt.Sprintf("m_%s_%d", g, seq), Conv: g, Seq: seq, From: a, Cmid: fmt.Sprint(seq), Body: "hi", TS: 1})
	}
	if _, err := e.st.InsertMessages(ctxT(t), msgs); err != nil {
		t.Fatal(err)
	}
	after := func(n uint64) *uint64 { return &n }
	cases := []struct {
		name     string
		req      convapi.HistoryRequest
		code     string
		from, to uint64 // want seqs from..to, 0 = none
		more     bool
	}{
		{"newest", convapi.HistoryRequest{User: b, Conv: g, Limit: 10}, "", 21, 30, true},
		{"before", convapi.HistoryRequest{User: b, Conv: g, Before: 21, Limit: 10}, "", 11, 20, true},
		{"before, oldest page", convapi.HistoryRequest{User: b, Conv: g, Before: 11, Limit: 10}, "", 1, 10, false},
		{"before 1", convapi.HistoryRequest{User: b, Conv: g, Before: 1}, "", 0, 0, false},
		{"after 0", convapi.HistoryRequest{User: b, Conv: g, After: after(0), Limit: 10}, "", 1, 10, true},
		{"after, newest page", convapi.HistoryRequest{User: b, Conv: g, After: after(25), Limit: 10}, "", 26, 30, false},
		{"between", convapi.HistoryRequest{User: b, Conv: g, After: after(5), Before: 9}, "", 6, 8, false},
		{"between, limited", convapi.HistoryRequest{User: b, Conv: g, After: after(5), Before: 20, Limit: 3}, "", 6, 8, true},
		{"default limit", convapi.HistoryRequest{User: b, Conv: g}, "", 1, 30, false},
		{"outsider", convapi.HistoryRequest{User: c, Conv: g}, convapi.CodeNotMember, 0, 0, false},
		{"limit too big", convapi.HistoryRequest{User: b, Conv: g, Limit: convapi.MaxHistoryLimit + 1}, convapi.CodeBadFrame, 0, 0, false},
		{"negative limit", convapi.HistoryRequest{User: b, Conv: g, Limit: -1}, convapi.CodeBadFrame, 0, 0, false},
		{"invalid conv", convapi.HistoryRequest{User: b, Conv: "x>"}, convapi.CodeBadFrame, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page, err := e.cl.History(ctxT(t), tc.req)
			wantCode(t, err, tc.code)
			if tc.code != "" {
				return
			}
			var want []uint64
			for s := tc.from; s != 0 && s <= tc.to; s++ {
				want = append(want, s)
			}
			if got := seqs(page.Msgs); !slices.Equal(got, want) || page.More != tc.more {
				t.Fatalf("got %v more=%v, want %v more=%v", got, page.More, want, tc.more)
			}
		})
	}
}

func seqs(ms []natter.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

// testWire sends raw requests a typed client cannot: each op answers
// malformed JSON with bad_frame, and names the field of a wrong type.
func testWire(t *testing.T, e *env) {
	ops := []string{convapi.OpCreate, convapi.OpGet, convapi.OpList, convapi.OpMembersAdd, convapi.OpMembersRemove,
		convapi.OpMembersList, convapi.OpMembers, convapi.OpRead, convapi.OpHistory}
	bodies := []struct{ name, body, field string }{
		{"empty", "", "request"},
		{"not json", "{user", "request"},
		{"array", "[1]", ""},
		{"null", "null", ""},
		{"wrong type", `{"user":5,"conv":5}`, ""},
	}
	for _, op := range ops {
		for _, bd := range bodies {
			t.Run(op+"/"+bd.name, func(t *testing.T) {
				msg, err := e.nc.RequestWithContext(ctxT(t), subjects.ConvEndpoint(op), []byte(bd.body))
				if err != nil {
					t.Fatal(err)
				}
				code, desc := msg.Header.Get(micro.ErrorCodeHeader), msg.Header.Get(micro.ErrorHeader)
				if code != convapi.CodeBadFrame || !strings.HasPrefix(desc, bd.field) {
					t.Fatalf("got %q %q, want bad_frame naming %q", code, desc, bd.field)
				}
			})
		}
	}
	t.Run("wrong type names the field", func(t *testing.T) {
		msg, err := e.nc.RequestWithContext(ctxT(t), subjects.ConvEndpoint(convapi.OpRead), []byte(`{"user":"a","conv":"b","seq":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		if desc := msg.Header.Get(micro.ErrorHeader); !strings.HasPrefix(desc, "seq:") {
			t.Fatalf("description %q does not name seq", desc)
		}
	})
}

// testInternal stores a corrupt conversation: the service answers internal,
// without the details.
func testInternal(t *testing.T, e *env) {
	conv := names("g_broken")[0]
	_, err := e.st.DB().Collection(store.CollConversations).InsertOne(ctxT(t),
		bson.D{{Key: "_id", Value: conv}, {Key: "kind", Value: "group"}, {Key: "members", Value: "not a list"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.cl.Members(ctxT(t), conv)
	wantCode(t, err, convapi.CodeInternal)
}

// TestUnavailable: no responders, a silent responder and a stopped store
// all come back as unavailable.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{svc: convsvc.Config{StoreTimeout: 300 * time.Millisecond}})
	u := names("alice", "bob")
	d := direct(t, e, u[0], u[1])

	t.Run("no responders", func(t *testing.T) {
		// Endpoints of another prefix nobody serves: use a fresh server.
		nc := testenv.Connect(t, testenv.StartNATS(t).ClientURL())
		_, err := convapi.NewClient(nc, 0).Members(ctxT(t), d)
		wantCode(t, err, convapi.CodeUnavailable)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("%v does not wrap nats.ErrNoResponders", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		nc := testenv.Connect(t, testenv.StartNATS(t).ClientURL())
		sub, err := nc.Subscribe(subjects.ConvEndpoint(convapi.OpGet), func(*nats.Msg) {}) // never answers
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		_, err = convapi.NewClient(nc, 100*time.Millisecond).Get(ctxT(t), u[0], d)
		wantCode(t, err, convapi.CodeUnavailable)
	})
	t.Run("store down", func(t *testing.T) {
		if err := e.emb.Stop(ctxT(t)); err != nil { // waits ~3s for FerretDB's connections
			t.Fatal(err)
		}
		_, err := e.cl.Get(ctxT(t), u[0], d)
		wantCode(t, err, convapi.CodeUnavailable)
		var se *convapi.Error
		if errors.As(err, &se); !se.Retryable() || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v: want a retryable answer from the service, not a client timeout", err)
		}
	})
}

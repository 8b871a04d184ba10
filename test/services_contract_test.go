package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/micro"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/events"
	"github.com/natter-im/natter/workers/ingest"
	"github.com/natter-im/natter/workers/runner"
	"github.com/natter-im/natter/workers/svcapi"
)

const asyncAPIPath = "../docs/asyncapi.yaml"

// asyncAPI is docs/asyncapi.yaml as JSON values, with its schemas compiled
// on demand.
type asyncAPI struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

func loadAsyncAPI(t *testing.T) *asyncAPI {
	t.Helper()
	raw, err := os.ReadFile(asyncAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		t.Fatalf("%s: %v", asyncAPIPath, err)
	}
	// Through JSON, so that the schema compiler gets JSON values.
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("%s is not JSON-compatible: %v", asyncAPIPath, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("asyncapi.json", doc); err != nil {
		t.Fatal(err)
	}
	return &asyncAPI{doc: doc.(map[string]any), compiler: c}
}

// schema compiles components/schemas/name.
func (a *asyncAPI) schema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	s, err := a.compiler.Compile("asyncapi.json#/components/schemas/" + name)
	if err != nil {
		t.Fatalf("compile schema %s: %v", name, err)
	}
	return s
}

// pointer resolves a local $ref ("#/a/b").
func (a *asyncAPI) pointer(ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = a.doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// channel is one channel address, split into tokens, with the enums of its
// parameters.
type channel struct {
	name    string
	address string
	tokens  []string
	enums   map[string][]string
}

var paramRe = regexp.MustCompile(`^\{([a-z]+)\}$`)

func (a *asyncAPI) channels(t *testing.T) []channel {
	t.Helper()
	chans, _ := a.doc["channels"].(map[string]any)
	if len(chans) == 0 {
		t.Fatal("no channels")
	}
	var out []channel
	for name, v := range chans {
		ch := v.(map[string]any)
		addr, _ := ch["address"].(string)
		if addr == "" {
			t.Fatalf("channel %s has no address", name)
		}
		c := channel{name: name, address: addr, enums: map[string][]string{}}
		params, _ := ch["parameters"].(map[string]any)
		if strings.HasPrefix(addr, "/") {
			c.tokens = []string{addr}
		} else {
			c.tokens = strings.Split(addr, ".")
		}
		for _, tok := range c.tokens {
			m := paramRe.FindStringSubmatch(tok)
			if m == nil {
				continue
			}
			p, ok := params[m[1]].(map[string]any)
			if !ok {
				t.Fatalf("channel %s: parameter %s not declared", name, m[1])
			}
			if ref, ok := p["$ref"].(string); ok {
				if p, ok = mustMap(a.pointer(ref)); !ok {
					t.Fatalf("channel %s: parameter %s: bad $ref %s", name, m[1], ref)
				}
			}
			if enum, ok := p["enum"].([]any); ok {
				for _, e := range enum {
					c.enums[m[1]] = append(c.enums[m[1]], e.(string))
				}
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].address < out[j].address })
	return out
}

func mustMap(v any, ok bool) (map[string]any, bool) {
	m, isMap := v.(map[string]any)
	return m, ok && isMap
}

// match reports whether subject subj (which may hold the wildcards * and
// >) names addresses of c: "*" stands for any one token, ">" for one or
// more; other tokens must be c's literal or fit its parameter (and the
// parameter's enum, if it has one).
func (c channel) match(subj string) bool {
	toks := strings.Split(subj, ".")
	for i, tok := range toks {
		if tok == ">" {
			return i == len(toks)-1 && len(c.tokens) > i
		}
		if i >= len(c.tokens) {
			return false
		}
		want := c.tokens[i]
		if tok == "*" {
			continue
		}
		if m := paramRe.FindStringSubmatch(want); m != nil {
			if tok == "" || (c.enums[m[1]] != nil && !slices.Contains(c.enums[m[1]], tok)) {
				return false
			}
			continue
		}
		if tok != want {
			return false
		}
	}
	return len(toks) == len(c.tokens)
}

// exported lists the exported functions and the exported string constants
// (name -> value) of the Go package in dir.
func exported(t *testing.T, dir string) (funcs []string, consts map[string]string) {
	t.Helper()
	fset := gotoken.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	consts = map[string]string{}
	{
		for _, f := range files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil && d.Name.IsExported() {
						funcs = append(funcs, d.Name.Name)
					}
				case *ast.GenDecl:
					if d.Tok != gotoken.CONST {
						continue
					}
					for _, spec := range d.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if !n.IsExported() || i >= len(vs.Values) {
								continue
							}
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
								consts[n.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(funcs)
	return funcs, consts
}

// opsOf returns the values of the Op* constants of the package in dir.
func opsOf(t *testing.T, dir string) []string {
	t.Helper()
	_, consts := exported(t, dir)
	var ops []string
	for name, v := range consts {
		if strings.HasPrefix(name, "Op") {
			ops = append(ops, v)
		}
	}
	sort.Strings(ops)
	return ops
}

// TestAsyncAPISubjects: every subject the code builds (each builder and
// subject constant of package subjects with sample ids, and the micro
// discovery subjects) matches a channel address of docs/asyncapi.yaml.
func TestAsyncAPISubjects(t *testing.T) {
	t.Parallel()
	a := loadAsyncAPI(t)
	if v, _ := a.doc["asyncapi"].(string); v != "3.0.0" {
		t.Fatalf("asyncapi: %q, want 3.0.0", v)
	}
	chans := a.channels(t)

	const conv, user = "g_7f3a9c", "alice"
	roles := append([]string{node.RoleEdge, "webhook_billing"}, node.AllRoles...)
	convOps := opsOf(t, "../jetstream/convapi")
	apiOps := opsOf(t, "../workers/svcapi")
	if !slices.Equal(apiOps, slices.Sorted(slices.Values(svcapi.Ops))) {
		t.Fatalf("svcapi.Ops %v lists not every op constant %v", svcapi.Ops, apiOps)
	}
	var built = map[string][]string{}
	each := func(name string, vals []string, fn func(string) string) {
		for _, v := range vals {
			built[name] = append(built[name], fn(v))
		}
	}
	each("Msg", []string{conv}, subjects.Msg)
	each("Deliver", []string{user}, subjects.Deliver)
	each("DLQ", roles, subjects.DLQ)
	each("MembersChanged", []string{conv}, subjects.MembersChanged)
	each("ConvEndpoint", convOps, subjects.ConvEndpoint)
	each("APIEndpoint", apiOps, subjects.APIEndpoint)
	each("Ingest", []string{conv}, subjects.Ingest)
	each("Event", natter.EventKinds, func(k string) string { return subjects.Event(k, conv) })
	each("EventsOfKind", natter.EventKinds, subjects.EventsOfKind)
	each("EventsOfConv", []string{conv}, subjects.EventsOfConv)
	each("Status", roles, subjects.Status)
	each("Presence", []string{user}, subjects.Presence)
	each("AttachThumb", []string{"a_mfrggzdfmztwq2lknnwg23tpoa"}, subjects.AttachThumb)
	// natter restore's placeholders land on a stream's own subjects.
	each("BackupGapSubject", []string{subjects.MsgsAll}, subjects.BackupGapSubject)
	// Builders of names that are not subjects.
	notSubjects := []string{"ValidID", "ConvFromMsg", "UserFromDeliver", "ConvFromIngest", "KindFromEvent", "ServiceName", "WebhookConsumer", "WebhookRole",
		"UserFromPresence", "KVSubject", "PresenceOnKey", "PresenceOnKeys", "PresenceSeenKey", "PresenceHiddenKey", "PresenceBlockKey",
		"RevokedJTIKey", "RevokedUserKey", "RevokedDeviceKey", "BanKey", "FrozenKey", "DeliveredKey", "ReadKey", "SettingsKey",
		"AttachFromThumb", "AttachMetaKey", "AttachMetaKeys", "AttachMsgKey", "AttachQuotaKey", "AttachObject", "AttachThumbObject",
		"ActionsKey", "ActionsBlockFilter", "ActionsUserKey", "ActionsBlockUserFilter", "PushKey", "PushKeys",
		"ActionsThreadKey", "ActionsThreadFilter", "ActionsMentionKey", "ActionsMentionAllKey", "ActionsBlockAll",
		"KVStream", "ObjectStream"}

	funcs, consts := exported(t, "../jetstream/subjects")
	for _, f := range funcs {
		if _, ok := built[f]; !ok && !slices.Contains(notSubjects, f) {
			t.Errorf("subjects.%s: no sample in this test; add it to built or notSubjects", f)
		}
	}
	for name, v := range consts {
		// Subject constants have a dot; prefixes are checked through their
		// builders.
		if strings.Contains(v, ".") && !strings.HasSuffix(name, "Prefix") {
			built["const "+name] = []string{v}
		}
	}
	for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
		for _, args := range [][2]string{{"", ""}, {subjects.ServiceAPI, ""}, {subjects.ServiceEdge, "ABC123"}} {
			s, err := micro.ControlSubject(verb, args[0], args[1])
			if err != nil {
				t.Fatal(err)
			}
			built["micro.ControlSubject"] = append(built["micro.ControlSubject"], s)
		}
	}

	used := map[string]bool{}
	for name, subjs := range built {
		for _, subj := range subjs {
			ok := false
			for _, c := range chans {
				if c.match(subj) {
					ok, used[c.name] = true, true
				}
			}
			if !ok {
				t.Errorf("%s builds %q, which no channel of %s matches", name, subj, asyncAPIPath)
			}
		}
	}
	for _, c := range chans {
		if !used[c.name] && !strings.HasPrefix(c.address, "/") {
			t.Errorf("channel %s (%s) matches no subject the code builds", c.name, c.address)
		}
	}
	// A subject of another namespace matches nothing: the check can fail.
	for _, c := range chans {
		if c.match("im.msg") || c.match("natter.api.fly") || c.match("im.evt.bogus_kind."+conv) {
			t.Fatalf("channel %s matches a subject natter does not use", c.address)
		}
	}
}

// TestAsyncAPIRefs: every local $ref of docs/asyncapi.yaml resolves, and
// every schema compiles.
func TestAsyncAPIRefs(t *testing.T) {
	t.Parallel()
	a := loadAsyncAPI(t)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					if ref, _ := x.(string); ref != "" {
						if _, ok := a.pointer(ref); !ok {
							t.Errorf("%s: $ref %s does not resolve", path, ref)
						}
					}
					continue
				}
				walk(path+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s/%d", path, i), x)
			}
		}
	}
	walk("#", a.doc)
	schemas, _ := a.pointer("#/components/schemas")
	for name := range schemas.(map[string]any) {
		a.schema(t, name)
	}
}

// TestAsyncAPIPayloads: natter's payloads validate against the schemas of
// docs/asyncapi.yaml, and payloads natter refuses do not.
func TestAsyncAPIPayloads(t *testing.T) {
	t.Parallel()
	a := loadAsyncAPI(t)
	msg := natter.Message{ID: "m_k5qwy3dfmzxgc4tbnfzgk2lmnq", Conv: "g_7f3a9c", Seq: 42, From: "svc_billing", Cmid: "inv-1", Type: "text", Body: "Invoice 1 is due", TS: 1767225600000}
	edit := natter.Message{ID: "m_obzwk3tuebqw4zdtmvxhizlomq", Conv: msg.Conv, Seq: 43, From: "svc_billing", Cmid: "inv-1-edit", Type: natter.TypeEdit, Body: "Invoice 1 is paid", Ref: msg.ID, TS: 1767225600100}
	del := natter.Message{ID: "m_mfrggzdfmztwq2lknnwg23tpoa", Conv: msg.Conv, Seq: 44, From: "svc_mod", Cmid: "d1", Type: natter.TypeDelete, Ref: msg.ID, TS: 1767225600200}
	conv := natter.Conversation{ID: msg.Conv, Kind: natter.KindGroup, Name: "Billing", CreatedBy: "svc_billing", CreatedAt: 1767225000000, Members: []string{"alice", "bob"}}
	must := func(ev natter.Event, err error) natter.Event {
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	evCreated, _ := events.MessageEvent(msg)
	evEdited, _ := events.MessageEvent(edit)
	evDeleted, _ := events.MessageEvent(del)
	evJoined := must(events.MembersJoined(conv.ID, "svc_billing", "v1", []string{"carol"}, 1))
	evLeft := must(events.MembersLeft(conv.ID, "bob", "v2", []string{"bob"}, 2))
	evConv := must(events.ConversationCreated(conv))
	evRead := must(events.ReadMoved(conv.ID, "alice", 42, 3))
	evRenamed := must(events.ConversationRenamed(conv.ID, "bob", "3", "Billing B", 4))
	evRoles := must(events.ConversationUpdated(conv.ID, "alice", "4", natter.EventUpdate{Change: natter.UpdateRoles, Owner: "alice", Admins: []string{"bob"}}, 5))
	evMuted := must(events.ConversationUpdated(conv.ID, "bob", "5", natter.EventUpdate{Change: natter.UpdateMuted, Users: []string{"carol"}, Until: 1767229200000}, 6))
	evProfile := must(events.ConversationUpdated(conv.ID, "bob", "6", natter.EventUpdate{Change: natter.UpdateProfile, Description: "Invoices", Announce: true}, 7))
	after := uint64(0)
	stats := runner.Stats{Role: "persist", Processed: 3, Acked: 3, LastError: "x"}

	type sample struct {
		name   string
		schema string
		v      any
		valid  bool
	}
	samples := []sample{
		{"message", "Message", msg, true},
		{"edit entry", "Message", edit, true},
		{"delete entry", "Message", del, true},
		{"message without seq", "Message", map[string]any{"id": "m_a", "conv": "c", "from": "a", "cmid": "c", "body": "", "ts": 1}, false},
		{"ack", "Ack", natter.Ack{ID: msg.ID, Conv: msg.Conv, Seq: 42, TS: 1, Dup: true}, true},
		{"conversation", "Conversation", conv, true},
		{"event message_created", "Event", evCreated, true},
		{"event message_edited", "Event", evEdited, true},
		{"event message_deleted", "Event", evDeleted, true},
		{"event member_joined", "Event", evJoined, true},
		{"event member_left", "Event", evLeft, true},
		{"event conversation_created", "Event", evConv, true},
		{"event read_moved", "Event", evRead, true},
		{"event conversation_renamed", "Event", evRenamed, true},
		{"event conversation_updated roles", "Event", evRoles, true},
		{"event conversation_updated muted", "Event", evMuted, true},
		{"event conversation_updated profile", "Event", evProfile, true},
		{"conversation_updated without change", "Event", natter.Event{ID: "x", Kind: natter.EventConversationUpdated, Conv: "c", TS: 1, Actor: "a", Data: json.RawMessage(`{"owner":"a"}`)}, false},
		{"mute frame without duration", "ClientFrame", map[string]any{"op": "members.mute", "id": "1", "conv": "c", "users": []string{"a"}}, false},
		{"conversation_renamed without a name", "Event", natter.Event{ID: "x", Kind: natter.EventConversationRenamed, Conv: "c", TS: 1, Actor: "a", Data: json.RawMessage(`{"users":["a"]}`)}, false},
		{"event of unknown kind", "Event", natter.Event{ID: "x", Kind: "bogus", Conv: "c", TS: 1, Actor: "a", Data: json.RawMessage(`{}`)}, false},
		{"message_edited without ref", "Event", natter.Event{ID: "x", Kind: natter.EventMessageEdited, Conv: "c", TS: 1, Actor: "a", Data: mustJSON(t, msg)}, false},
		{"read_moved with users", "Event", natter.Event{ID: "x", Kind: natter.EventReadMoved, Conv: "c", TS: 1, Actor: "a", Data: json.RawMessage(`{"users":["a"]}`)}, false},
		{"event without actor", "Event", map[string]any{"id": "x", "kind": "read_moved", "conv": "c", "ts": 1, "data": map[string]any{"user": "a", "seq": 1}}, false},
		{"api send", "ApiSendRequest", svcapi.SendRequest{Service: "svc_billing", Conv: conv.ID, Cmid: "inv-1", Body: "hi", Type: "notice"}, true},
		{"api send without service", "ApiSendRequest", map[string]any{"conv": conv.ID, "cmid": "inv-1", "body": "hi"}, false},
		{"api send with an empty service", "ApiSendRequest", svcapi.SendRequest{Conv: conv.ID, Cmid: "inv-1", Body: "hi"}, false},
		{"api send of type edit", "ApiSendRequest", svcapi.SendRequest{Service: "s", Conv: conv.ID, Cmid: "inv-1", Body: "hi", Type: "edit"}, false},
		{"api send reply", "Ack", natter.Ack{ID: msg.ID, Conv: msg.Conv, Seq: 42, TS: 1}, true},
		{"api create", "ApiCreateRequest", svcapi.CreateRequest{Service: "svc_billing", Kind: "group", Name: "Billing", Members: []string{"alice"}}, true},
		{"api members.add", "ApiMembersChangeRequest", svcapi.MembersRequest{Service: "s", Conv: conv.ID, Users: []string{"dave"}}, true},
		{"api members.list", "ApiConvRequest", svcapi.MembersRequest{Service: "s", Conv: conv.ID}, true},
		{"api members.list reply", "MemberList", svcapi.MembersReply{Members: []string{"alice"}}, true},
		{"api history", "ApiHistoryRequest", svcapi.HistoryRequest{Service: "s", Conv: conv.ID, After: &after, Limit: 10}, true},
		{"api history reply", "HistoryPage", svcapi.HistoryReply{Msgs: []natter.Message{msg, edit, del}, More: true}, true},
		{"api edit", "ApiEditRequest", svcapi.EditRequest{Service: "s", Conv: conv.ID, Ref: msg.ID, Cmid: "e1", Body: "x"}, true},
		{"api delete", "ApiDeleteRequest", svcapi.DeleteRequest{Service: "s", Conv: conv.ID, Ref: msg.ID, Cmid: "d1"}, true},
		{"ingest", "IngestPayload", ingest.Payload{From: "svc_metrics", Body: "cpu 93%", Type: "metric"}, true},
		{"ingest without from", "IngestPayload", ingest.Payload{Body: "x"}, false},
		{"ingest without body", "IngestPayload", ingest.Payload{From: "svc_metrics"}, false},
		{"runner stats", "Stats", stats, true},
		{"client frame of unknown op", "ClientFrame", map[string]any{"op": "fly", "id": "1"}, false},
		{"send frame without cmid", "ClientFrame", map[string]any{"op": "send", "id": "1", "conv": "c", "body": "x"}, false},
		{"server err frame of unknown code", "ServerFrame", map[string]any{"t": "err", "code": "oops", "msg": "x"}, false},
	}
	for i, f := range protocolExamples(t, "client") {
		samples = append(samples, sample{fmt.Sprintf("protocol.md client frame %d", i+1), "ClientFrame", json.RawMessage(f), true})
	}
	for i, f := range protocolExamples(t, "server") {
		samples = append(samples, sample{fmt.Sprintf("protocol.md server frame %d", i+1), "ServerFrame", json.RawMessage(f), true})
	}
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			b, err := json.Marshal(s.v)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			err = a.schema(t, s.schema).Validate(inst)
			if s.valid && err != nil {
				t.Fatalf("%s does not validate against %s: %v", b, s.schema, err)
			}
			if !s.valid && err == nil {
				t.Fatalf("%s validates against %s, want it refused", b, s.schema)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protocolExamples returns the frames of the ```json <side> blocks of
// docs/protocol.md, one per non-empty line.
func protocolExamples(t *testing.T, side string) []string {
	t.Helper()
	data, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case !in && line == "```json "+side:
			in = true
		case in && line == "```":
			in = false
		case in && line != "":
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		t.Fatalf("docs/protocol.md has no json %s examples", side)
	}
	return out
}

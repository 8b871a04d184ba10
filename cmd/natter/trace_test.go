package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/natter-im/natter/client"
	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/journey"
	"github.com/natter-im/natter/internal/testenv"
)

// collector is an in-process OTLP/HTTP trace receiver (protobuf).
type collector struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	url   string
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	c.url = "http://" + ln.Addr().String() + "/v1/traces"
	return c
}

// trace returns the spans received of trace id, by name.
func (c *collector) trace(id []byte) map[string][]*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]*tracepb.Span{}
	for _, s := range c.spans {
		if string(s.TraceId) == string(id) {
			out[s.Name] = append(out[s.Name], s)
		}
	}
	return out
}

// find returns the first span named name whose string attribute key is val.
func (c *collector) find(name, key, val string) *tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.Name == name && attr(s, key) == val {
			return s
		}
	}
	return nil
}

// attr returns the value of a span's attribute as text ("" when absent).
func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key != key {
			continue
		}
		if sv := kv.Value.GetStringValue(); sv != "" {
			return sv
		}
		if av := kv.Value.GetArrayValue(); av != nil {
			var parts []string
			for _, e := range av.Values {
				parts = append(parts, e.GetStringValue())
			}
			return strings.Join(parts, ",")
		}
		return fmt.Sprint(kv.Value.GetIntValue())
	}
	return ""
}

// devClients starts natter dev with extra flags and returns clients of
// alice (device laptop) and bob (device phone) in a direct conversation.
func devClients(t *testing.T, ctx context.Context, extra ...string) (*proc, *client.Client, *client.Client, string) {
	t.Helper()
	data := t.TempDir()
	p := startDev(t, data, extra...)
	dial := func(user, device string) *client.Client {
		tok, err := exec.Command(binary, "token", "--data", data, "--user", user).Output()
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, client.Config{URLs: []string{"ws://" + p.ready["http"] + protocol.Path}, Token: strings.TrimSpace(string(tok)), Device: device})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	alice, bob := dial("alice", "laptop"), dial("bob", "phone")
	conv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	return p, alice, bob, conv.ID
}

// sendAndRead sends from alice, waits for bob's push and marks it read.
func sendAndRead(t *testing.T, ctx context.Context, alice, bob *client.Client, conv, body string) uint64 {
	t.Helper()
	ack, err := alice.Send(ctx, conv, body)
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-bob.Messages():
			if m.Conv == conv && m.Seq == ack.Seq {
				if err := bob.MarkRead(ctx, conv, ack.Seq); err != nil {
					t.Fatal(err)
				}
				return ack.Seq
			}
		case <-ctx.Done():
			t.Fatalf("bob never got seq %d: %v", ack.Seq, ctx.Err())
		}
	}
}

// TestTracingOneMessage: with an OTLP endpoint and every send sampled, one
// message sent through natter dev with the SDK yields one trace in the
// collector that links the edge's send and append to the persist, fan-out,
// events and push roles' spans (children of the append: the traceparent
// in the MSGS entry) and to the edge's delivery to bob's device (child of
// the fan-out's span: the trace context in the delivery message), for a
// delivery per member and for a broadcast to the group's members.
func TestTracingOneMessage(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // ms: export at once
	for _, tc := range []struct {
		name  string
		extra []string
		// env names the collector with OTEL_EXPORTER_OTLP_ENDPOINT
		// instead of --otlp-endpoint.
		env bool
		// deliver is what the natter.deliver span that reached bob's
		// phone says: its natter.user and natter.devices.
		user, devices string
	}{
		{"per member", nil, false, "bob", "phone"},
		{"broadcast", []string{"--fanout-broadcast-min", "2"}, false, "", "alice/laptop,bob/phone"},
		{"endpoint from OTEL_EXPORTER_OTLP_ENDPOINT", nil, true, "bob", "phone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := startCollector(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := append([]string{"--trace-sample", "1", "--edge-id", "edge-t1"}, tc.extra...)
			if tc.env {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", strings.TrimSuffix(col.url, "/v1/traces"))
			} else {
				args = append(args, "--otlp-endpoint", col.url)
			}
			p, alice, bob, conv := devClients(t, ctx, args...)
			seq := sendAndRead(t, ctx, alice, bob, conv, "traced hello")

			var spans map[string][]*tracepb.Span
			var dlv *tracepb.Span
			testenv.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
				send := col.find("natter.send", "natter.conv", conv)
				if send == nil {
					return fmt.Errorf("no natter.send span of %s yet", conv)
				}
				spans = col.trace(send.TraceId)
				for _, name := range []string{"natter.send", "natter.append", "natter.persist", "natter.fanout"} {
					if len(spans[name]) == 0 {
						return fmt.Errorf("trace has no %s span yet (has %d names)", name, len(spans))
					}
				}
				dlv = nil
				for _, d := range spans["natter.deliver"] {
					if attr(d, "natter.user") == tc.user && attr(d, "natter.devices") == tc.devices {
						dlv = d
					}
				}
				if dlv == nil {
					return fmt.Errorf("no natter.deliver span with user %q devices %q yet (%d deliver spans)", tc.user, tc.devices, len(spans["natter.deliver"]))
				}
				return nil
			})
			one := func(name string) *tracepb.Span { return spans[name][0] }
			parent := func(child *tracepb.Span, want string) {
				t.Helper()
				if string(child.ParentSpanId) != string(one(want).SpanId) {
					t.Errorf("%s's parent is %x, want %s's span %x", child.Name, child.ParentSpanId, want, one(want).SpanId)
				}
			}
			parent(one("natter.append"), "natter.send")
			for _, role := range []string{"natter.persist", "natter.fanout"} {
				parent(one(role), "natter.append")
			}
			parent(dlv, "natter.fanout")
			if got := attr(one("natter.send"), "natter.seq"); got != fmt.Sprint(seq) {
				t.Errorf("natter.send natter.seq = %q, want %d", got, seq)
			}
			if got := attr(one("natter.send"), "natter.edge"); got != "edge-t1" {
				t.Errorf("natter.send natter.edge = %q, want edge-t1", got)
			}
			if got := attr(one("natter.persist"), "natter.outcome"); got != "ack" {
				t.Errorf("natter.persist outcome = %q, want ack", got)
			}
			if got := attr(dlv, "natter.edge"); got != "edge-t1" {
				t.Errorf("natter.deliver natter.edge = %q, want edge-t1", got)
			}
			rep := traceReport(t, p.ready["nats"], fmt.Sprintf("%s/%d", conv, seq), settled)
			if rep.Edge != "edge-t1" || !strings.Contains(rep.TraceParent, fmt.Sprintf("%x", one("natter.send").TraceId)) {
				t.Errorf("natter trace of a sampled send: edge %q traceparent %q; want edge-t1 and trace %x", rep.Edge, rep.TraceParent, one("natter.send").TraceId)
			}
		})
	}
}

// traceReport runs natter trace --format json until ok accepts its report.
func traceReport(t *testing.T, natsURL, target string, ok func(*journey.Report) error) *journey.Report {
	t.Helper()
	var rep *journey.Report
	testenv.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		code, out, errOut := runNatter(t, "trace", "--nats-url", natsURL, "--format", "json", target)
		if code != 0 {
			return fmt.Errorf("natter trace %s: exit %d: %s", target, code, errOut)
		}
		rep = &journey.Report{}
		if err := json.Unmarshal([]byte(out), rep); err != nil {
			t.Fatalf("natter trace --format json: %v\n%s", err, out)
		}
		return ok(rep)
	})
	return rep
}

// settled accepts a report once the message is archived, delivered to
// every device (alice/laptop, bob/phone) and read by both.
func settled(rep *journey.Report) error {
	if !rep.Archive.Persisted || !rep.Archive.Stored {
		return fmt.Errorf("not archived yet: %+v", rep.Archive)
	}
	var devices, readers []string
	for _, d := range rep.Delivered {
		if d.Passed {
			devices = append(devices, d.User+"/"+d.Device)
		}
	}
	for _, r := range rep.Read {
		if r.Passed {
			readers = append(readers, r.User)
		}
	}
	if strings.Join(devices, " ") != "alice/laptop bob/phone" || strings.Join(readers, " ") != "alice bob" {
		return fmt.Errorf("delivered to %v, read by %v; want alice/laptop bob/phone, alice bob", devices, readers)
	}
	return nil
}

// TestTraceCommand: natter trace <conv>/<seq> prints a message's journey
// from what natter keeps: the append (exact: JetStream's store time and
// stream seq; the edge and trace id only for a sampled send), the archive
// (an upper bound from persist's ack floor), the devices whose delivered
// cursor passed the seq and the members whose read cursor did (upper
// bounds: the time the cursor was last written). Bad input is a usage
// error; an unknown seq says so.
func TestTraceCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, alice, bob, conv := devClients(t, ctx, "--edge-id", "edge-u1") // tracing off
	sendAndRead(t, ctx, alice, bob, conv, "first")
	seq := sendAndRead(t, ctx, alice, bob, conv, "second")
	target := fmt.Sprintf("%s/%d", conv, seq)
	rep := traceReport(t, p.ready["nats"], target, settled)

	if !rep.HotTier || rep.StreamSeq == 0 || rep.Msg.Body != "second" || rep.Msg.From != "alice" || rep.Seq != seq {
		t.Errorf("report of %s: hot %v stream seq %d body %q from %q seq %d", target, rep.HotTier, rep.StreamSeq, rep.Msg.Body, rep.Msg.From, rep.Seq)
	}
	if rep.Edge != "" || rep.TraceParent != "" {
		t.Errorf("an unsampled send recorded edge %q traceparent %q", rep.Edge, rep.TraceParent)
	}
	if rep.Archive.By.Before(rep.Appended) {
		t.Errorf("archived by %v, before it was appended (%v)", rep.Archive.By, rep.Appended)
	}
	for _, d := range rep.Delivered {
		if d.By.Before(rep.Appended) {
			t.Errorf("%s/%s delivered by %v, before it was appended (%v)", d.User, d.Device, d.By, rep.Appended)
		}
	}
	if d := time.Since(rep.Appended); d < 0 || d > time.Minute {
		t.Errorf("appended %v: %v ago", rep.Appended, d)
	}

	code, out, errOut := runNatter(t, "trace", "--nats-url", p.ready["nats"], conv, fmt.Sprint(seq))
	if code != 0 {
		t.Fatalf("natter trace: exit %d: %s", code, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^message ` + conv + ` seq 2: id m_\w+ from alice`),
		regexp.MustCompile(`(?m)^appended   exact  \S+Z  MSGS stream seq \d+`),
		regexp.MustCompile(`(?m)^           edge   not recorded`),
		regexp.MustCompile(`(?m)^archived   by     \S+Z  persist's ack floor at stream seq \d+ >= \d+ .*the archive holds it`),
		regexp.MustCompile(`(?m)^delivered  by     \S+Z  bob/phone \(delivered cursor 2 >= 2`),
		regexp.MustCompile(`(?m)^read       by     \S+Z  bob \(read cursor 2 >= 2`),
	} {
		if !want.MatchString(out) {
			t.Errorf("natter trace output lacks %s:\n%s", want, out)
		}
	}

	for _, bad := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"nope"}, 2, `"nope" is not <conv>/<seq>`},
		{[]string{conv + "/0"}, 2, `seq "0" is not a positive integer`},
		{[]string{"a.b/1"}, 2, `conversation "a.b"`},
		{[]string{conv + "/99"}, 1, "no such message"},
	} {
		code, _, errOut := runNatter(t, append([]string{"trace", "--nats-url", p.ready["nats"]}, bad.args...)...)
		if code != bad.code || !strings.Contains(errOut, bad.msg) {
			t.Errorf("natter trace %v: exit %d %q; want %d and %q", bad.args, code, errOut, bad.code, bad.msg)
		}
	}
}

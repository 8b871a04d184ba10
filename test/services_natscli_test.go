package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natter "github.com/natter-im/natter"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/discovery"
	"github.com/natter-im/natter/workers/svcapi"
)

// natscli is the nats CLI (the natscli tool of go.mod), built once.
var natscli struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func natsCLI(t *testing.T) string {
	t.Helper()
	natscli.once.Do(func() {
		dir, err := os.MkdirTemp("", "natscli-")
		if err != nil {
			natscli.err = err
			return
		}
		natscli.path = filepath.Join(dir, "nats")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		natscli.out, natscli.err = exec.CommandContext(ctx, "go", "build", "-o", natscli.path, "github.com/nats-io/natscli/nats").CombinedOutput()
	})
	if natscli.err != nil {
		t.Fatalf("build the nats CLI: %v\n%s", natscli.err, natscli.out)
	}
	return natscli.path
}

// cli runs the nats CLI against url with no saved context.
type cli struct {
	t    *testing.T
	bin  string
	url  string
	home string
}

func (c cli) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--no-context", "-s", c.url, "--timeout", "10s"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.home, "XDG_CONFIG_HOME="+c.home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The real nats CLI publishes to the ingest subject and requests the
// service API; the results are those of the same calls from Go, and a
// re-published Nats-Msg-Id stores nothing new.
func TestNatsCLI(t *testing.T) {
	t.Parallel()
	bin := natsCLI(t)
	m := newMesh(t, meshOpts{})
	svc := newSvcEnv(t, m.dev)
	natscmd := cli{t: t, bin: bin, url: m.dev.NATSURL(), home: t.TempDir()}
	alice := mustDial(t, m.dev, "alice")
	conv := svc.group(t, "svc_cli", "CLI", "alice").ID

	// Ingest: the CLI publishes (to JetStream, -J waits for the stream's
	// ack); alice gets it as seq 1.
	payload := `{"from":"svc_cli","body":"from the cli"}`
	out := natscmd.run("pub", "-J", subjects.Ingest(conv), payload, "-H", "Nats-Msg-Id:x1")
	if !strings.Contains(out, "Stored in Stream: "+subjects.StreamIngest) {
		t.Fatalf("nats pub: %s", out)
	}
	got := alice.collect(conv, 1)[1]
	if got.From != "svc_cli" || got.Cmid != "x1" || got.Body != "from the cli" {
		t.Fatalf("alice got %+v", got)
	}
	// The same publish from Go and again from the CLI: duplicates.
	gm := natsMsg(subjects.Ingest(conv), payload, "x1")
	if ack, err := svc.js.PublishMsg(ctx10(t), gm); err != nil || !ack.Duplicate {
		t.Fatalf("go re-publish %+v: %v", ack, err)
	}
	if out := natscmd.run("pub", "-J", subjects.Ingest(conv), payload, "-H", "Nats-Msg-Id:x1"); !strings.Contains(out, "Duplicate: true") {
		t.Fatalf("cli re-publish: %s", out)
	}
	svc.settled(t, subjects.StreamIngest, subjects.ConsumerIngest)

	// Service API: a send from the CLI, the same send from Go (a retry:
	// the same ack with dup).
	send := `{"service":"svc_cli","conv":"` + conv + `","cmid":"c1","body":"hi from a bot"}`
	var cliAck natter.Ack
	if err := json.Unmarshal([]byte(natscmd.run("req", "--raw", subjects.APIEndpoint(svcapi.OpSend), send)), &cliAck); err != nil {
		t.Fatal(err)
	}
	if cliAck.Seq != 2 || cliAck.Dup {
		t.Fatalf("cli send ack %+v", cliAck)
	}
	goAck, err := svc.api.Send(ctx10(t), svcapi.SendRequest{Service: "svc_cli", Conv: conv, Cmid: "c1", Body: "hi from a bot"})
	if err != nil || !goAck.Dup {
		t.Fatalf("go send %+v: %v", goAck, err)
	}
	goAck.Dup = false
	if goAck != cliAck {
		t.Fatalf("go ack %+v, cli ack %+v", goAck, cliAck)
	}
	if c := alice.collect(conv, 1); c[2].ID != cliAck.ID {
		t.Fatalf("alice got %+v", c)
	}

	// History: the same page from the CLI and from Go, two messages.
	var cliPage, goPage svcapi.HistoryReply
	hist := `{"service":"svc_cli","conv":"` + conv + `"}`
	if err := json.Unmarshal([]byte(natscmd.run("req", "--raw", subjects.APIEndpoint(svcapi.OpHistory), hist)), &cliPage); err != nil {
		t.Fatal(err)
	}
	if goPage, err = svc.api.History(ctx10(t), svcapi.HistoryRequest{Service: "svc_cli", Conv: conv}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cliPage, goPage) || len(goPage.Msgs) != 2 {
		t.Fatalf("cli history %+v\ngo history %+v", cliPage, goPage)
	}

	// An error reply shows its code in the CLI's headers.
	if out := natscmd.run("req", subjects.APIEndpoint(svcapi.OpSend), `{"conv":"`+conv+`"}`); !strings.Contains(out, "Nats-Service-Error-Code: bad_frame") {
		t.Fatalf("cli bad request: %s", out)
	}

	// nats micro list sees the instances natter services lists.
	var cliList []struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	}
	if err := json.Unmarshal([]byte(natscmd.run("micro", "list", "--json")), &cliList); err != nil {
		t.Fatal(err)
	}
	list, err := discovery.List(context.Background(), svc.nc, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var a, b []string
	for _, in := range cliList {
		a = append(a, in.Name+"/"+in.ID)
	}
	for _, in := range list {
		b = append(b, in.Name+"/"+in.ID)
	}
	slices.Sort(a)
	if !slices.Equal(a, b) {
		t.Fatalf("nats micro list %v\nnatter services %v", a, b)
	}
}

func natsMsg(subj, data, msgID string) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = []byte(data)
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	return m
}

package webhooks_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/workers/webhooks"
)

func validEndpoint() webhooks.Endpoint {
	return webhooks.Endpoint{Name: "billing", URL: "https://billing.example/hooks", Secret: testSecret}
}

func TestValidateEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*webhooks.Endpoint)
		want string // in the error
	}{
		{"no name", func(e *webhooks.Endpoint) { e.Name = "" }, "name"},
		{"name with a dot", func(e *webhooks.Endpoint) { e.Name = "a.b" }, "name"},
		{"name with a wildcard", func(e *webhooks.Endpoint) { e.Name = "a*" }, "name"},
		{"name too long", func(e *webhooks.Endpoint) { e.Name = strings.Repeat("n", webhooks.MaxNameLen+1) }, "longer than"},
		{"no url", func(e *webhooks.Endpoint) { e.URL = "" }, "url"},
		{"ftp url", func(e *webhooks.Endpoint) { e.URL = "ftp://billing.example/x" }, "scheme"},
		{"relative url", func(e *webhooks.Endpoint) { e.URL = "/hooks" }, "scheme"},
		{"url without host", func(e *webhooks.Endpoint) { e.URL = "https:///hooks" }, "no host"},
		{"url that does not parse", func(e *webhooks.Endpoint) { e.URL = "https://exa mple.com/%zz" }, "url"},
		{"no secret", func(e *webhooks.Endpoint) { e.Secret = "" }, "secret"},
		{"short secret", func(e *webhooks.Endpoint) { e.Secret = "fifteen-bytes!!" }, "at least 16 bytes"},
		{"unknown kind", func(e *webhooks.Endpoint) { e.Kinds = []string{"message_sent"} }, `unknown kind "message_sent"`},
		{"wildcard kind", func(e *webhooks.Endpoint) { e.Kinds = []string{">"} }, "unknown kind"},
		{"kind twice", func(e *webhooks.Endpoint) { e.Kinds = []string{"read_moved", "read_moved"} }, "twice"},
		{"negative attempts", func(e *webhooks.Endpoint) { e.MaxAttempts = -1 }, "max_attempts"},
		{"negative backoff", func(e *webhooks.Endpoint) { e.Backoff = -time.Second }, "backoff"},
		{"negative timeout", func(e *webhooks.Endpoint) { e.Timeout = -time.Second }, "timeout"},
		{"negative in flight", func(e *webhooks.Endpoint) { e.MaxInFlight = -1 }, "max_in_flight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := validEndpoint()
			tt.mod(&e)
			err := webhooks.ValidateEndpoints([]webhooks.Endpoint{e})
			if !errors.Is(err, webhooks.ErrInvalidEndpoint) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want ErrInvalidEndpoint mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error %q shows the secret", err)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		e := validEndpoint()
		e.Kinds = webhooks.KnownKinds
		e.Name = strings.Repeat("n", webhooks.MaxNameLen)
		if err := webhooks.ValidateEndpoints([]webhooks.Endpoint{e, {Name: "b", URL: "http://127.0.0.1:8080", Secret: testSecret}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("names equal but for case", func(t *testing.T) {
		t.Parallel()
		a, b := validEndpoint(), validEndpoint()
		b.Name = "BILLING"
		err := webhooks.ValidateEndpoints([]webhooks.Endpoint{a, b})
		if !errors.Is(err, webhooks.ErrInvalidEndpoint) || !strings.Contains(err.Error(), "name used twice") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("every problem reported", func(t *testing.T) {
		t.Parallel()
		err := webhooks.ValidateEndpoints([]webhooks.Endpoint{{Name: "x", URL: "gopher://x"}, {Name: "y.z", URL: "https://ok", Secret: testSecret}})
		for _, want := range []string{"scheme", "secret", "endpoint 1", "name"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %q", err, want)
			}
		}
	})
}

func TestParseEndpoints(t *testing.T) {
	t.Parallel()
	eps, err := webhooks.ParseEndpoints([]byte(`{"endpoints": [
		{"name": "billing", "url": "https://billing.example/hooks", "secret": "` + testSecret + `",
		 "kinds": ["message_created", "member_joined"], "max_attempts": 5, "backoff": "250ms", "timeout": "3s", "max_in_flight": 2},
		{"name": "audit", "url": "http://audit:8080/in", "secret": "` + testSecret + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := webhooks.Endpoint{Name: "billing", URL: "https://billing.example/hooks", Secret: testSecret,
		Kinds: []string{"message_created", "member_joined"}, MaxAttempts: 5, Backoff: 250 * time.Millisecond, Timeout: 3 * time.Second, MaxInFlight: 2}
	if len(eps) != 2 || eps[0].String() != want.String() || eps[0].MaxAttempts != 5 || eps[0].Backoff != want.Backoff ||
		eps[0].Timeout != want.Timeout || eps[0].MaxInFlight != 2 || len(eps[0].Kinds) != 2 || eps[1].Name != "audit" || eps[1].Backoff != 0 {
		t.Fatalf("parsed %+v", eps)
	}

	bad := []struct{ name, json, want string }{
		{"not json", `{"endpoints": [`, "decode"},
		{"unknown field", `{"endpoints": [{"name": "a", "url": "https://a", "secret": "` + testSecret + `", "kind": ["read_moved"]}]}`, `unknown field "kind"`},
		{"bad duration", `{"endpoints": [{"name": "a", "url": "https://a", "secret": "` + testSecret + `", "backoff": "soon"}]}`, "backoff"},
		{"invalid endpoint", `{"endpoints": [{"name": "a", "url": "https://a", "secret": "short"}]}`, "secret"},
		{"trailing data", `{"endpoints": []} {}`, "after the JSON object"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := webhooks.ParseEndpoints([]byte(tt.json))
			if !errors.Is(err, webhooks.ErrInvalidEndpoint) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want ErrInvalidEndpoint mentioning %q", err, tt.want)
			}
		})
	}
}

func TestLoadEndpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "webhooks.json")
	if err := os.WriteFile(path, []byte(`{"endpoints": [{"name": "a", "url": "https://a.example", "secret": "`+testSecret+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	eps, err := webhooks.LoadEndpoints(path)
	if err != nil || len(eps) != 1 || eps[0].Name != "a" {
		t.Fatalf("LoadEndpoints: %+v, %v", eps, err)
	}
	if _, err := webhooks.LoadEndpoints(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"endpoints": [{"name": "a", "url": "https://a.example"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := webhooks.LoadEndpoints(path); !errors.Is(err, webhooks.ErrInvalidEndpoint) || !strings.Contains(err.Error(), path) {
		t.Fatalf("invalid file: %v", err)
	}
}

// Bad config is rejected before anything is created on the server.
func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := validEndpoint()
	bad.Secret = "short"
	if _, err := webhooks.Start(ctxT(t), e.js, webhooks.Config{Endpoints: []webhooks.Endpoint{validEndpoint(), bad}}); !errors.Is(err, webhooks.ErrInvalidEndpoint) {
		t.Fatalf("Start: %v, want ErrInvalidEndpoint", err)
	}
	if _, err := e.js.Consumer(ctxT(t), webhooks.StreamEvents, webhooks.ConsumerName("billing")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer after a rejected Start: %v", err)
	}
	if _, err := webhooks.Start(ctxT(t), nil, webhooks.Config{}); !errors.Is(err, webhooks.ErrInvalidConfig) {
		t.Fatalf("Start without JetStream: %v", err)
	}
	if _, err := webhooks.Start(ctxT(t), e.js, webhooks.Config{Stream: "NOPE", Endpoints: []webhooks.Endpoint{validEndpoint()}}); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Start on a missing stream: %v", err)
	}
}

func TestEndpointHidesSecret(t *testing.T) {
	t.Parallel()
	e := validEndpoint()
	e.URL = "https://user:pass@billing.example/hooks?token=tok"
	for _, s := range []string{e.String(), e.LogValue().String()} {
		if strings.Contains(s, testSecret) || strings.Contains(s, "pass") || strings.Contains(s, "tok") || !strings.Contains(s, "billing.example/hooks") {
			t.Fatalf("%q shows a secret", s)
		}
	}
}

package test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-im/natter/edge"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
)

// TestUnfinishedConnectionsClosed: sockets that never finish their HTTP
// request within Edge.RequestReadTimeout are closed by the edge, whatever
// they send: nothing, a request line and one header, a header dripped one
// byte at a time, a REST POST body dripped one byte at a time. An
// authenticated WebSocket opened before them keeps exchanging frames
// throughout and after (its session has its own idle logic).
func TestUnfinishedConnectionsClosed(t *testing.T) {
	t.Parallel()
	const bound = time.Second
	const slack = 3 * time.Second // a loaded 2-core machine
	const perKind = 10
	ec := edgeConfig()
	ec.RequestReadTimeout = bound
	dev := startNode(t, node.Config{Mode: node.ModeDev, Edge: ec})
	alice := mustDial(t, dev, "alice")

	// alice pings every 100 ms until stop, failing on a missing pong.
	stop := make(chan struct{})
	pinged := make(chan error, 1)
	var pongs atomic.Int64
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				pinged <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
			id := fmt.Sprint("p", i)
			if err := alice.conn.WriteMessage(1, []byte(`{"op":"ping","id":"`+id+`"}`)); err != nil {
				pinged <- fmt.Errorf("ping %d: write: %w", i, err)
				return
			}
			f, err := alice.read()
			if err != nil || f.ID != id {
				pinged <- fmt.Errorf("ping %d: reply %+v, %v", i, f, err)
				return
			}
			pongs.Add(1)
		}
	}()

	kinds := []struct {
		name  string
		first string // written at once
		drip  string // then one byte every 300 ms
	}{
		{"silent", "", ""},
		{"partial request line", "GET /v1/ws HTTP/1.1\r\nHost: x\r\n", ""},
		{"kept alive, idle", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"slow header", "GET /v1/ws HTTP/1.1\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"slow body", "POST /v1/conversations/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token(t, "mallory") +
			"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n", `{"kind":"direct","with":"bob"`},
	}
	type result struct {
		kind string
		open time.Duration // how long the socket stayed open
		err  error
	}
	results := make(chan result, len(kinds)*perKind)
	var wg sync.WaitGroup
	for _, k := range kinds {
		for range perKind {
			c, err := net.Dial("tcp", dev.Addr())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			opened := time.Now()
			if k.first != "" {
				if _, err := io.WriteString(c, k.first); err != nil {
					t.Fatal(err)
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				done := make(chan struct{})
				defer close(done)
				if k.drip != "" {
					go func() {
						for i := 0; i < len(k.drip); i++ {
							select {
							case <-done:
								return
							case <-time.After(300 * time.Millisecond):
							}
							if _, err := c.Write([]byte{k.drip[i]}); err != nil {
								return
							}
						}
					}()
				}
				// Read until the edge closes (an error answer, if any, is read
				// past); give up well past the bound.
				_ = c.SetReadDeadline(opened.Add(bound + 10*time.Second))
				got, err := io.ReadAll(c)
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					results <- result{kind: k.name, err: fmt.Errorf("still open after %v", bound+10*time.Second)}
					return
				}
				// The answer, if any, is 408 request_timeout (after the
				// /healthz answer of the kept-alive socket).
				if len(got) > 0 && !strings.Contains(string(got), "408 Request Timeout") &&
					!(k.name == "kept alive, idle" && strings.HasPrefix(string(got), "HTTP/1.1 200")) {
					results <- result{kind: k.name, err: fmt.Errorf("answered %q, want 408", got)}
					return
				}
				if strings.Contains(string(got), "408") && !strings.Contains(string(got), `"code":"request_timeout"`) {
					results <- result{kind: k.name, err: fmt.Errorf("408 without code request_timeout: %q", got)}
					return
				}
				results <- result{kind: k.name, open: time.Since(opened)}
			}()
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.kind, r.err)
		} else if r.open > bound+slack {
			t.Errorf("%s: closed after %v, want within %v + %v", r.kind, r.open, bound, slack)
		}
	}
	// alice went on exchanging frames throughout, and still does after:
	// 20 more pongs (two seconds, twice the bound).
	after := pongs.Load() + 20
	testenv.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		select {
		case err := <-pinged:
			t.Fatalf("alice's pings stopped: %v", err)
		default:
		}
		if n := pongs.Load(); n < after {
			return fmt.Errorf("alice has %d pongs, want %d", n, after)
		}
		return nil
	})
	close(stop)
	if err := <-pinged; err != nil {
		t.Fatalf("alice: %v", err)
	}
}

// TestRequestReadTimeoutDefault: an edge closes an unfinished request after
// 10 s unless configured otherwise.
func TestRequestReadTimeoutDefault(t *testing.T) {
	t.Parallel()
	if got := (edge.Config{}).WithDefaults().RequestReadTimeout; got != 10*time.Second {
		t.Fatalf("default RequestReadTimeout %v, want 10s", got)
	}
}

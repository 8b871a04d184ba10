package test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
)

// TestShutdownClosesSockets stops a dev node with clients connected: each
// client gets a bye (reconnect) and close 4010, Shutdown returns within 10s,
// and no goroutine of natter is left blocked on a socket. Not parallel, so
// that the goroutine check sees only this node.
func TestShutdownClosesSockets(t *testing.T) {
	ec := edgeConfig()
	ec.LameDuck = 300 * time.Millisecond
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Mode: node.ModeDev, DataDir: t.TempDir(), NATSPort: -1, HTTPAddr: "127.0.0.1:0", Edge: ec})
	if err != nil {
		t.Fatal(err)
	}
	var conns []*rawConn
	for _, u := range []string{"alice", "bob", "bob"} {
		conns = append(conns, mustDial(t, n, u))
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := n.Shutdown(sctx)
		if err != nil {
			buf := make([]byte, 1<<20)
			t.Logf("%s", buf[:runtime.Stack(buf, true)])
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("shutdown hangs:\n%s", buf[:runtime.Stack(buf, true)])
	}
	for i, c := range conns {
		sawBye := false
		for {
			f, err := c.read()
			if err != nil {
				break
			}
			if f.T == protocol.FrameBye && f.Bye.Reconnect && f.Bye.Code == protocol.CloseGoingAway {
				sawBye = true
			}
		}
		if !sawBye {
			t.Errorf("client %d: no bye before close", i)
		}
	}
	testenv.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		buf := make([]byte, 1<<20)
		dump := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, "natter-im/natter/") && !strings.Contains(g, "natter-im/natter/test.") &&
				(strings.Contains(g, "net.(*conn).Read") || strings.Contains(g, "netpoll") || strings.Contains(g, "websocket")) {
				return &leak{g}
			}
		}
		return nil
	})
}

type leak struct{ g string }

func (l *leak) Error() string { return "goroutine left on a socket:\n" + l.g }

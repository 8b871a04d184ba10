package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter/edge/protocol"
	"github.com/natter-im/natter/internal/devpki"
	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
)

// devPair issues a certificate for 127.0.0.1 and writes it to cert, key.
func devPair(t testing.TB, ca *devpki.CA, cert, key string) *devpki.Pair {
	t.Helper()
	p, err := ca.Issue([]string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFiles(cert, key); err != nil {
		t.Fatal(err)
	}
	return p
}

// servedSerial makes a new TLS handshake with addr and returns the serial
// number of the certificate the server presented.
func servedSerial(t testing.TB, ca *devpki.CA, addr string) (string, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// TestEdgeTLSReload: an edge serving TLS from files takes a new pair when
// the files change, for new handshakes, while a WebSocket made with the old
// pair stays up and keeps working; a pair that does not load (a key of
// another certificate) is refused and the pair in use kept.
func TestEdgeTLSReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := devpki.NewCA("natter test ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	first := devPair(t, ca, cert, key)
	var logs logBuffer
	dev := startNode(t, node.Config{Mode: node.ModeDev, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		EdgeTLS: node.EdgeTLS{CertFile: cert, KeyFile: key, ReloadInterval: 20 * time.Millisecond}})

	// Plain HTTP is not served on the TLS listener.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + dev.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := https.Get("https://" + dev.Addr() + "/healthz")
	if err != nil {
		t.Fatalf("https /healthz: %v", err)
	}
	resp.Body.Close()

	// Live sessions over TLS with the first pair.
	wss := "wss://" + dev.Addr() + protocol.Path
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	dialTLS := func(user string) (*rawConn, string) {
		t.Helper()
		conn, resp, err := dialer.Dial(wss, bearer(token(t, user)))
		if err != nil {
			t.Fatalf("dial %s: %v (%v)", user, err, resp)
		}
		t.Cleanup(func() { conn.Close() })
		c := &rawConn{t: t, conn: conn}
		if f := c.next(); f.T != protocol.FrameHello || f.Hello.User != user {
			t.Fatalf("want hello for %s, got %+v", user, f)
		}
		tc, ok := conn.NetConn().(*tls.Conn)
		if !ok {
			t.Fatalf("not a TLS connection: %T", conn.NetConn())
		}
		return c, tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	alice, aliceSerial := dialTLS("alice")
	if aliceSerial != first.Cert.SerialNumber.String() {
		t.Fatalf("alice's session has certificate %s, want the first %s", aliceSerial, first.Cert.SerialNumber)
	}
	bob, _ := dialTLS("bob")
	conv := alice.createGroup("tls", "bob")

	// A bad pair (the new certificate with the old key) is not taken.
	bad, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := devpki.WriteFile(cert, bad.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "tls certificate not reloaded") {
			return errors.New("the bad pair is not reported in the log")
		}
		return nil
	})
	if s, err := servedSerial(t, ca, dev.Addr()); err != nil || s != first.Cert.SerialNumber.String() {
		t.Fatalf("with a bad pair on disk a handshake got %s, %v; want the first %s", s, err, first.Cert.SerialNumber)
	}

	// The good new pair: new handshakes get it.
	second := devPair(t, ca, cert, key)
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		s, err := servedSerial(t, ca, dev.Addr())
		if err != nil {
			return err
		}
		if s != second.Cert.SerialNumber.String() {
			return fmt.Errorf("handshake got %s, want the second %s", s, second.Cert.SerialNumber)
		}
		return nil
	})
	if got := dev.TLSCertificate().Leaf.SerialNumber; got.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("node serves %s", got)
	}
	resp, err = https.Get("https://" + dev.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("natter_edge_tls_not_after_seconds %g", float64(second.Cert.NotAfter.Unix())); !strings.Contains(string(metrics), want) {
		t.Fatalf("/metrics lacks %q", want)
	}
	carol, carolSerial := dialTLS("carol")
	if carolSerial != second.Cert.SerialNumber.String() {
		t.Fatalf("a session after the reload has %s, want the second %s", carolSerial, second.Cert.SerialNumber)
	}
	_ = carol

	// The sessions made with the first pair are still up and work both ways.
	ack := alice.send(conv.ID, "after-reload", "still here")
	if got := bob.collect(conv.ID, 1); got[ack.Seq].Body != "still here" {
		t.Fatalf("bob got %+v", got)
	}
	alice.write(`{"op":"ping","id":"p"}`)
	if f := alice.reply("p"); f.T != protocol.FrameRes {
		t.Fatalf("alice's ping after the reload: %+v", f)
	}
}

// TestEdgeTLSBadFiles: an edge given a certificate without its key, or a
// pair that does not match, refuses to start and names the setting.
func TestEdgeTLSBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := devpki.NewCA("natter test ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	devPair(t, ca, cert, key)
	other, err := ca.Issue([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(dir, "other.key")
	if err := devpki.WriteFile(otherKey, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]node.EdgeTLS{
		"cert only":      {CertFile: cert},
		"key only":       {KeyFile: key},
		"missing file":   {CertFile: filepath.Join(dir, "nope.crt"), KeyFile: key},
		"mismatched key": {CertFile: cert, KeyFile: otherKey},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n, err := node.Start(ctx, node.Config{Mode: node.ModeDev, DataDir: t.TempDir(), NATSPort: -1, HTTPAddr: "127.0.0.1:0", EdgeTLS: tc, Edge: edgeConfig()})
			if err == nil {
				_ = n.Shutdown(ctx)
				t.Fatal("started")
			}
			if se, ok := err.(*node.SettingError); !ok || se.Setting != node.SettingTLS {
				t.Fatalf("error %v, want a setting error for %s", err, node.SettingTLS)
			}
		})
	}
}

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEdgeTLSUnfinishedClosed: on a TLS edge, a socket that never starts
// its handshake, one that stops half way through its ClientHello, and one
// that completes the handshake and sends no request are all closed within
// Edge.RequestReadTimeout (plus slack for a loaded machine).
func TestEdgeTLSUnfinishedClosed(t *testing.T) {
	t.Parallel()
	const bound = time.Second
	const slack = 3 * time.Second
	dir := t.TempDir()
	ca, err := devpki.NewCA("natter test ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	devPair(t, ca, cert, key)
	ec := edgeConfig()
	ec.RequestReadTimeout = bound
	dev := startNode(t, node.Config{Mode: node.ModeDev, Edge: ec, EdgeTLS: node.EdgeTLS{CertFile: cert, KeyFile: key}})

	silent, err := net.DialTimeout("tcp", dev.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	partial, err := net.DialTimeout("tcp", dev.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	// The first bytes of a TLS record header of a ClientHello, then
	// nothing.
	if _, err := partial.Write([]byte{0x16, 0x03, 0x01, 0x02}); err != nil {
		t.Fatal(err)
	}
	idle, err := tls.Dial("tcp", dev.Addr(), &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	for name, c := range map[string]net.Conn{"no handshake": silent, "half a ClientHello": partial, "handshake, no request": idle} {
		_ = c.SetReadDeadline(start.Add(bound + slack))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("%s: still open after %v", name, time.Since(start))
				}
				break
			}
		}
	}
}

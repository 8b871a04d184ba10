package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/natter-im/natter"
	"github.com/natter-im/natter/edge/protocol"
)

// conn is one authenticated WebSocket. One reader goroutine (readLoop)
// reads every frame; request frames are queued and written in batches
// (writer.go); replies reach their callers through the pending map.
type conn struct {
	c       *Client
	ws      *websocket.Conn
	idx     int // index of the URL in Config.URLs
	hello   protocol.HelloFrame
	idle    time.Duration // silence after which the connection is dead
	started time.Time

	// The write queue (writer.go), guarded by wmu.
	wmu     sync.Mutex
	wq      [][]byte // frames queued, not yet taken by the writer
	wspare  [][]byte // the writer's last batch, for reuse
	writing bool     // a caller is writing the queue
	wbroken bool     // a write failed or the connection is closing
	// Used by the current writer only.
	wbuf []byte    // framed batch, reused
	wdl  time.Time // the write deadline set last

	pmu     sync.Mutex
	pending map[string]chan *protocol.ServerFrame
	batches map[string]batchSlot // the requests of SendAll rounds
	dead    bool

	// Used by the reader only.
	touched time.Time       // when the read deadline was last moved
	fr      *frameReader    // reads the frames (reader.go); nil: the library does
	h       *handoff        // the socket under fr
	rc      syscall.RawConn // raw reads and writes (reader.go); nil: none
	rbuf    []byte          // frame buffer of the library's reader, reused

	// Set by the reader before done is closed.
	bye       *protocol.ByeFrame
	closeCode int
	readErr   error
	done      chan struct{}
	// synced is closed when the connection's first sync has completed.
	synced chan struct{}
}

// unusedWriteBuffers is the WebSocket library's write buffer pool, which
// nothing takes from.
var unusedWriteBuffers = &sync.Pool{}

// fatal marks an error after which the client must not reconnect.
type fatal struct{ err error }

func (f *fatal) Error() string { return f.err.Error() }
func (f *fatal) Unwrap() error { return f.err }

func isFatal(err error) bool {
	var f *fatal
	return errors.As(err, &f)
}

// unfatal strips the fatal marker for callers.
func unfatal(err error) error {
	var f *fatal
	if errors.As(err, &f) {
		return f.err
	}
	return err
}

// dial connects to the edge at Config.URLs[idx] and reads its hello. The
// reader is started by [conn.start].
func (c *Client) dial(ctx context.Context, idx int) (*conn, error) {
	url := c.cfg.URLs[idx]
	tok := c.cfg.Token
	if c.cfg.TokenFunc != nil {
		t, err := c.cfg.TokenFunc(ctx)
		if err != nil {
			return nil, &fatal{fmt.Errorf("client: token: %w", err)}
		}
		tok = t
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+tok)
	if c.cfg.Device != "" {
		hdr.Set(protocol.HeaderDevice, c.cfg.Device)
	}
	var d websocket.Dialer
	if c.cfg.Dialer != nil {
		d = *c.cfg.Dialer
	}
	d.Subprotocols = []string{protocol.Subprotocol}
	var h *handoff
	fast := false
	if !useLibraryReader.Load() {
		d, fast = handoffDialer(d, strings.HasPrefix(strings.ToLower(url), "wss:"), &h)
	}
	if fast && d.ReadBufferSize == 0 {
		// The library's reader holds only the handshake (reader.go).
		d.ReadBufferSize = 256
	}
	if d.WriteBufferPool == nil {
		// The SDK frames its messages itself (writer.go): the library's
		// write buffer (4 KiB a connection) would never be used.
		d.WriteBufferPool = unusedWriteBuffers
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = c.cfg.RequestTimeout
	}
	ws, resp, err := d.DialContext(ctx, url, hdr)
	if err != nil {
		if resp != nil {
			return nil, handshakeError(url, resp)
		}
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	cn := &conn{
		c: c, ws: ws, idx: idx,
		pending: make(map[string]chan *protocol.ServerFrame),
		batches: make(map[string]batchSlot),
		done:    make(chan struct{}), synced: make(chan struct{}),
	}
	if h != nil {
		h.trickle, h.scratch = false, nil
		if fast && ws.NetConn() == net.Conn(h) {
			cn.fr, cn.h, cn.rc = newFrameReader(h), h, h.rawConn()
		}
	}
	hello, err := cn.readHello(c.cfg.RequestTimeout)
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	ping := time.Duration(hello.PingMS) * time.Millisecond
	if ping <= 0 {
		ping = protocol.DefaultPingInterval
	}
	cn.hello, cn.idle, cn.started = *hello, 2*ping, time.Now()
	if cn.rc != nil {
		h.raw = true // before the reader starts and anyone can close cn
	}
	return cn, nil
}

// useLibraryReader makes every connection read its frames with the
// WebSocket library (for tests of that path).
var useLibraryReader atomic.Bool

// handshakeError maps a refused upgrade to an error. 400 (bad version,
// bad device id), 401 (bad or revoked token) and 403 banned will not get
// better by retrying and are fatal; anything else (503 from a draining edge, ...) is retried.
func handshakeError(url string, resp *http.Response) error {
	var body struct {
		Code protocol.Code `json:"code"`
		Msg  string        `json:"msg"`
	}
	if resp.Body != nil {
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
	}
	if body.Code == "" {
		body.Code = protocol.CodeUnavailable
		if resp.StatusCode == http.StatusUnauthorized {
			body.Code = protocol.CodeUnauthorized
		}
		body.Msg = resp.Status
	}
	err := &Error{Op: "connect", Code: body.Code, Msg: body.Msg + " (" + url + ")"}
	switch {
	case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusUnauthorized, body.Code == protocol.CodeBanned:
		return &fatal{err}
	}
	return err
}

func (cn *conn) readHello(timeout time.Duration) (*protocol.HelloFrame, error) {
	_ = cn.ws.SetReadDeadline(time.Now().Add(timeout))
	_, data, err := cn.readFrame()
	if err != nil {
		return nil, fmt.Errorf("waiting for hello: %w", err)
	}
	f, err := protocol.DecodeServer(data)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	switch {
	case f.Hello != nil:
		return f.Hello, nil
	case f.Bye != nil:
		return nil, fmt.Errorf("edge said bye before hello: %d %s", f.Bye.Code, f.Bye.Reason)
	case f.Err != nil:
		return nil, fmt.Errorf("edge answered instead of hello: %w", f.Err)
	}
	return nil, fmt.Errorf("want hello, got a %q frame", f.T)
}

// start runs the reader.
func (cn *conn) start() {
	cn.ws.SetPingHandler(func(data string) error { return cn.pong([]byte(data)) })
	go cn.readLoop()
}

// pong answers a ping with data.
func (cn *conn) pong(data []byte) error {
	cn.touch(time.Now())
	err := cn.ws.WriteControl(websocket.PongMessage, data, time.Now().Add(cn.c.cfg.RequestTimeout))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		return err
	}
	return nil
}

// touch moves the read deadline after a frame or a ping heard at now. It
// is moved only when idle/4 has passed since it last was, to idle*5/4
// ahead: a connection is declared dead after idle to idle*5/4 of silence
// (2 to 2.5 ping intervals) without a timer update per frame. The reader
// itself moves it (not a timer of its own), so that a late timer cannot
// declare a busy connection dead.
func (cn *conn) touch(now time.Time) {
	if cn.idle == 0 {
		return // before hello: the dial's deadline holds
	}
	if now.Sub(cn.touched) >= cn.idle/4 {
		_ = cn.ws.SetReadDeadline(now.Add(cn.idle + cn.idle/4))
		cn.touched = now
	}
}

// readFrame reads the next data message: the result is valid until the
// next call. Pings are answered, a close is echoed and returned as a
// *websocket.CloseError, and a frame that breaks RFC 6455 closes the
// connection with 1002 and returns errBadFrame.
func (cn *conn) readFrame() (int, []byte, error) {
	if cn.fr == nil {
		return cn.libraryFrame()
	}
	for {
		op, p, err := cn.fr.next()
		if err == nil && op == opClose {
			var ce *websocket.CloseError
			if ce, err = closeFrame(p); err == nil {
				// Echoed as the library does.
				_ = cn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ""), time.Now().Add(time.Second))
				return 0, nil, ce
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			// As the library says it.
			err = &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: io.ErrUnexpectedEOF.Error()}
		}
		if err != nil {
			if errors.Is(err, errBadFrame) {
				reason := err.Error()[len(errBadFrame.Error())+2:]
				_ = cn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, reason[:min(len(reason), 123)]), time.Now().Add(time.Second))
			}
			return 0, nil, err
		}
		switch op {
		case opPing:
			if err := cn.pong(p); err != nil {
				return 0, nil, err
			}
		case opPong:
			cn.touch(time.Now())
		default:
			return op, p, nil
		}
	}
}

// libraryFrame is readFrame with the library reading (reader.go).
func (cn *conn) libraryFrame() (int, []byte, error) {
	mt, r, err := cn.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	b := cn.rbuf[:0]
	if b == nil {
		b = make([]byte, 0, 4096)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
	}
	cn.rbuf = nil
	if cap(b) <= maxKeptReadBuffer {
		cn.rbuf = b
	}
	return mt, b, nil
}

func (cn *conn) readLoop() {
	defer cn.finish()
	var m natter.Message // pushes are decoded into it; onPush copies
	// step reads and handles one message: false when the loop ends (err
	// set) or must wait for the poller (err errWouldBlock).
	var err error
	step := func() bool {
		cn.touch(time.Now())
		var mt int
		var data []byte
		if mt, data, err = cn.readFrame(); err != nil {
			return false
		}
		if mt == websocket.TextMessage {
			cn.handle(data, &m)
		}
		return true
	}
	if rc := cn.rc; rc != nil {
		// The whole loop runs inside one RawConn.Read (reader.go).
		rerr := rc.Read(func(fd uintptr) bool {
			cn.h.fd = int(fd)
			for step() {
			}
			return err != errWouldBlock
		})
		if err == nil || err == errWouldBlock {
			err = rerr // the socket's: closed, or silent past the deadline
		}
	} else {
		for step() {
		}
	}
	cn.readErr = err
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		cn.closeCode = ce.Code
	}
}

// handle takes one text frame; m is a scratch message for pushes.
func (cn *conn) handle(data []byte, m *natter.Message) {
	c := cn.c
	defer c.waitRoom()
	if protocol.DecodePush(data, m) {
		c.onPush(m)
		return
	}
	if id, v, ok := resOf(data); ok && cn.fastAck(id, v) {
		return
	}
	f, err := protocol.DecodeServer(data)
	if err != nil {
		c.log.Warn("undecodable server frame", "err", err, "session", cn.hello.Session)
		return
	}
	switch f.T {
	case protocol.FrameRes:
		cn.dispatch(f.ID, f)
	case protocol.FrameErr:
		if f.Err.ID == "" {
			c.log.Warn("server error without request id", "code", f.Err.Code, "msg", f.Err.Msg, "session", cn.hello.Session)
			return
		}
		cn.dispatch(f.Err.ID, f)
	case protocol.FrameMsg:
		c.onPush(f.Message)
	case protocol.FramePresence:
		c.onPresence(*f.Presence)
	case protocol.FrameTyping:
		c.onTyping(*f.Typing)
	case protocol.FrameRead:
		c.onRead(*f.Read)
	case protocol.FrameReaction:
		c.onReaction(*f.Reaction)
	case protocol.FrameConv:
		c.onConv(*f.Conv)
	case protocol.FrameBye:
		cn.bye = f.Bye
	}
}

// finish fails every pending request and unpublishes the connection.
func (cn *conn) finish() {
	cn.pmu.Lock()
	cn.dead = true
	clear(cn.pending)
	clear(cn.batches)
	cn.pmu.Unlock()
	cn.ws.Close()
	cn.c.connGone(cn)
}

func (cn *conn) register(id string, ch chan *protocol.ServerFrame) bool {
	cn.pmu.Lock()
	defer cn.pmu.Unlock()
	if cn.dead {
		return false
	}
	cn.pending[id] = ch
	return true
}

func (cn *conn) unregister(id string) {
	cn.pmu.Lock()
	delete(cn.pending, id)
	cn.pmu.Unlock()
}

func (cn *conn) dispatch(id string, f *protocol.ServerFrame) {
	cn.pmu.Lock()
	ch, ok := cn.pending[id]
	if ok {
		delete(cn.pending, id)
	} else if s, ok := cn.batches[id]; ok {
		delete(cn.batches, id)
		s.b.put(s.i, reply{f: f})
	}
	cn.pmu.Unlock()
	if ch != nil {
		ch <- f // buffered, one reply per id
	}
}

// close says goodbye with a close frame, waits briefly for the edge to
// answer it, and closes the socket.
func (cn *conn) close(code int, text string) {
	cn.stopWrites()
	_ = cn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-cn.done:
	case <-t.C:
	}
	cn.ws.Close()
	<-cn.done
}

func (cn *conn) isDone() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

// roundTrip sends req on cn with a fresh request id and waits for its reply
// (a res or err frame). written reports whether the frame may have reached
// the edge. Errors: errDisconnected, ErrTimeout, ctx's, the client's stop
// error, or an *Error when req is invalid.
func (c *Client) roundTrip(ctx context.Context, cn *conn, req *protocol.Request) (f *protocol.ServerFrame, written bool, err error) {
	req.ID = strconv.FormatUint(c.ids.Add(1), 36)
	frame, err := encodeRequest(req)
	if err != nil {
		return nil, false, protoErr(req.Op, err)
	}
	ch := make(chan *protocol.ServerFrame, 1)
	if !cn.register(req.ID, ch) {
		return nil, false, errDisconnected
	}
	defer cn.unregister(req.ID)
	if err := cn.queueAll(frame); err != nil {
		return nil, true, err
	}
	t := time.NewTimer(c.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case f = <-ch:
		return f, true, nil
	case <-cn.done:
		select {
		case f = <-ch:
			return f, true, nil
		default:
		}
		return nil, true, errDisconnected
	case <-t.C:
		return nil, true, ErrTimeout
	case <-ctx.Done():
		return nil, true, ctx.Err()
	case <-c.quit:
		return nil, true, c.stopErr()
	}
}

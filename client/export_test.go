package client

import (
	"errors"
	"syscall"
	"unsafe"
)

// QueuedFrames returns how many request frames wait in the live
// connection's write queue (0 without a connection).
func QueuedFrames(c *Client) int {
	c.cmu.Lock()
	cn := c.cn
	c.cmu.Unlock()
	if cn == nil {
		return 0
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	return len(cn.wq)
}

// UseLibraryReader makes the connections dialled until restore read their
// frames with the WebSocket library.
func UseLibraryReader() (restore func()) {
	useLibraryReader.Store(true)
	return func() { useLibraryReader.Store(false) }
}

// OnRead calls f (on the reader's goroutine) with the bytes of each read
// call of c's live connection from now on; false when the connection
// reads through the library.
func OnRead(c *Client, f func(n int)) bool {
	c.cmu.Lock()
	cn := c.cn
	c.cmu.Unlock()
	if cn == nil || cn.h == nil {
		return false
	}
	cn.h.onRead = f // the test sets it while the reader waits
	return true
}

// RawReads reports whether c's live connection reads with raw read(2)
// calls (reader.go).
func RawReads(c *Client) bool {
	c.cmu.Lock()
	cn := c.cn
	c.cmu.Unlock()
	return cn != nil && cn.rc != nil
}

// InQueue is the number of bytes waiting in the receive queue of c's live
// connection's socket.
func InQueue(c *Client) (int, error) {
	c.cmu.Lock()
	cn := c.cn
	c.cmu.Unlock()
	if cn == nil || cn.h == nil {
		return 0, errors.New("no connection read by the client")
	}
	sc, err := cn.h.Conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int32
	var errno syscall.Errno
	if err := sc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

//go:build !(linux || darwin)

package client

import "syscall"

// rawSyscalls: on this platform the SDK reads and writes its sockets
// through net.Conn (reader.go's raw path is off: rawConn returns nil).
const rawSyscalls = false

func sysRead(uintptr, []byte) (int, syscall.Errno)  { return 0, syscall.EINVAL }
func sysWrite(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.EINVAL }

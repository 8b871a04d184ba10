//go:build linux || darwin

package client

import (
	"syscall"
	"unsafe"
)

// rawSyscalls: the SDK reads and writes plain TCP sockets with raw
// read(2)/write(2) calls here (reader.go).
const rawSyscalls = true

// sysRead is read(2) on fd as a raw system call: the socket does not block.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), e
}

// sysWrite is write(2) on fd as a raw system call: the socket does not block.
func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(r), e
}

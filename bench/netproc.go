package bench

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = 0x0A

// tcpSocket is one line of /proc/net/tcp or /proc/net/tcp6.
type tcpSocket struct {
	local, remote netip.AddrPort
	state         int
	inode         string
}

// tcpSockets reads the TCP sockets of this network namespace.
func tcpSockets() ([]tcpSocket, error) {
	var out []tcpSocket
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(path)
		if err != nil {
			if path == "/proc/net/tcp6" {
				continue // IPv6 off
			}
			return nil, fmt.Errorf("bench: sockets: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 {
				continue
			}
			l, err1 := procAddr(fs[1])
			r, err2 := procAddr(fs[2])
			st, err3 := strconv.ParseInt(fs[3], 16, 32)
			if err1 != nil || err2 != nil || err3 != nil {
				continue
			}
			out = append(out, tcpSocket{local: l, remote: r, state: int(st), inode: fs[9]})
		}
		f.Close()
	}
	return out, nil
}

// procAddr parses "0100007F:1F90": the address as 32-bit words in host
// (little-endian) order, the port in hex.
func procAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", s)
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}

// localPort is the port of a URL (ws://, nats://, mongodb://; the first
// host of a list) when its host is an address of this machine, else 0.
func localPort(raw string) uint16 {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return 0
	}
	hostport, _, _ := strings.Cut(u.Host, ",")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || !isLocalHost(host) {
		return 0
	}
	return uint16(p)
}

func isLocalHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}

// listenerPIDs finds the processes that listen on ports of this machine:
// the pid of each port's listening socket (0 when not found, e.g. a process
// of another user). It reads /proc/net/tcp{,6} and /proc/<pid>/fd.
func listenerPIDs(ports []uint16) (map[uint16]int, error) {
	socks, err := tcpSockets()
	if err != nil {
		return nil, err
	}
	byInode := map[string]uint16{}
	for _, s := range socks {
		if s.state == tcpListen && slices.Contains(ports, s.local.Port()) {
			byInode["socket:["+s.inode+"]"] = s.local.Port()
		}
	}
	out := map[uint16]int{}
	if len(byInode) == 0 {
		return out, nil
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue // gone, or another user's
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil {
				continue
			}
			if port, ok := byInode[link]; ok {
				out[port] = pid
			}
		}
		if len(out) == len(byInode) {
			break
		}
	}
	return out, nil
}

package cluster

import (
	"fmt"
	"net"
	"sync"
)

// handedOut are the ports this process has given to a cluster process: a
// port closed after the probe may be handed out by the kernel again, and two
// clusters in one test binary must not get the same one.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// freePorts returns n distinct free loopback ports. All probe listeners stay
// open until every port is picked, so the kernel gives n different ones.
func freePorts(n int) ([]int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10*n+100 {
			return nil, fmt.Errorf("cluster: no free loopback ports after %d tries", tries)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
		if err != nil {
			return nil, fmt.Errorf("cluster: free port: %w", err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		if handedOut[p] {
			continue
		}
		handedOut[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

func hostPort(port int) string { return net.JoinHostPort(Host, fmt.Sprint(port)) }

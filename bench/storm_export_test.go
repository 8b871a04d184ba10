package bench

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// CheckEdgeRebind is the body of bench_test.TestEdgeRebind (that package
// builds the natter binary): an edge process killed while another socket
// holds its address fails with errEdgeBind, and the restart polls until
// the address is free again.
func CheckEdgeRebind(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{DataDir: t.TempDir()}.withDefaults()
	tg, err := startTarget(ctx, &cfg, targetOpts{edges: 1, edgeBin: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.close()
	old := tg.eprocs[0]
	addr := old.addr
	old.kill()
	if old.err == nil || old.err.Error() != "signal: killed" {
		t.Fatalf("old edge ended with %v, want signal: killed", old.err)
	}
	tg.eprocs[0] = nil
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("take the killed edge's address: %v", err)
	}
	// A try starts a process: on a loaded machine one takes longer than
	// a few hundred ms, so the bind wait is 3 s and the address is freed
	// after two tries' time at the earliest.
	start := time.Now()
	p, tries, err := tg.restartEdgeProc(ctx, bin, addr, 3*time.Second, nil)
	if !errors.Is(err, errEdgeBind) || tries < 2 || p != nil {
		ln.Close()
		t.Fatalf("restart on a busy address: %v after %d tries, want %v after several", err, tries, errEdgeBind)
	}
	perTry := time.Since(start) / time.Duration(tries)
	free := time.AfterFunc(max(500*time.Millisecond, 2*perTry), func() { ln.Close() })
	defer free.Stop()
	p, tries, err = tg.restartEdgeProc(ctx, bin, addr, time.Minute, nil)
	if err != nil {
		ln.Close()
		t.Fatalf("restart once the address is free: %v after %d tries", err, tries)
	}
	tg.eprocs[0] = p
	if p.addr != addr || tries < 2 {
		t.Errorf("new edge on %s after %d tries, want %s after several", p.addr, tries, addr)
	}
}

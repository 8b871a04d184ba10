package test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/natter-im/natter/internal/node"
	"github.com/natter-im/natter/internal/testenv"
	"github.com/natter-im/natter/jetstream/subjects"
	"github.com/natter-im/natter/workers/discovery"
	"github.com/natter-im/natter/workers/runner"
)

// Every process of a dev cluster (the dev node, an extra worker, an extra
// edge) is listed with its roles, version and stats; stopping a process
// removes its instances.
func TestServicesListsEveryProcess(t *testing.T) {
	t.Parallel()
	m := newMesh(t, meshOpts{edges: 1, workers: 1})
	svc := newSvcEnv(t, m.dev)
	roles := append([]string{}, node.AllRoles...)

	// name -> how many instances, as discovery.List reports them.
	count := func() (map[string]int, []discovery.Instance) {
		list, err := discovery.List(context.Background(), svc.nc, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, in := range list {
			got[in.Name]++
		}
		return got, list
	}
	expect := func(edges, workers int) map[string]int {
		want := map[string]int{subjects.ServiceEdge: edges}
		for _, r := range roles {
			want[subjects.ServiceName(r)] = workers
		}
		return want
	}
	var list []discovery.Instance
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		var got map[string]int
		got, list = count()
		if want := expect(2, 2); !maps.Equal(got, want) {
			return fmt.Errorf("instances %v, want %v", got, want)
		}
		return nil
	})
	for _, in := range list {
		if in.Version != "0.0.0-dev" || in.ID == "" || in.Started.IsZero() || in.Metadata["pid"] == "" {
			t.Errorf("instance %+v", in)
		}
		if in.Name == subjects.ServiceName(node.RolePersist) {
			if len(in.Endpoints) != 1 || in.Endpoints[0].Subject != subjects.Status(node.RolePersist) {
				t.Fatalf("persist endpoints %+v", in.Endpoints)
			}
			var st runner.Stats
			if err := json.Unmarshal(in.Endpoints[0].Data, &st); err != nil || st.Role != node.RolePersist {
				t.Fatalf("persist stats %s: %v", in.Endpoints[0].Data, err)
			}
		}
		if in.Name == subjects.ServiceEdge {
			var st map[string]float64
			if err := json.Unmarshal(in.Endpoints[0].Data, &st); err != nil {
				t.Fatalf("edge stats %s: %v", in.Endpoints[0].Data, err)
			}
			if _, ok := st["connections"]; !ok {
				t.Fatalf("edge stats %v without connections", st)
			}
		}
		if in.Name == subjects.ServiceAPI && !slices.ContainsFunc(in.Endpoints, func(e discovery.Endpoint) bool { return e.Subject == "natter.api.send" }) {
			t.Fatalf("api endpoints %+v", in.Endpoints)
		}
	}
	// The status endpoint answers with live stats.
	msg, err := svc.nc.Request(subjects.Status(node.RoleIngest), nil, 5*time.Second)
	if err != nil || !json.Valid(msg.Data) {
		t.Fatalf("status of ingest: %v %s", err, msg.Data)
	}

	stop := func(n *node.Node) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stop(m.edges[1])
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got, _ := count(); !maps.Equal(got, expect(1, 2)) {
			return fmt.Errorf("after stopping the edge: %v", got)
		}
		return nil
	})
	stop(m.workers[0])
	testenv.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got, _ := count(); !maps.Equal(got, expect(1, 1)) {
			return fmt.Errorf("after stopping the worker: %v", got)
		}
		return nil
	})
}

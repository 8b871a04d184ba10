package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// probe checks once whether p is ready.
func probe(ctx context.Context, p *Proc) error {
	switch p.Kind {
	case KindNATS:
		return getOK(ctx, "http://"+p.HTTP+"/healthz?js-enabled-only=true")
	case KindStore:
		return pingMongo(ctx, "mongodb://"+p.Addr+"/")
	default:
		return getOK(ctx, "http://"+p.Addr+"/readyz")
	}
}

// getOK is nil when url answers 200.
func getOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return nil
}

func pingMongo(ctx context.Context, uri string) error {
	mc, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(2*time.Second).SetConnectTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer mc.Disconnect(context.Background())
	return mc.Ping(ctx, nil)
}

// MetaInfo is the state of the JetStream meta group as its leader sees it.
type MetaInfo struct {
	// Leader is the server name of the meta leader; empty when there is
	// none.
	Leader string
	// Peers is the size of the meta group the leader knows (itself
	// included).
	Peers int
	// Current is how many of them are current (the leader included).
	Current int
}

type jsz struct {
	Meta *struct {
		Leader   string `json:"leader"`
		Size     int    `json:"cluster_size"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

// MetaCluster asks the running NATS nodes' /jsz for the meta leader and
// returns the leader's view of the meta group.
func (c *Cluster) MetaCluster(ctx context.Context) (MetaInfo, error) {
	var leader string
	var lastErr error
	nodes := map[string]*Proc{}
	for _, p := range c.NATS {
		nodes[p.Name] = p
	}
	for _, p := range c.NATS {
		if !p.Running() {
			continue
		}
		var j jsz
		if err := getJSON(ctx, "http://"+p.HTTP+"/jsz", &j); err != nil {
			lastErr = err
			continue
		}
		if j.Meta != nil && j.Meta.Leader != "" {
			leader = j.Meta.Leader
			break
		}
	}
	if leader == "" {
		if lastErr == nil {
			lastErr = fmt.Errorf("no meta leader")
		}
		return MetaInfo{}, fmt.Errorf("cluster: meta group: %w", lastErr)
	}
	lp := nodes[leader]
	if lp == nil {
		return MetaInfo{}, fmt.Errorf("cluster: meta leader %q is not a node of this cluster", leader)
	}
	var j jsz
	if err := getJSON(ctx, "http://"+lp.HTTP+"/jsz", &j); err != nil {
		return MetaInfo{}, fmt.Errorf("cluster: meta leader %s: %w", leader, err)
	}
	if j.Meta == nil || j.Meta.Leader != leader {
		return MetaInfo{Leader: ""}, fmt.Errorf("cluster: meta leader moved from %s", leader)
	}
	mi := MetaInfo{Leader: leader, Peers: 1 + len(j.Meta.Replicas), Current: 1}
	for _, r := range j.Meta.Replicas {
		if r.Current && !r.Offline {
			mi.Current++
		}
	}
	return mi, nil
}

// WaitNATS waits until the JetStream meta group has a leader, all
// NATSNodes peers are current (a node started again has rejoined) and every
// node answers its full /healthz (its streams and consumers are caught up),
// within ctx bounded by Options.ReadyTimeout. A single node has no meta
// group; only its /healthz is waited for.
func (c *Cluster) WaitNATS(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.Opts.ReadyTimeout)
	defer cancel()
	for {
		err := c.natsFormed(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: NATS cluster not formed: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// natsFormed checks once what WaitNATS waits for.
func (c *Cluster) natsFormed(ctx context.Context) error {
	if want := len(c.NATS); want > 1 {
		mi, err := c.MetaCluster(ctx)
		if err != nil {
			return err
		}
		if mi.Peers != want || mi.Current != want {
			return fmt.Errorf("meta leader %s: %d of %d peers current (%d known)", mi.Leader, mi.Current, want, mi.Peers)
		}
	}
	return c.natsHealthy(ctx)
}

// natsHealthy is nil when every NATS node answers /healthz with 200: its
// JetStream is current with the meta group and with each stream and
// consumer it holds a replica of.
func (c *Cluster) natsHealthy(ctx context.Context) error {
	for _, p := range c.NATS {
		if err := getOK(ctx, "http://"+p.HTTP+"/healthz"); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

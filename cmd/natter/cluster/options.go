package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/natter-im/natter/internal/node"
)

// Host is the interface every process of a cluster listens on.
const Host = "127.0.0.1"

// Options configure [Start]. Binary and Dir are required; every other zero
// value takes the default its field names.
type Options struct {
	// Binary is the path of the natter binary every process runs. Required.
	Binary string
	// Dir is the root of the data directories (Dir/nats-1, Dir/store), the
	// logs (Dir/logs/<name>.log) and the token secret (Dir/jwt.secret).
	// Created if missing. Required.
	Dir string
	// NATSNodes is the number of nats-server nodes. Zero means 3.
	NATSNodes int
	// Edges is the number of edge processes. Zero means 2.
	Edges int
	// WorkerReplicas is the number of processes per role (Combined false)
	// or of all-roles processes (Combined true). Zero means 2.
	WorkerReplicas int
	// Roles are the worker roles. Nil means node.AllRoles.
	Roles []string
	// Combined runs WorkerReplicas processes that each run every role in
	// Roles (fewer processes) instead of one process per role and replica.
	Combined bool
	// StreamReplicas is the replica count of every stream, consumer and KV
	// bucket, passed as --replicas to streams apply, edges and workers. Zero
	// means min(3, NATSNodes).
	StreamReplicas int
	// SyncInterval is the JetStream fsync interval of the NATS nodes. Zero
	// means the nats-server default (2m).
	SyncInterval time.Duration
	// EdgeArgs, WorkerArgs, NATSArgs and StreamsArgs are extra flags
	// appended to the command lines of the edges, workers, NATS nodes and
	// "natter streams apply". Nil means none.
	EdgeArgs, WorkerArgs, NATSArgs, StreamsArgs []string
	// Env is extra environment (KEY=value) for every natter process, after
	// the caller's own. Nil means none.
	Env []string
	// JWTSecret is the HS256 secret (key id "default", at least 32 bytes)
	// the edges verify tokens with; it is written to Dir/jwt.secret (mode
	// 0600) and passed as --jwt-secret-file. Empty means a random one.
	JWTSecret string
	// Secure runs NATS the way a deployment should: the nodes require TLS
	// and one nkey user per tier (edge, worker, service, admin) with the
	// permissions of jetstream/natsauth, and every process connects with
	// its tier's seed and the CA. Start makes a dev CA, the nodes'
	// certificate, the seeds and the nodes' configuration under
	// Dir/auth, keeping files that exist. False means plain NATS without
	// credentials.
	Secure bool
	// Detach starts processes in their own session, so that they outlive
	// the caller (natter cluster up). Otherwise each process is killed
	// when the caller dies (Linux) and should be stopped with
	// [Cluster.Stop].
	Detach bool
	// ReadyTimeout bounds the wait for one process (or the NATS cluster)
	// to become ready when the context has no earlier deadline. Zero means
	// 2m.
	ReadyTimeout time.Duration
	// StatePath, when set, is where Start writes the cluster's [State]
	// (see [Cluster.WriteState]) as soon as processes are launched, and
	// again after each step, so that a caller that dies while starting
	// leaves a record of what runs. Empty means none.
	StatePath string
	// Log receives one line per step, one write at a time. Nil means
	// discard.
	Log io.Writer
}

const (
	defaultNATSNodes      = 3
	defaultEdges          = 2
	defaultWorkerReplicas = 2
	defaultReadyTimeout   = 2 * time.Minute
	minSecretLen          = 32
)

// ErrOptions reports unusable options.
var ErrOptions = errors.New("cluster: bad options")

func (o Options) withDefaults() (Options, error) {
	if o.Binary == "" {
		return o, fmt.Errorf("%w: Binary is required", ErrOptions)
	}
	if o.Dir == "" {
		return o, fmt.Errorf("%w: Dir is required", ErrOptions)
	}
	if o.NATSNodes < 0 || o.Edges < 0 || o.WorkerReplicas < 0 || o.StreamReplicas < 0 {
		return o, fmt.Errorf("%w: negative count", ErrOptions)
	}
	if o.NATSNodes == 0 {
		o.NATSNodes = defaultNATSNodes
	}
	if o.Edges == 0 {
		o.Edges = defaultEdges
	}
	if o.WorkerReplicas == 0 {
		o.WorkerReplicas = defaultWorkerReplicas
	}
	if len(o.Roles) == 0 {
		o.Roles = append([]string(nil), node.AllRoles...)
	}
	if o.StreamReplicas == 0 {
		o.StreamReplicas = min(3, o.NATSNodes)
	}
	if o.StreamReplicas > o.NATSNodes {
		return o, fmt.Errorf("%w: StreamReplicas %d > NATSNodes %d", ErrOptions, o.StreamReplicas, o.NATSNodes)
	}
	if o.JWTSecret == "" {
		buf := make([]byte, 32)
		_, _ = rand.Read(buf)
		o.JWTSecret = hex.EncodeToString(buf)
	}
	if len(o.JWTSecret) < minSecretLen {
		return o, fmt.Errorf("%w: JWTSecret shorter than %d bytes", ErrOptions, minSecretLen)
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = defaultReadyTimeout
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.Log = &syncWriter{w: o.Log}
	return o, nil
}

// syncWriter serialises the progress lines of concurrent steps.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

package presencekv

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natter-im/natter/jetstream/kvbatch"
	"github.com/natter-im/natter/jetstream/subjects"
)

// MaxUsersPerGet is how many users one batched read covers (the server
// answers at most 1,024 subjects: a user online on up to eight edges).
const MaxUsersPerGet = 128

// Lease is the value of an online lease: the edge and the ids of the
// user's devices connected to it, sorted.
type Lease struct {
	Edge    string   `json:"edge"`
	Devices []string `json:"devices,omitempty"`
}

// Encode returns the lease's value.
func (l Lease) Encode() []byte {
	b, _ := json.Marshal(l)
	return b
}

// Online is what the leases say of one user.
type Online struct {
	// Devices holds the devices connected to any edge.
	Devices map[string]bool
	// Unknown is set when a lease does not list its devices (an older
	// edge): the user is online on devices not known.
	Unknown bool
}

// Has reports whether device is online (true for every device when the
// devices are unknown).
func (o Online) Has(device string) bool { return o.Unknown || o.Devices[device] }

// Any reports whether the user is online on any device.
func (o Online) Any() bool { return o.Unknown || len(o.Devices) > 0 }

// Read reads the online leases of users: one batched direct get per
// MaxUsersPerGet users on directGet (the PRESENCE stream's
// $JS.API.DIRECT.GET.KV_PRESENCE). Users without a live lease are absent.
func Read(ctx context.Context, nc *nats.Conn, directGet string, users []string) (map[string]Online, error) {
	out := make(map[string]Online)
	prefix := subjects.KVSubject(subjects.BucketPresence, "")
	for i := 0; i < len(users); i += MaxUsersPerGet {
		part := users[i:min(i+MaxUsersPerGet, len(users))]
		filters := make([]string, 0, len(part))
		for _, u := range part {
			if subjects.ValidID(u) == nil {
				filters = append(filters, prefix+subjects.PresenceOnKeys(u))
			}
		}
		if len(filters) == 0 {
			continue
		}
		err := kvbatch.MultiLast(ctx, nc, directGet, filters, func(m *nats.Msg) {
			if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
				return // deleted or expired
			}
			key := strings.TrimPrefix(m.Header.Get(jetstream.SubjectHeader), prefix)
			rest, ok := strings.CutPrefix(key, "on.")
			user, _, ok2 := strings.Cut(rest, ".")
			if !ok || !ok2 {
				return
			}
			o := out[user]
			var l Lease
			if json.Unmarshal(m.Data, &l) != nil || l.Devices == nil {
				o.Unknown = true
			} else {
				if o.Devices == nil {
					o.Devices = make(map[string]bool, len(l.Devices))
				}
				for _, d := range l.Devices {
					o.Devices[d] = true
				}
			}
			out[user] = o
		})
		if err != nil {
			return nil, fmt.Errorf("presencekv: read: %w", err)
		}
	}
	return out, nil
}

// SameDevices reports whether two sorted device lists are equal.
func SameDevices(a, b []string) bool { return slices.Equal(a, b) }

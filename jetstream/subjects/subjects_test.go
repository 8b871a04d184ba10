package subjects_test

import (
	"testing"

	"github.com/natter-im/natter/jetstream/subjects"
)

// FuzzRoundTrip: the parsers give back the id a builder was given, for
// every valid id.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"g_7f3a9c", "d_1cb15457d1ddab60e205c0fe3ca2f65d", "a", "A-b_9", "x.y", "", "*", ">"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if subjects.ValidID(id) != nil {
			return
		}
		if got := subjects.ConvFromMsg(subjects.Msg(id)); got != id {
			t.Fatalf("ConvFromMsg(Msg(%q)) = %q", id, got)
		}
		if got := subjects.ConvFromIngest(subjects.Ingest(id)); got != id {
			t.Fatalf("ConvFromIngest(Ingest(%q)) = %q", id, got)
		}
		if got := subjects.UserFromDeliver(subjects.Deliver(id)); got != id {
			t.Fatalf("UserFromDeliver(Deliver(%q)) = %q", id, got)
		}
		if subjects.Deliver(id) == subjects.DeliverGroups {
			t.Fatalf("user %q has the broadcast subject", id)
		}
		if got := subjects.UserFromPresence(subjects.Presence(id)); got != id {
			t.Fatalf("UserFromPresence(Presence(%q)) = %q", id, got)
		}
		if subjects.Presence(id) == subjects.PresenceHeartbeat {
			t.Fatalf("user %q has the heartbeat subject", id)
		}
		if got := subjects.KindFromEvent(subjects.Event(id, "c1")); got != id {
			t.Fatalf("KindFromEvent(Event(%q, c1)) = %q", id, got)
		}
	})
}

func TestParsersRefuseOtherSubjects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "im.msg.", "im.msg", "im.ingest.", "im.evt.", "im.evt.kind", "im.evt..c", "natter.api.send",
		"im.dlv.", "im.dlv", subjects.DeliverGroups, "im.dlv.a.b", "im.presence.", subjects.PresenceHeartbeat} {
		if subjects.ConvFromMsg(s) != "" || subjects.ConvFromIngest(s) != "" || subjects.KindFromEvent(s) != "" || subjects.UserFromDeliver(s) != "" || subjects.UserFromPresence(s) != "" {
			t.Errorf("%q parsed as a natter subject", s)
		}
	}
}

func TestBackupGapSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ filter, want string }{
		{subjects.MsgsAll, "im.msg." + subjects.BackupGapToken},
		{subjects.IngestAll, "im.ingest." + subjects.BackupGapToken},
		{"$KV.CURSORS.>", "$KV.CURSORS." + subjects.BackupGapToken},
		{"$O.ATTACHBLOBS.C.>", "$O.ATTACHBLOBS.C." + subjects.BackupGapToken},
		{"a.b", "a.b." + subjects.BackupGapToken},
	} {
		if got := subjects.BackupGapSubject(tc.filter); got != tc.want {
			t.Errorf("subjects.BackupGapSubject(%q) = %q, want %q", tc.filter, got, tc.want)
		}
	}
	// No id can name it.
	if subjects.ValidID(subjects.BackupGapToken) == nil {
		t.Errorf("%q is a valid id", subjects.BackupGapToken)
	}
}

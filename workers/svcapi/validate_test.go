package svcapi_test

import (
	"github.com/natter-im/natter/jetstream/convapi"
	"strings"
	"testing"

	"github.com/natter-im/natter/workers/svcapi"
)

func TestCheckSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                        string
		from, conv, cmid, body, typ string
		code, field                 string
	}{
		{"ok", "svc_a", "g_1", "c1", "hi", "", "", ""},
		{"ok with type", "svc_a", "g_1", "c1", "hi", "notice", "", ""},
		{"no identity", "", "g_1", "c1", "hi", "", convapi.CodeBadFrame, "from"},
		{"bad identity", "svc a", "g_1", "c1", "hi", "", convapi.CodeBadFrame, "from"},
		{"no conv", "svc_a", "", "c1", "hi", "", convapi.CodeBadFrame, "conv"},
		{"bad cmid", "svc_a", "g_1", "c.1", "hi", "", convapi.CodeBadFrame, "cmid"},
		{"no body", "svc_a", "g_1", "c1", "", "", convapi.CodeBadFrame, "body"},
		{"body too big", "svc_a", "g_1", "c1", strings.Repeat("x", 11), "", convapi.CodeTooBig, "body"},
		{"type too long", "svc_a", "g_1", "c1", "hi", strings.Repeat("t", svcapi.MaxType+1), convapi.CodeBadFrame, "type"},
		{"type edit", "svc_a", "g_1", "c1", "hi", "edit", convapi.CodeBadFrame, "type"},
		{"type Delete", "svc_a", "g_1", "c1", "hi", "Delete", convapi.CodeBadFrame, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := svcapi.CheckSend("from", tt.from, tt.conv, tt.cmid, tt.body, tt.typ, 10)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("%v", err)
				}
				return
			}
			if err == nil || err.Code != tt.code || !strings.HasPrefix(err.Msg, tt.field+":") {
				t.Fatalf("got %v, want %s naming %s", err, tt.code, tt.field)
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/natter-im/natter/internal/capacity"
)

// TestPlanFlagsCoverLoad: every field of capacity.Load that the model can
// refuse has its flag, so an error names the flag.
func TestPlanFlagsCoverLoad(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[capacity.Load]()
	for i := range typ.NumField() {
		if _, ok := planFlags[typ.Field(i).Name]; !ok {
			t.Errorf("capacity.Load.%s has no flag in planFlags", typ.Field(i).Name)
		}
	}
}

// TestPlanCommand runs natter plan: a plan with every role, the cluster
// prediction, and bad input answered with exit 2 naming the flag.
func TestPlanCommand(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"plan", "--users", "1000000", "--online", "0.2", "--msgs-per-user-day", "50", "--group-size", "5"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"1,736 msg/s peak", "edge ", "persist ", "fanout ", "NATS:", "MongoDB:", "figures used", "msg.persist_us"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, out.String())
		}
	}

	// natter's default roles: no events role, push not consuming.
	if strings.Contains(out.String(), "\nevents ") || !strings.Contains(out.String(), "minimum (no provider: not consuming)") {
		t.Errorf("default plan lists the events role or budgets push's messages:\n%s", out.String())
	}
	out.Reset()
	code = run(context.Background(), []string{"plan", "--users", "1000000", "--online", "0.2", "--msgs-per-user-day", "50", "--group-size", "5", "--events-role", "--push-providers"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("--events-role --push-providers: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"\nevents ", "and the events role, push with a provider"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan --events-role --push-providers lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "not consuming") {
		t.Errorf("plan --push-providers says push does not consume:\n%s", out.String())
	}

	cluster := func(args ...string) float64 {
		t.Helper()
		out.Reset()
		if code := run(context.Background(), append([]string{"plan", "--cluster", "--host-cores", "2", "--json"}, args...), &out, &errb); code != exitOK {
			t.Fatalf("--cluster %v: exit %d: %s", args, code, errb.String())
		}
		var c struct{ Prediction struct{ MsgPerSec float64 } }
		if err := json.Unmarshal(out.Bytes(), &c); err != nil || c.Prediction.MsgPerSec <= 0 {
			t.Errorf("--cluster --json %v: %v %s", args, err, out.String())
		}
		return c.Prediction.MsgPerSec
	}
	if def, opt := cluster(), cluster("--events-role", "--push-providers"); !(opt < def) {
		t.Errorf("--cluster predicts %.0f msg/s with the events role and push providers, %.0f without: want fewer with", opt, def)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--online", "0.2", "--msgs-per-user-day", "5"}, "--users (NATTER_PLAN_USERS): required"},
		{[]string{"--users", "10", "--msgs-per-user-day", "5"}, "--online (NATTER_PLAN_ONLINE): required"},
		{[]string{"--users", "10", "--online", "0.2"}, "--msgs-per-user-day (NATTER_PLAN_MSGS_PER_USER_DAY): required"},
		{[]string{"--users", "10", "--online", "1.5", "--msgs-per-user-day", "5"}, "--online: 1.5 is out of range"},
		{[]string{"--users", "0.5", "--online", "0.5", "--msgs-per-user-day", "5"}, "--users (NATTER_PLAN_USERS): 0.5 is out of range"},
		{[]string{"--users", "10", "--online", "0.5", "--msgs-per-user-day", "5", "--group-size", "1"}, "--group-size: 1 is out of range"},
		{[]string{"--users", "ten", "--online", "0.5", "--msgs-per-user-day", "5"}, "--users"},
		{[]string{"--users", "10", "--online", "0.5", "--msgs-per-user-day", "5", "--edge-mem-gib", "0.01"}, "--edge-mem-gib"},
	} {
		errb.Reset()
		code := run(context.Background(), append([]string{"plan"}, tc.args...), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("plan %v: exit %d, %q; want exit 2 naming %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

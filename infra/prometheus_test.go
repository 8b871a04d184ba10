package infra_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite generated files (the PrometheusRule of k8s/monitoring.yaml) from their sources")

const (
	rulesFile     = "prometheus/natter.rules.yaml"
	rulesTestFile = "prometheus/natter.rules.test.yaml"
	monitoringK8s = "k8s/monitoring.yaml"
	runbookPrefix = "https://github.com/natter-im/natter/blob/main/docs/operations.md#"
)

type ruleFile struct {
	Groups []struct {
		Name  string      `yaml:"name"`
		Rules []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(tb testing.TB) []alertRule {
	tb.Helper()
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(readFile(tb, rulesFile)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		tb.Fatalf("%s: %v", rulesFile, err)
	}
	var all []alertRule
	for _, g := range rf.Groups {
		all = append(all, g.Rules...)
	}
	return all
}

// The alerts issue 22 asks for, by what their expression must read.
var wantAlerts = []struct{ alert, in string }{
	{"NatterConsumerLag", `max by (role, consumer) (natter_consumer_pending`},
	{"NatterArchiveLag", `natter_consumer_ack_floor{consumer="PERSIST"}`},
	{"NatterArchiveStalled", `changes(natter_consumer_ack_floor{consumer="PERSIST"}`},
	{"NatterDeadLetters", `natter_worker_messages_total{outcome=~"poison|exhausted"}`},
	{"NatterDeadLetterGrowth", `natter_stream_messages{stream="DLQ"}`},
	{"NatterSendErrors", `natter_edge_sends_total{result="failed"}`},
	{"NatterSendLatency", `histogram_quantile(0.99`},
	{"NatterEdgeNearConnectionLimit", `process_open_fds / process_max_fds`},
}

// TestAlertRules checks prometheus/natter.rules.yaml: every rule has a
// severity, summary, description and a runbook anchor of
// docs/operations.md; every series it reads is one natter registers (with
// the labels it matches on) or one of another exporter; the alerts issue 22
// asks for exist; k8s/monitoring.yaml's PrometheusRule carries exactly this
// file; promtool check rules passes, and promtool test rules runs the unit
// tests, which give every alert a case where it fires and one where it is
// silent.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	rules := loadRules(t)
	reg := registeredMetrics(t)
	anchors := operationsAnchors(t)
	byName := make(map[string]alertRule)
	for _, r := range rules {
		if _, dup := byName[r.Alert]; dup {
			t.Errorf("alert %s defined twice", r.Alert)
		}
		byName[r.Alert] = r
		if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %q; want critical or warning", r.Alert, sev)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix)
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q is not %s<a heading of docs/operations.md>", r.Alert, r.Annotations["runbook_url"], runbookPrefix)
		}
		if anchor != strings.ToLower(r.Alert) {
			t.Errorf("%s: runbook anchor %q; want the alert's own heading #%s", r.Alert, anchor, strings.ToLower(r.Alert))
		}
		if r.For != "" {
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
		}
		for _, p := range checkQuery(reg, r.Expr) {
			t.Errorf("%s: %s", r.Alert, p)
		}
	}
	for _, w := range wantAlerts {
		if r, ok := byName[w.alert]; !ok || !strings.Contains(r.Expr, w.in) {
			t.Errorf("no alert %s reading %s", w.alert, w.in)
		}
	}

	t.Run("k8s", func(t *testing.T) {
		want := prometheusRuleSpec(readFile(t, rulesFile))
		mon := readFile(t, monitoringK8s)
		start, end := ruleSpecBounds(t, mon)
		if mon[start:end] == want {
			return
		}
		if *update {
			if err := os.WriteFile(monitoringK8s, []byte(mon[:start]+want+mon[end:]), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the PrometheusRule of %s from %s", monitoringK8s, rulesFile)
			return
		}
		t.Errorf("the PrometheusRule of %s differs from %s: run go test ./infra/ -run TestAlertRules -args -update", monitoringK8s, rulesFile)
	})

	t.Run("unit tests cover every alert", func(t *testing.T) {
		var tf struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				Name  string `yaml:"name"`
				Cases []struct {
					Alert string `yaml:"alertname"`
					Exp   []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal([]byte(readFile(t, rulesTestFile)), &tf); err != nil {
			t.Fatal(err)
		}
		if len(tf.RuleFiles) != 1 || tf.RuleFiles[0] != filepath.Base(rulesFile) {
			t.Errorf("%s: rule_files %v; want [%s]", rulesTestFile, tf.RuleFiles, filepath.Base(rulesFile))
		}
		fires, silent := map[string]bool{}, map[string]bool{}
		for _, tg := range tf.Tests {
			for _, c := range tg.Cases {
				if _, ok := byName[c.Alert]; !ok {
					t.Errorf("%s: test %q: no alert %s", rulesTestFile, tg.Name, c.Alert)
				}
				if len(c.Exp) > 0 {
					fires[c.Alert] = true
				} else {
					silent[c.Alert] = true
				}
			}
		}
		for _, r := range rules {
			if !fires[r.Alert] || !silent[r.Alert] {
				t.Errorf("%s: unit tests where it fires: %v, where it is silent: %v; want both", r.Alert, fires[r.Alert], silent[r.Alert])
			}
		}
	})

	t.Run("promtool", func(t *testing.T) {
		promtool(t, "check", "rules", "../"+rulesFile)
		promtool(t, "test", "rules", "../"+rulesTestFile)
	})
}

// prometheusRuleSpec is the spec of the PrometheusRule for a rules file:
// the file from its groups: line on, indented under spec:.
func prometheusRuleSpec(rules string) string {
	i := strings.Index(rules, "\ngroups:")
	if i < 0 {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(rules[i+1:], "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.String()
}

// ruleSpecBounds returns where the PrometheusRule's spec body starts (after
// its "spec:" line) and ends (the next document or the end) in mon.
func ruleSpecBounds(tb testing.TB, mon string) (int, int) {
	tb.Helper()
	k := strings.Index(mon, "\nkind: PrometheusRule\n")
	if k < 0 {
		tb.Fatalf("%s: no PrometheusRule", monitoringK8s)
	}
	s := strings.Index(mon[k:], "\nspec:\n")
	if s < 0 {
		tb.Fatalf("%s: PrometheusRule without spec", monitoringK8s)
	}
	start := k + s + len("\nspec:\n")
	end := len(mon)
	if e := strings.Index(mon[start:], "\n---"); e >= 0 {
		end = start + e + 1
	}
	return start, end
}

// promtoolRun runs promtool from the tools module (tools/go.mod pins it
// with a tool line; prometheus/prometheus stays out of natter's go.mod),
// built without Prometheus's service discovery plugins (tag remove_all_sd:
// the cloud SDKs, which rule checks do not use). go run caches the built
// executable, so only the first run compiles (see docs/operations.md,
// "Alerts").
var promtoolRun = []string{"run", "-mod=readonly", "-tags=remove_all_sd", "github.com/prometheus/prometheus/cmd/promtool"}

// promtool runs promtool with args in tools/.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append(promtoolRun, args...)...)
	cmd.Dir = "tools"
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("promtool %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("promtool %s: %v", strings.Join(args, " "), err)
	}
}

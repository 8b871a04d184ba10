package infra_test

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	dashboardFile     = "grafana/dashboards/natter.json"
	dashboardK8s      = "k8s/grafana.yaml"
	grafanaCompose    = "grafana/compose.yaml"
	grafanaPrometheus = "grafana/prometheus.yml"
	datasourcesFile   = "grafana/provisioning/datasources/natter.yaml"
	providersFile     = "grafana/provisioning/dashboards/natter.yaml"
)

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

// The panels issue 22 asks for, by what one of their expressions reads.
var wantPanels = []struct{ what, in string }{
	{"connections", "natter_edge_connections"},
	{"send rate", "natter_edge_sends_total"},
	{"send latency p50", "histogram_quantile(0.5, sum by (le) (rate(natter_edge_send_seconds_bucket"},
	{"send latency p99", "histogram_quantile(0.99, sum by (le) (rate(natter_edge_send_seconds_bucket"},
	{"consumer lag per role", "max by (role) (natter_consumer_pending + natter_consumer_ack_pending)"},
	{"archive lag", `max(natter_stream_last_seq{stream="MSGS"}) - max(natter_consumer_ack_floor{consumer="PERSIST"})`},
	{"dead letters", `natter_stream_messages{stream="DLQ"}`},
	{"errors by code", "sum by (code) (rate(natter_edge_errors_total"},
	{"NATS health", `natter_check_up`},
	{"NATS reconnects", `natter_nats_reconnects_total`},
	{"store health", `natter_check_seconds`},
}

func loadDashboard(tb testing.TB) (dashboard, string) {
	tb.Helper()
	raw := readFile(tb, dashboardFile)
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(&d); err != nil {
		tb.Fatalf("%s: %v", dashboardFile, err)
	}
	return d, raw
}

// TestGrafanaDashboard checks grafana/dashboards/natter.json: it parses;
// every panel queries the dashboard's datasource variable, and every series
// it reads is one natter registers (with the labels it matches on) or one
// of another exporter; the panels issue 22 asks for exist; panels do not
// overlap. The provisioning files, compose.yaml and prometheus.yml agree on
// paths, and k8s/grafana.yaml carries the same JSON.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	d, raw := loadDashboard(t)
	reg := registeredMetrics(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q; want both", d.UID, d.Title)
	}
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = "${" + v.Name + "}"
		}
	}
	if dsVar == "" {
		t.Fatal("no Prometheus datasource variable in the templating list")
	}
	var all []dashPanel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	var exprs []string
	ids := make(map[int]bool)
	type cell struct{ x, y int }
	used := make(map[cell]string)
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q at %d,%d", p.Title, other, x, y)
				}
				used[cell{x, y}] = p.Title
			}
		}
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: wider than the 24-column grid", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != dsVar {
			t.Errorf("panel %q: datasource %+v; want prometheus %s", p.Title, p.Datasource, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: query %s is empty", p.Title, tg.RefID)
			}
			if !balanced(tg.Expr) {
				t.Errorf("panel %q: unbalanced brackets in %q", p.Title, tg.Expr)
			}
			for _, prob := range checkQuery(reg, tg.Expr) {
				t.Errorf("panel %q: %s", p.Title, prob)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, w := range wantPanels {
		found := false
		for _, e := range exprs {
			found = found || strings.Contains(e, w.in)
		}
		if !found {
			t.Errorf("no panel on %s (a query reading %s)", w.what, w.in)
		}
	}

	t.Run("provisioning", func(t *testing.T) { checkGrafanaProvisioning(t) })

	t.Run("k8s", func(t *testing.T) {
		want := dashboardConfigMap(raw)
		got, err := os.ReadFile(dashboardK8s)
		if err == nil && string(got) == want {
			var cm struct {
				Data map[string]string `yaml:"data"`
			}
			if err := yaml.Unmarshal(got, &cm); err != nil || cm.Data["natter.json"] != raw {
				t.Errorf("%s: data natter.json does not decode to %s: %v", dashboardK8s, dashboardFile, err)
			}
			return
		}
		if *update {
			if err := os.WriteFile(dashboardK8s, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote %s from %s", dashboardK8s, dashboardFile)
			return
		}
		t.Errorf("%s differs from %s: run go test ./infra/ -run TestGrafanaDashboard -args -update", dashboardK8s, dashboardFile)
	})
}

// dashboardConfigMap is k8s/grafana.yaml for the dashboard JSON: a
// ConfigMap the Grafana sidecar of kube-prometheus-stack loads (label
// grafana_dashboard "1").
func dashboardConfigMap(raw string) string {
	var b strings.Builder
	b.WriteString(`# Generated from ../grafana/dashboards/natter.json: edit that file, then run
# go test ./infra/ -run TestGrafanaDashboard -args -update
# The Grafana of kube-prometheus-stack loads every ConfigMap labelled
# grafana_dashboard: "1" (its sidecar's default label), in any namespace when
# grafana.sidecar.dashboards.searchNamespace is ALL.
apiVersion: v1
kind: ConfigMap
metadata:
  name: natter-grafana-dashboard
  namespace: natter
  labels:
    app.kubernetes.io/name: natter
    app.kubernetes.io/part-of: natter
    grafana_dashboard: "1"
data:
  natter.json: |
`)
	for _, line := range strings.SplitAfter(raw, "\n") {
		if line != "" {
			b.WriteString("    " + line)
		}
	}
	return b.String()
}

// checkGrafanaProvisioning: the datasource points at compose's Prometheus,
// the dashboard provider's path is where compose mounts dashboards/, the
// provisioning directories are mounted where Grafana reads them, and
// Prometheus loads the alert rules from where compose mounts them.
func checkGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			IsDefault                    bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	strictYAML(t, datasourcesFile, &ds)
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Folder, Type    string
			DisableDeletion       bool `yaml:"disableDeletion"`
			UpdateIntervalSeconds int  `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	strictYAML(t, providersFile, &prov)
	var compose struct {
		Services map[string]struct {
			Image      string   `yaml:"image"`
			Command    []string `yaml:"command"`
			Ports      []string `yaml:"ports"`
			Volumes    []string `yaml:"volumes"`
			ExtraHosts []string `yaml:"extra_hosts"`
			DependsOn  []string `yaml:"depends_on"`
		} `yaml:"services"`
	}
	strictYAML(t, grafanaCompose, &compose)
	var pc struct {
		Global     map[string]string `yaml:"global"`
		RuleFiles  []string          `yaml:"rule_files"`
		ScrapeCfgs []struct {
			JobName string `yaml:"job_name"`
			Static  []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	strictYAML(t, grafanaPrometheus, &pc)

	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("%s: want apiVersion 1 and one prometheus datasource: %+v", datasourcesFile, ds)
	}
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("%s: want apiVersion 1 and one file provider: %+v", providersFile, prov)
	}
	// mounts: container path -> host path (relative to grafana/)
	mounts := func(svc string) map[string]string {
		s, ok := compose.Services[svc]
		if !ok {
			t.Fatalf("%s: no service %s", grafanaCompose, svc)
		}
		m := make(map[string]string)
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q of %s is not host:container", grafanaCompose, v, svc)
				continue
			}
			m[parts[1]] = parts[0]
			if _, err := os.Stat(filepath.Join("grafana", parts[0])); err != nil {
				t.Errorf("%s: %s mounts %s: %v", grafanaCompose, svc, parts[0], err)
			}
		}
		return m
	}
	gm, pm := mounts("grafana"), mounts("prometheus")
	for dir, file := range map[string]string{
		"/etc/grafana/provisioning/datasources": datasourcesFile,
		"/etc/grafana/provisioning/dashboards":  providersFile,
		prov.Providers[0].Options.Path:          dashboardFile,
	} {
		host, ok := gm[dir]
		if !ok {
			t.Errorf("%s: grafana mounts nothing at %s (where %s belongs)", grafanaCompose, dir, file)
			continue
		}
		if got := path.Join("grafana", host, path.Base(file)); got != file {
			t.Errorf("%s: grafana mounts %s at %s; want the directory of %s", grafanaCompose, host, dir, file)
		}
	}
	if want := "http://prometheus:9090"; ds.Datasources[0].URL != want {
		t.Errorf("%s: url %s; want %s (the compose service prometheus)", datasourcesFile, ds.Datasources[0].URL, want)
	}
	for _, rf := range pc.RuleFiles {
		host, ok := pm[rf]
		if !ok || path.Clean(path.Join("grafana", host)) != rulesFile {
			t.Errorf("%s: rule file %s is not %s mounted by %s", grafanaPrometheus, rf, rulesFile, grafanaCompose)
		}
	}
	if len(pc.RuleFiles) != 1 {
		t.Errorf("%s: rule_files %v; want the one natter rules file", grafanaPrometheus, pc.RuleFiles)
	}
	var cfg string
	for _, c := range compose.Services["prometheus"].Command {
		cfg, _ = strings.CutPrefix(c, "--config.file=")
	}
	if host, ok := pm[cfg]; !ok || path.Join("grafana", host) != grafanaPrometheus {
		t.Errorf("%s: prometheus reads --config.file %q, not %s", grafanaCompose, cfg, grafanaPrometheus)
	}
	// The rules select natter's jobs by these names (NatterScrapeDown).
	jobs := map[string]bool{}
	for _, s := range pc.ScrapeCfgs {
		jobs[s.JobName] = true
	}
	for _, j := range []string{"natter-edge", "natter-workers"} {
		if !jobs[j] {
			t.Errorf("%s: no scrape job %s", grafanaPrometheus, j)
		}
	}
}

func strictYAML(tb testing.TB, file string, v any) {
	tb.Helper()
	dec := yaml.NewDecoder(strings.NewReader(readFile(tb, file)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
}

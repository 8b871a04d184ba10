package infra_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// What a rule or a panel may query: the metrics natter registers (read
// from the Go sources: every prometheus.New* call and NewDesc with a
// literal name, with its label names), the Go and process collectors
// internal/node registers (gathered from the same collectors here), and
// series of other exporters named by prefix.

// externalPrefixes are series natter does not serve: Prometheus itself
// (up), kube-state-metrics, cAdvisor and the kubelet, and the NATS
// exporter of the Helm release (nats-values.yaml).
var externalPrefixes = []string{"up", "kube_", "container_", "kubelet_", "nats_"}

// targetLabels are labels Prometheus or Kubernetes discovery add to every
// scraped series.
var targetLabels = map[string]bool{"instance": true, "job": true, "pod": true, "namespace": true, "container": true, "le": true}

var (
	nameRe     = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b`)
	selectorRe = regexp.MustCompile(`\b((?:natter|process|go)_[a-z0-9_]+)\{([^}]*)\}`)
	matcherRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// registeredMetrics returns every metric natter registers, with its label
// names: natter_* from the Go sources (tests and infra/ excluded),
// process_* and go_* from the collectors internal/node registers.
func registeredMetrics(tb testing.TB) map[string][]string {
	tb.Helper()
	out := make(map[string][]string)
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "infra", "testdata", "data", "node_modules":
				if path != repoRoot {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "prometheus" {
				return true
			}
			var name string
			var labels []string
			switch fn := sel.Sel.Name; {
			case fn == "NewDesc" && len(call.Args) >= 3:
				name = stringLit(call.Args[0])
				labels = stringList(call.Args[2])
			case strings.HasPrefix(fn, "New") && (strings.HasSuffix(fn, "Vec") || !strings.Contains(fn, "Registry")):
				lit, ok := call.Args[0].(*ast.CompositeLit)
				if !ok {
					return true
				}
				for _, e := range lit.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
							name = stringLit(kv.Value)
						}
					}
				}
				if strings.HasSuffix(fn, "Vec") && len(call.Args) >= 2 {
					labels = stringList(call.Args[1])
				}
			}
			if strings.HasPrefix(name, "natter_") {
				out[name] = labels
			}
			return true
		})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(out) == 0 {
		tb.Fatal("no prometheus.New* calls with a natter_* name found in the Go sources")
	}
	// internal/node registers these two collectors in every process.
	node := readFile(tb, filepath.Join(repoRoot, "internal", "node", "node.go"))
	for _, want := range []string{"collectors.NewGoCollector()", "collectors.NewProcessCollector("} {
		if !strings.Contains(node, want) {
			tb.Fatalf("internal/node/node.go no longer registers %s: update registeredMetrics", want)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		var labels []string
		if len(mf.GetMetric()) > 0 {
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		out[mf.GetName()] = labels
	}
	return out
}

func stringLit(e ast.Expr) string {
	if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
		s, _ := strconv.Unquote(bl.Value)
		return s
	}
	return ""
}

func stringList(e ast.Expr) []string {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range lit.Elts {
		out = append(out, stringLit(el))
	}
	return out
}

// registeredSeries returns the metric a PromQL series name belongs to
// (histograms add _bucket, _sum and _count), or "".
func registeredSeries(reg map[string][]string, series string) string {
	for _, s := range []string{"", "_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, s); ok {
			if _, ok := reg[base]; ok {
				return base
			}
		}
	}
	return ""
}

// promqlKeywords are the words of PromQL that look like series names.
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true, "topk": true, "bottomk": true, "quantile": true,
	"rate": true, "irate": true, "increase": true, "delta": true, "idelta": true, "deriv": true, "changes": true, "resets": true,
	"histogram_quantile": true, "max_over_time": true, "min_over_time": true, "avg_over_time": true, "sum_over_time": true,
	"absent": true, "absent_over_time": true, "clamp_min": true, "clamp_max": true, "label_replace": true, "time": true, "vector": true, "scalar": true,
}

// checkQuery reports each series of a PromQL expression that nothing
// serves, and each label matcher on a natter, process or go series that
// the metric does not have. Label values, durations and the words inside
// by (...) / on (...) are not series names.
func checkQuery(reg map[string][]string, expr string) []string {
	var problems []string
	stripped := regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)
	stripped = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(stripped, "")
	stripped = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(stripped, "")
	stripped = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(stripped, "")
	stripped = regexp.MustCompile(`\$\w+`).ReplaceAllString(stripped, "") // Grafana variables
	for _, m := range nameRe.FindAllStringIndex(stripped, -1) {
		name := stripped[m[0]:m[1]]
		if promqlKeywords[name] || (m[0] > 0 && strings.ContainsRune("0123456789.", rune(stripped[m[0]-1]))) {
			continue
		}
		if _, err := strconv.ParseFloat(name, 64); err == nil {
			continue
		}
		if registeredSeries(reg, name) != "" {
			continue
		}
		external := false
		for _, p := range externalPrefixes {
			external = external || name == p || strings.HasPrefix(name, p) && strings.HasSuffix(p, "_")
		}
		if !external {
			problems = append(problems, name+" is not a metric natter registers nor one of another exporter ("+strings.Join(externalPrefixes, ", ")+")")
		}
	}
	for _, m := range selectorRe.FindAllStringSubmatch(expr, -1) {
		base := registeredSeries(reg, m[1])
		if base == "" {
			continue // reported above
		}
		for _, lm := range matcherRe.FindAllStringSubmatch(m[2], -1) {
			if !targetLabels[lm[1]] && !contains(reg[base], lm[1]) {
				problems = append(problems, m[1]+" has no label "+lm[1]+" (labels: "+strings.Join(reg[base], ",")+")")
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestCheckQuery: the metric check refuses what it must refuse.
func TestCheckQuery(t *testing.T) {
	t.Parallel()
	reg := map[string][]string{"natter_x_total": {"role"}, "natter_h_seconds": nil, "process_open_fds": nil}
	for _, tc := range []struct {
		expr string
		bad  int
	}{
		{`sum by (role) (rate(natter_x_total{role="persist", instance=~".+"}[5m])) > 0`, 0},
		{`histogram_quantile(0.99, sum by (le) (rate(natter_h_seconds_bucket[5m]))) > 0.5`, 0},
		{`process_open_fds / process_max_fds`, 1},
		{`rate(natter_y_total[5m])`, 1},
		{`natter_x_total{outcome="ack"}`, 1},
		{`up == 0 and on (instance) kube_pod_info`, 0},
		{`sum(rate(natter_x_total{role=~"$role"}[$__rate_interval]))`, 0},
	} {
		if got := checkQuery(reg, tc.expr); len(got) != tc.bad {
			t.Errorf("%s: %d problems %v; want %d", tc.expr, len(got), got, tc.bad)
		}
	}
}

// operationsAnchors returns the GitHub anchors of docs/operations.md's
// headings.
func operationsAnchors(tb testing.TB) map[string]bool {
	tb.Helper()
	doc := readFile(tb, filepath.Join(repoRoot, "docs", "operations.md"))
	anchors := make(map[string]bool)
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
	}
	return anchors
}

func readDir(tb testing.TB, dir string) []os.DirEntry {
	tb.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return es
}

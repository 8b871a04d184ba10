package infra_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// What the tests know about the binary comes from the repository itself, so
// the manifests cannot drift from it: the documented settings
// (docs/config.md), the worker roles (internal/node) and the metric names
// (every Go file). The roles are read from the source, not imported, so this
// package does not need the whole binary to compile.

const repoRoot = ".."

// Commands a NATTER_* variable can apply to, as docs/config.md names them.
const (
	cmdDev    = "dev"
	cmdEdge   = "edge"
	cmdWorker = "worker"
	cmdStream = "streams apply"
	cmdToken  = "token"
)

var allCommands = []string{cmdDev, cmdEdge, cmdWorker, cmdStream, cmdToken}

// Tables of docs/config.md without a "used by" column, by section heading.
var sectionCommands = map[string][]string{
	"JetStream definitions": allCommands,
	"Edge":                  {cmdDev, cmdEdge},
	"Tokens":                {cmdDev, cmdEdge, cmdToken},
}

var envRe = regexp.MustCompile(`NATTER_[A-Z0-9_]+`)

// documentedEnv parses the tables of docs/config.md: every NATTER_* variable
// and the commands that read it (nil when the doc does not say).
func documentedEnv(tb testing.TB) map[string][]string {
	tb.Helper()
	doc := readFile(tb, filepath.Join(repoRoot, "docs", "config.md"))
	vars := make(map[string][]string)
	var section string
	var header []string
	for _, line := range strings.Split(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section, header = strings.TrimSpace(h), nil
			continue
		}
		if !strings.HasPrefix(line, "|") {
			header = nil
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if header == nil {
			header = cells
			continue
		}
		var envCell, usedBy string
		found := false
		for i, h := range header {
			if i >= len(cells) {
				break
			}
			switch h {
			case "env":
				envCell = cells[i]
			case "used by":
				usedBy, found = cells[i], true
			}
		}
		var cmds []string
		switch {
		case found && usedBy == "all":
			cmds = allCommands
		case found:
			for _, c := range strings.Split(usedBy, ",") {
				cmds = append(cmds, strings.TrimSpace(c))
			}
		default:
			cmds = sectionCommands[section]
		}
		for _, v := range envRe.FindAllString(envCell, -1) {
			vars[v] = cmds
		}
	}
	if len(vars) == 0 {
		tb.Fatal("docs/config.md: no NATTER_* variables found in its tables")
	}
	return vars
}

// workerRoles returns node.AllRoles, read from the source of
// internal/node.
func workerRoles(tb testing.TB) []string {
	tb.Helper()
	fset := token.NewFileSet()
	dir := filepath.Join(repoRoot, "internal", "node")
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	consts := make(map[string]string)
	var all []ast.Expr
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range gd.Specs {
				vs, ok := s.(*ast.ValueSpec)
				if !ok {
					continue
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					switch v := vs.Values[i].(type) {
					case *ast.BasicLit:
						if gd.Tok == token.CONST && v.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(v.Value)
						}
					case *ast.CompositeLit:
						if name.Name == "AllRoles" {
							all = v.Elts
						}
					}
				}
			}
		}
	}
	var roles []string
	for _, e := range all {
		switch v := e.(type) {
		case *ast.Ident:
			roles = append(roles, consts[v.Name])
		case *ast.BasicLit:
			s, _ := strconv.Unquote(v.Value)
			roles = append(roles, s)
		}
	}
	if len(roles) == 0 {
		tb.Fatal("internal/node: AllRoles not found")
	}
	return roles
}

// metricNames returns every "natter_*" string literal in the module's Go
// files (tests and this directory excluded): the metrics the binary serves.
func metricNames(tb testing.TB) map[string]bool {
	tb.Helper()
	re := regexp.MustCompile(`"(natter_[a-z0-9_]+)"`)
	names := make(map[string]bool)
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
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(names) == 0 {
		tb.Fatal("no natter_* metrics found in the Go sources")
	}
	return names
}

// servedMetric reports whether a PromQL series name is one of names, with
// the suffixes Prometheus adds to histograms and summaries.
func servedMetric(names map[string]bool, series string) bool {
	for _, s := range []string{"", "_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, s); ok && names[base] {
			return true
		}
	}
	return false
}

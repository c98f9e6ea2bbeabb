package examples_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReadmeDriftAudit runs the README's "Auditing drift" walk-through on the
// quickstart as a reader would after make demo: its psql commands change a
// standby's setting and the publication by hand, and the plan must show
// exactly the README's resource blocks (the count of hidden attributes
// aside, which differs between Terraform and OpenTofu), exit 2 with
// -detailed-exitcode, and an apply must put the servers back: the next plan
// exits 0.
func TestReadmeDriftAudit(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Auditing drift with `terraform plan`")
	if !ok {
		t.Fatal(`README.md has no section "Auditing drift with ` + "`terraform plan`" + `"`)
	}
	// The section's first fenced block holds the commands (sh), the next the
	// plan they give (no language).
	blocks := regexp.MustCompile("(?ms)^```(\\w*)\n(.*?)^```\n").FindAllStringSubmatch(section, 2)
	if len(blocks) != 2 || blocks[0][1] != "sh" || blocks[1][1] != "" {
		t.Fatal("README.md's drift section: want a sh block of commands, then a block of the plan they give")
	}
	commands, shown := blocks[0][2], blocks[1][2]

	topo := routertest.Start(t, routertest.WithStandbys(2))
	execSQL(t, topo.Primary, "postgres", quickstartBooks)
	vars := quickstartVars(t, topo)
	dir := t.TempDir()
	copyExample(t, "quickstart", dir, nil)
	var args []string
	for name, value := range vars {
		args = append(args, "-var", name+"="+value)
	}
	defer func() {
		if code, out := cli.exec(t, dir, append([]string{"destroy", "-auto-approve", "-input=false", "-no-color"}, args...)...); code != 0 {
			t.Errorf("destroy exited %d, want 0:\n%s", code, out)
		}
	}()
	cli.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, args...)...)

	// The README's hand changes: psql "$PGREPLICATION_<NODE>_DSN" -c "…" -c "…".
	nodes := map[string]*routertest.Node{"PRIMARY": topo.Primary}
	for i, s := range topo.Standbys {
		nodes["REPLICA_"+strconv.Itoa(i+1)] = s
	}
	psql := regexp.MustCompile(`(?m)^psql "\$PGREPLICATION_(\w+)_DSN"((?:\s+-c "[^"]*")+)\s*$`)
	statement := regexp.MustCompile(`-c "([^"]*)"`)
	ran := 0
	for _, m := range psql.FindAllStringSubmatch(commands, -1) {
		n := nodes[m[1]]
		if n == nil {
			t.Fatalf("README.md's drift commands name PGREPLICATION_%s_DSN, which the sandbox does not write", m[1])
		}
		for _, c := range statement.FindAllStringSubmatch(m[2], -1) {
			execSQL(t, n, "postgres", c[1]) // one statement each, as psql -c runs them
			ran++
		}
	}
	if ran == 0 {
		t.Fatalf("README.md's drift commands have no psql -c line to run:\n%s", commands)
	}

	code, out := cli.exec(t, dir, append([]string{"plan", "-detailed-exitcode", "-input=false", "-no-color"}, args...)...)
	if code != 2 {
		t.Fatalf("plan -detailed-exitcode after the README's hand changes exited %d, want 2:\n%s", code, out)
	}
	if got, want := planBlocks(out), planBlocks(shown); got != want {
		t.Errorf("README.md shows this plan:\n%s\nthe CLI printed:\n%s", want, got)
	}
	cli.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, args...)...)
	cli.run(t, dir, 0, append([]string{"plan", "-detailed-exitcode", "-input=false", "-no-color"}, args...)...)
}

// planBlocks is a plan's text from its first resource to its "Plan:" line,
// each line trimmed, with the number of hidden attributes left out.
func planBlocks(plan string) string {
	hidden := regexp.MustCompile(`# \(\d+ unchanged attributes hidden\)`)
	var lines []string
	in := false
	for _, line := range strings.Split(plan, "\n") {
		line = strings.TrimSpace(line)
		in = in || strings.HasPrefix(line, "# pgreplication_")
		if !in || line == "" {
			continue
		}
		lines = append(lines, hidden.ReplaceAllString(line, "# (N unchanged attributes hidden)"))
		if strings.HasPrefix(line, "Plan:") {
			break
		}
	}
	return strings.Join(lines, "\n")
}

// TestReadmeGoNames checks the names the README's Go snippets call (they are
// sketches, with "..." for what an application fills in, so they do not
// compile as they stand): every routerlib, stdlib and routertest name, and
// every method called on the Router (r), the session middleware (sm), the
// topology (topo) and its nodes, exists in those packages. A rename there
// fails here instead of leaving the README behind.
func TestReadmeGoNames(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	for _, m := range regexp.MustCompile("(?ms)^```go\n(.*?)^```\n").FindAllStringSubmatch(string(b), -1) {
		code.WriteString(m[1])
	}
	if code.Len() == 0 {
		t.Fatal("README.md has no Go snippet")
	}
	names := map[string]map[string]bool{}
	for pkg, dir := range map[string]string{"routerlib": "../routerlib", "stdlib": "../routerlib/stdlib", "routertest": "../routerlib/routertest"} {
		names[pkg] = exportedNames(t, dir)
	}
	// What each receiver in the snippets is.
	receivers := map[string]string{"r": "routerlib.Router", "sm": "routerlib.SessionMiddleware", "topo": "routertest.Topology", "topo.Standbys[0]": "routertest.Node"}
	checked := 0
	for _, m := range regexp.MustCompile(`\b(routerlib|stdlib|routertest)\.([A-Z]\w*)`).FindAllStringSubmatch(code.String(), -1) {
		checked++
		if !names[m[1]][m[2]] {
			t.Errorf("README.md's Go names %s.%s, which package %s does not declare", m[1], m[2], m[1])
		}
	}
	for receiver, typ := range receivers {
		pkg, typeName, _ := strings.Cut(typ, ".")
		for _, m := range regexp.MustCompile(`(?:^|[^\w.])`+regexp.QuoteMeta(receiver)+`\.([A-Z]\w*)`).FindAllStringSubmatch(code.String(), -1) {
			checked++
			if !names[pkg][typeName+"."+m[1]] {
				t.Errorf("README.md's Go calls %s.%s on a %s, which has no such field or method", receiver, m[1], typ)
			}
		}
	}
	t.Logf("%d names checked", checked)
}

// exportedNames are the exported top-level names of the Go package in dir
// (its non-test files), and its exported methods and struct fields as
// "Type.Name".
func exportedNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
					continue
				}
				recv := d.Recv.List[0].Type
				if star, ok := recv.(*ast.StarExpr); ok {
					recv = star.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					names[id.Name+"."+d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = true
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, field := range st.Fields.List {
								for _, n := range field.Names {
									names[s.Name.Name+"."+n.Name] = true
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names
}

package examples_test

import (
	"os"
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

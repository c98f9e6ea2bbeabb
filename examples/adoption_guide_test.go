package examples_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// guidePath is the adoption guide, whose commands TestAdoptionGuide runs.
const guidePath = "../docs/guides/adopting-an-existing-cluster.md"

// TestAdoptionGuide runs docs/guides/adopting-an-existing-cluster.md as a
// reader would, with each CLI of make test (Terraform, then OpenTofu): the
// guide's SQL builds the cluster on a primary and two standbys (the sandbox
// it names), its configuration imports it, and what the guide shows must
// hold: the first plan imports ten objects and changes nothing, the apply
// leaves every catalog and postgresql.auto.conf as it was, the next plan is
// empty, and -generate-config-out writes resources that, once the
// subscription's conninfo is filled in, plan imports only. What the guide
// leaves as "likewise" (the second standby's provider, slot and standby) is
// its first standby's blocks renamed. provider/adoption_test.go checks more
// shapes of adoption; this test keeps the guide's own text true.
func TestAdoptionGuide(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	b, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	guide := string(b)
	sqlBlocks, tfBlocks := codeBlocks(guide, "sql"), codeBlocks(guide, "terraform")
	if len(sqlBlocks) != 2 || len(tfBlocks) == 0 {
		t.Fatalf("%s: want two sql blocks (the primary's, a standby's) and terraform blocks; found %d and %d", guidePath, len(sqlBlocks), len(tfBlocks))
	}

	topo := routertest.Start(t, routertest.WithStandbys(2))
	primary := topo.Primary
	for _, s := range sqlSections(sqlBlocks[0]) {
		for _, stmt := range sqlStatements(strings.ReplaceAll(s.sql, "port=5432", fmt.Sprintf("port=%d", primary.Port))) {
			execSQL(t, primary, s.database, stmt)
		}
	}
	for i, standby := range topo.Standbys {
		for _, stmt := range sqlStatements(strings.ReplaceAll(sqlBlocks[1], "replica_1", fmt.Sprintf("replica_%d", i+1))) {
			execSQL(t, standby, "postgres", stmt)
		}
	}
	// The guide's standbys stream through their slots.
	waitFor(t, primary, 60*time.Second, func() bool {
		var n int
		err := primary.QueryRow(t.Context(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('replica_1', 'replica_2') AND active`).Scan(&n)
		return err == nil && n == 2
	}, "both standbys to stream through their slots")

	config := guideConfig(t, strings.Join(tfBlocks, "\n"))
	vars := []string{
		"-var", "host=" + primary.Host,
		"-var", fmt.Sprintf("primary_port=%d", primary.Port),
		"-var", fmt.Sprintf("replica1_port=%d", topo.Standbys[0].Port),
		"-var", fmt.Sprintf("replica2_port=%d", topo.Standbys[1].Port),
	}
	// The guide's configuration is complete as it stands (the provider's
	// source, the variables): it is the only file.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), config)
	t.Logf("the guide's configuration, completed:\n%s", config)

	before := guideSnapshot(t, topo)
	const importsOnly = "Plan: 10 to import, 0 to add, 0 to change, 0 to destroy."
	out := cli.run(t, dir, 0, append([]string{"plan", "-input=false", "-no-color"}, vars...)...)
	if !strings.Contains(out, importsOnly) {
		t.Fatalf("the guide's first plan must say %q:\n%s", importsOnly, out)
	}
	out = cli.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, vars...)...)
	if want := "Resources: 10 imported, 0 added, 0 changed, 0 destroyed."; !strings.Contains(out, want) {
		t.Fatalf("the guide's apply must say %q:\n%s", want, out)
	}
	if after := guideSnapshot(t, topo); after != before {
		t.Fatalf("the guide's apply changed the servers.\nbefore:\n%s\nafter:\n%s", before, after)
	}
	cli.run(t, dir, 0, append([]string{"plan", "-detailed-exitcode", "-input=false", "-no-color"}, vars...)...)

	// Letting the CLI write the configuration: the import blocks only.
	gen := t.TempDir()
	writeFile(t, filepath.Join(gen, "main.tf"), withoutResources(config))
	code, out := cli.exec(t, gen, append([]string{"plan", "-input=false", "-no-color", "-generate-config-out=generated.tf"}, vars...)...)
	if code != 1 || !strings.Contains(out, "Missing Configuration for Required Attribute") {
		t.Fatalf("plan -generate-config-out exited %d; the guide says it stops at the subscription's sensitive conninfo (Missing Configuration for Required Attribute):\n%s", code, out)
	}
	generated, err := os.ReadFile(filepath.Join(gen, "generated.tf"))
	if err != nil {
		t.Fatal(err)
	}
	sensitive := regexp.MustCompile(`conninfo\s*=\s*null # sensitive`)
	if !sensitive.Match(generated) {
		t.Fatalf("generated.tf has no `conninfo = null # sensitive` for the guide to fill in:\n%s", generated)
	}
	if strings.Contains(filepath.Base(cli.path), "tofu") {
		// OpenTofu writes the keys of a map of objects without their
		// quotes (opentofu/opentofu#3978): the guide says to put them
		// back, and so does the test.
		unquoted := regexp.MustCompile(`(?m)^(\s+)([^\s"#=]+\.[^\s=]+) = \{$`)
		if !unquoted.Match(generated) {
			t.Fatalf("OpenTofu wrote the keys of tables quoted: the guide's workaround for opentofu/opentofu#3978 can go.\n%s", generated)
		}
		generated = unquoted.ReplaceAll(generated, []byte(`$1"$2" = {`))
	}
	filled := sensitive.ReplaceAllLiteralString(string(generated),
		fmt.Sprintf("conninfo = %q", fmt.Sprintf("host=%s port=%d user=postgres dbname=app sslmode=disable", primary.Host, primary.Port)))
	writeFile(t, filepath.Join(gen, "generated.tf"), filled)
	out = cli.run(t, gen, 0, append([]string{"plan", "-input=false", "-no-color"}, vars...)...)
	if !strings.Contains(out, importsOnly) {
		t.Fatalf("with conninfo filled in, the generated configuration must plan %q:\n%s\ngenerated.tf:\n%s", importsOnly, out, filled)
	}
}

// codeBlocks are the fenced code blocks of a language in a Markdown text.
func codeBlocks(markdown, lang string) []string {
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```"+lang+"\n(.*?)^```").FindAllStringSubmatch(markdown, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// sqlSection is SQL to run in one database.
type sqlSection struct{ database, sql string }

// sqlSections splits the guide's SQL at its "-- in <database>" comments;
// what comes before the first runs in postgres.
func sqlSections(sql string) []sqlSection {
	sections := []sqlSection{{database: "postgres"}}
	marker := regexp.MustCompile(`^--\s*in (\w+)`)
	for _, line := range strings.SplitAfter(sql, "\n") {
		if m := marker.FindStringSubmatch(line); m != nil {
			sections = append(sections, sqlSection{database: m[1]})
			continue
		}
		sections[len(sections)-1].sql += line
	}
	return sections
}

// sqlStatements splits SQL into statements ending with ";" at the end of a
// line, without the comment lines, so that each runs on its own as psql runs
// them (CREATE DATABASE cannot run in the implicit transaction of several).
func sqlStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line + "\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			stmts = append(stmts, cur.String())
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		stmts = append(stmts, cur.String())
	}
	return stmts
}

// topLevelBlocks splits HCL into its top-level blocks (and what lies between
// them, comments), matching braces.
func topLevelBlocks(hcl string) []string {
	var blocks []string
	start, depth := 0, 0
	for i, c := range hcl {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				blocks = append(blocks, hcl[start:i+1])
				start = i + 1
			}
		}
	}
	return append(blocks, hcl[start:])
}

// guideConfig completes the guide's configuration with what it leaves as
// "likewise": the replica2 provider, and the replica_2 slot and standby with
// their import blocks, copied from the replica1 and replica_1 ones.
func guideConfig(t *testing.T, hcl string) string {
	t.Helper()
	first := regexp.MustCompile(`(?s)^\s*(#[^\n]*\n\s*)*(provider "pgreplication" \{.*alias\s*=\s*"replica1"|import \{.*to\s*=\s*pgreplication_(replication_slot|standby)\.replica_1\n|resource "pgreplication_(replication_slot|standby)" "replica_1")`)
	comments := regexp.MustCompile(`^(\s*#[^\n]*\n)*\s*`) // what precedes a block
	rename := strings.NewReplacer("replica_1", "replica_2", "replica1", "replica2", "replica-1", "replica-2")
	var copies []string
	for _, b := range topLevelBlocks(hcl) {
		if first.MatchString(b) {
			copies = append(copies, rename.Replace(comments.ReplaceAllString(b, "")))
		}
	}
	if len(copies) != 5 {
		t.Fatalf("%s: want the replica1 provider and the replica_1 slot and standby with their import blocks to copy for replica_2; found %d blocks:\n%s",
			guidePath, len(copies), strings.Join(copies, "\n\n"))
	}
	return hcl + "\n" + strings.Join(copies, "\n\n") + "\n"
}

// withoutResources is the configuration with its resource blocks removed:
// the providers and the import blocks, from which -generate-config-out
// writes the resources.
func withoutResources(hcl string) string {
	var b strings.Builder
	resource := regexp.MustCompile(`^\s*resource "`)
	for _, block := range topLevelBlocks(hcl) {
		if !resource.MatchString(block) {
			b.WriteString(block)
		}
	}
	return b.String()
}

// guideSnapshot is what the servers record about the guide's objects:
// catalogs (without the positions that move with WAL) and every server's
// postgresql.auto.conf.
func guideSnapshot(t *testing.T, topo *routertest.Topology) string {
	t.Helper()
	type query struct {
		node     *routertest.Node
		database string
		sql      string
	}
	queries := []query{
		{topo.Primary, "postgres", `SELECT slot_name, slot_type, database, plugin, temporary, two_phase, restart_lsn IS NULL AS unreserved FROM pg_replication_slots ORDER BY slot_name`},
		{topo.Primary, "postgres", `SELECT oid, subname, subowner, subenabled, subbinary, substream, subconninfo, subslotname, subsynccommit, subpublications FROM pg_subscription ORDER BY oid`},
	}
	for _, db := range []string{"app", "reporting"} {
		queries = append(queries,
			query{topo.Primary, db, `SELECT oid, pubname, pubowner, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot FROM pg_publication ORDER BY oid`},
			query{topo.Primary, db, `SELECT oid, prpubid, prrelid::regclass, pg_get_expr(prqual, prrelid), prattrs FROM pg_publication_rel ORDER BY oid`},
			query{topo.Primary, db, `SELECT oid, pnpubid, pnnspid::regnamespace FROM pg_publication_namespace ORDER BY oid`})
	}
	for _, n := range topo.Nodes() {
		queries = append(queries, query{n, "postgres", `SELECT pg_read_file('postgresql.auto.conf')`})
	}
	var b strings.Builder
	for _, q := range queries {
		conn, err := pgx.Connect(t.Context(), q.node.DSNFor(q.database))
		if err != nil {
			t.Fatal(err)
		}
		var rows string
		err = conn.QueryRow(t.Context(), `SELECT coalesce(string_agg(r::text, E'\n'), '') FROM (`+q.sql+`) AS r`).Scan(&rows)
		conn.Close(t.Context())
		if err != nil {
			t.Fatalf("%s/%s: %s: %v", q.node.Name, q.database, q.sql, err)
		}
		fmt.Fprintf(&b, "%s/%s: %s\n%s\n\n", q.node.Name, q.database, q.sql, rows)
	}
	return b.String()
}

package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRouterFileReplacement: a create_before_destroy replacement of a
// pgreplication_router_config at one path, whose content also changes,
// with the real CLI and a saved plan, so that the file can change between
// the plan and the apply (Terraform plans the new object again at apply,
// with nothing of the old one). Each time the file changed since the plan
// (edited in place, replaced by another writer's router file, made anew by
// hand with the very bytes the old object wrote) the apply writes nothing,
// names the change, and the old object stays in the state; planned and
// applied again, the replacement writes the new content over the file, and
// the old object's destroy leaves it. The replacement's record in the
// user's cache directory is gone after each apply.
func TestRouterFileReplacement(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache) // the provider's record of the replacement, inherited through the CLI
	cases := []struct {
		name   string
		change func(t *testing.T, file string) // between the plan and the apply
	}{
		{"editedInPlace", func(t *testing.T, file string) {
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("{ not json\n"); err != nil {
				t.Fatal(err)
			}
		}},
		{"anotherWriter", func(t *testing.T, file string) {
			other := filepath.Join(filepath.Dir(file), "other.json")
			writeFile(t, other, `{"format_version": 1, "nodes": [{"name": "primary-other", "role": "primary", "host": "10.9.9.9"}]}`+"\n")
			if err := os.Rename(other, file); err != nil {
				t.Fatal(err)
			}
		}},
		// Same inode, same bytes: only the change time tells (old code
		// without the change-time check wrote over it).
		{"rewrittenInPlaceWithTheSameBytes", func(t *testing.T, file string) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // the kernel's timestamp granularity, a clock tick
			if err := os.WriteFile(file, data, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"madeAnewWithTheSameBytes", func(t *testing.T, file string) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, data, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
	}
	refused := regexp.MustCompile(`Error: Router File Already Exists(?s:.*)replaces\s+its\s+old\s+object\s+\(create_before_destroy\)(?s:.*)was\s+changed\s+or\s+replaced\s+since\s+the\s+plan(?s:.*)the\s+old\s+object\s+stays\s+in\s+the\s+state`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "router.json")
			noRecord := func() {
				t.Helper()
				if left := replacementRecords(cache); len(left) > 0 {
					t.Errorf("records of replacements left after the apply: %v", left)
				}
			}
			writeFile(t, filepath.Join(dir, "main.tf"), replacementConfig("1", "10.0.0.1"))
			cli.run(t, dir, 0, applyArgs...)
			if got := routerFilePrimary(t, file).Host; got != "10.0.0.1" {
				t.Fatalf("after create: host %s", got)
			}

			writeFile(t, filepath.Join(dir, "main.tf"), replacementConfig("2", "10.0.0.2"))
			cli.run(t, dir, 0, "plan", "-out=replace.tfplan", "-input=false", "-no-color")
			c.change(t, file)
			changed, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			code, out := cli.exec(t, dir, "apply", "-input=false", "-no-color", "replace.tfplan")
			if code == 0 || !refused.MatchString(out) {
				t.Fatalf("apply of the replacement after the file changed exited %d; want it refused, naming the change:\n%s", code, out)
			}
			if got, err := os.ReadFile(file); err != nil || string(got) != string(changed) {
				t.Fatalf("the refused apply changed %s: %q, %v", file, got, err)
			}
			if got := hostInState(t, cli, dir); got != "10.0.0.1" {
				t.Fatalf("after the refused apply the state's object has host %q; want the old object, 10.0.0.1", got)
			}

			// Planned again, from what the file holds now. (The trigger
			// changed in the refused apply, so it is -replace now.)
			out = cli.run(t, dir, 0, append(applyArgs, "-replace=pgreplication_router_config.a")...)
			if !strings.Contains(out, "pgreplication_router_config.a: Creating") {
				t.Fatalf("want a replacement:\n%s", out)
			}
			if strings.Contains(out, "Router File Left in Place") {
				t.Errorf("the old object's destroy warned about the new object's file:\n%s", out)
			}
			if got := routerFilePrimary(t, file).Host; got != "10.0.0.2" {
				t.Fatalf("after the replacement: host %s", got)
			}
			if got := hostInState(t, cli, dir); got != "10.0.0.2" {
				t.Fatalf("after the replacement the state's object has host %q", got)
			}
			noRecord()
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				for _, e := range entries {
					if strings.HasSuffix(e.Name(), ".json") && e.Name() != "router.json" {
						t.Errorf("left in %s: %s", dir, e.Name())
					}
				}
			}
			cli.run(t, dir, 0, "destroy", "-auto-approve", "-input=false", "-no-color")
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Fatalf("destroy left %s: %v", file, err)
			}
			noRecord()
		})
	}
}

// applyArgs applies without asking.
var applyArgs = []string{"apply", "-auto-approve", "-input=false", "-no-color"}

// replacementConfig is a pgreplication_router_config "a" at router.json,
// replaced create_before_destroy whenever trigger changes, whose primary
// has host.
func replacementConfig(trigger, host string) string {
	return unreachableProvider + fmt.Sprintf(`
resource "terraform_data" "trigger" {
  input = %q
}

resource "pgreplication_router_config" "a" {
  path = "router.json"
  primary {
    name = "primary"
    host = %q
  }
  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [terraform_data.trigger]
  }
}
`, trigger, host)
}

// hostInState is the host of the primary of the state's object of
// pgreplication_router_config.a, in dir; the test fails when there is none
// (only a deposed object, say).
func hostInState(t *testing.T, cli *terraformCLI, dir string) string {
	t.Helper()
	out := cli.run(t, dir, 0, "state", "show", "-no-color", "pgreplication_router_config.a")
	m := regexp.MustCompile(`host\s+=\s+"([^"]*)"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no host in the state's object:\n%s", out)
	}
	return m[1]
}

// replacementRecords are the records of replacements in the cache
// directory cache.
func replacementRecords(cache string) []string {
	left, _ := filepath.Glob(filepath.Join(cache, "terraform-provider-pgreplication", "router-file-replacements", "*"))
	return left
}

// TestRouterFileReplacementPlannedElsewhere: a create_before_destroy
// replacement planned where its apply finds no record of it (another
// machine or user, or a cache directory cleared since: here XDG_CACHE_HOME
// changes between the plan and the apply).
//   - Over a file corrupted by hand (not a router file), the apply refuses
//     it in Create, writing nothing, and the old object stays in the state,
//     so the next plan works; planned and applied in one place it applies.
//     Old code: the apply's own plan refused it, which dropped the old
//     object: the state kept only a deposed object and every later plan
//     failed.
//   - With content unchanged and a state that recorded no file identity (a
//     state written before the provider recorded one, applied with
//     -refresh=false), the old object's destroy leaves the file the new
//     object wrote, also with a record. Old code: it removed it (its bytes
//     were the old object's), leaving the application no file.
func TestRouterFileReplacementPlannedElsewhere(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)

	t.Run("notRouterFile", func(t *testing.T) {
		t.Setenv("XDG_CACHE_HOME", t.TempDir())
		dir := t.TempDir()
		file := filepath.Join(dir, "router.json")
		writeFile(t, filepath.Join(dir, "main.tf"), replacementConfig("1", "10.0.0.1"))
		cli.run(t, dir, 0, applyArgs...)
		writeFile(t, file, "garbage\n")
		writeFile(t, filepath.Join(dir, "main.tf"), replacementConfig("2", "10.0.0.2"))
		cli.run(t, dir, 0, "plan", "-out=replace.tfplan", "-input=false", "-no-color")
		t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the apply's machine
		code, out := cli.exec(t, dir, "apply", "-input=false", "-no-color", "replace.tfplan")
		refused := regexp.MustCompile(`Error: Router File Already Exists(?s:.*)a\s+file\s+that\s+is\s+not\s+a\s+router\s+file\s+\(8\s+bytes\)(?s:.*)or\s+the\s+cache\s+directory\s+was\s+cleared\s+since,\s+plan\s+and\s+apply\s+again\s+here`)
		if code == 0 {
			t.Fatalf("apply of a replacement with no record over a file corrupted by hand succeeded:\n%s", out)
		}
		if got, err := os.ReadFile(file); err != nil || string(got) != "garbage\n" {
			t.Fatalf("the refused apply changed %s: %q, %v", file, got, err)
		}
		if show := cli.run(t, dir, 0, "show", "-no-color"); strings.Contains(show, "deposed") {
			t.Fatalf("after the refused apply the state keeps the old object only as a deposed object:\n%s\n\nThe apply said:\n%s", show, out)
		}
		if got := hostInState(t, cli, dir); got != "10.0.0.1" {
			t.Fatalf("after the refused apply the state's object has host %q; want the old object, 10.0.0.1", got)
		}
		if !refused.MatchString(out) {
			t.Fatalf("apply of a replacement with no record over a file corrupted by hand: want it refused by the create:\n%s", out)
		}
		// The next plan works, and applied here it replaces.
		code, out = cli.exec(t, dir, "plan", "-detailed-exitcode", "-input=false", "-no-color", "-replace=pgreplication_router_config.a")
		if code != 2 || strings.Contains(out, "Error:") || strings.Contains(out, "deposed") {
			t.Fatalf("the plan after the refused apply exited %d; want a replacement planned:\n%s", code, out)
		}
		cli.run(t, dir, 0, append(applyArgs, "-replace=pgreplication_router_config.a")...)
		if got := routerFilePrimary(t, file).Host; got != "10.0.0.2" {
			t.Fatalf("after the replacement: host %s", got)
		}
		cli.run(t, dir, 0, "destroy", "-auto-approve", "-input=false", "-no-color")
	})

	for _, elsewhere := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateWithoutFileID/elsewhere=%v", elsewhere), func(t *testing.T) {
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
			dir := t.TempDir()
			file := filepath.Join(dir, "router.json")
			writeFile(t, filepath.Join(dir, "main.tf"), replacementConfig("1", "10.0.0.1"))
			cli.run(t, dir, 0, applyArgs...)
			written, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dropPrivateState(t, filepath.Join(dir, "terraform.tfstate"))
			cli.run(t, dir, 0, "plan", "-refresh=false", "-replace=pgreplication_router_config.a", "-out=replace.tfplan", "-input=false", "-no-color")
			if elsewhere {
				t.Setenv("XDG_CACHE_HOME", t.TempDir())
			}
			out := cli.run(t, dir, 0, "apply", "-input=false", "-no-color", "replace.tfplan")
			if !strings.Contains(out, "pgreplication_router_config.a: Creating") || !strings.Contains(out, "Destruction complete") {
				t.Fatalf("want a replacement:\n%s", out)
			}
			if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, written) {
				t.Fatalf("after the replacement with the same content, %s: %q, %v; want the new object's file, %q", file, got, err, written)
			}
			if strings.Contains(out, "Router File Left in Place") {
				t.Errorf("the old object's destroy warned about the new object's file:\n%s", out)
			}
			cli.run(t, dir, 0, "plan", "-detailed-exitcode", "-input=false", "-no-color")
			if left := replacementRecords(os.Getenv("XDG_CACHE_HOME")); len(left) > 0 {
				t.Errorf("records left after the next plan: %v", left)
			}
			cli.run(t, dir, 0, "destroy", "-auto-approve", "-input=false", "-no-color")
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Fatalf("destroy left %s: %v", file, err)
			}
		})
	}
}

// dropPrivateState removes the provider's private state of every resource
// instance in the local state file name: a state written before the
// provider recorded the router file's identity there.
func dropPrivateState(t *testing.T, name string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]any
	if err := json.Unmarshal(data, &state); err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, r := range state["resources"].([]any) {
		for _, i := range r.(map[string]any)["instances"].([]any) {
			if _, ok := i.(map[string]any)["private"]; ok {
				delete(i.(map[string]any), "private")
				dropped++
			}
		}
	}
	if dropped == 0 {
		t.Fatalf("no private state in %s", name)
	}
	if data, err = json.MarshalIndent(state, "", "  "); err != nil {
		t.Fatal(err)
	}
	writeFile(t, name, string(data))
}

package examples_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
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
	config := func(trigger, host string) string {
		return fmt.Sprintf(`terraform {
  required_providers {
    pgreplication = {
      source = "pgreplication/pgreplication"
    }
  }
}

provider "pgreplication" {
  host            = "127.0.0.1"
  port            = 1
  connect_timeout = 1
}

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
	apply := []string{"apply", "-auto-approve", "-input=false", "-no-color"}
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
			hostOf := func() string {
				t.Helper()
				topo, err := artifact.Load(file)
				if err != nil {
					t.Fatalf("the router file: %v", err)
				}
				return topo.Nodes[0].Host
			}
			// inState is the host the state's object declares.
			inState := func() string {
				t.Helper()
				out := cli.run(t, dir, 0, "state", "show", "-no-color", "pgreplication_router_config.a")
				m := regexp.MustCompile(`host\s+=\s+"([^"]*)"`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no host in the state's object:\n%s", out)
				}
				return m[1]
			}
			noRecord := func() {
				t.Helper()
				left, _ := filepath.Glob(filepath.Join(cache, "terraform-provider-pgreplication", "router-file-replacements", "*"))
				if len(left) > 0 {
					t.Errorf("records of replacements left after the apply: %v", left)
				}
			}
			writeFile(t, filepath.Join(dir, "main.tf"), config("1", "10.0.0.1"))
			cli.run(t, dir, 0, apply...)
			if got := hostOf(); got != "10.0.0.1" {
				t.Fatalf("after create: host %s", got)
			}

			writeFile(t, filepath.Join(dir, "main.tf"), config("2", "10.0.0.2"))
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
			if got := inState(); got != "10.0.0.1" {
				t.Fatalf("after the refused apply the state's object has host %q; want the old object, 10.0.0.1", got)
			}

			// Planned again, from what the file holds now. (The trigger
			// changed in the refused apply, so it is -replace now.)
			out = cli.run(t, dir, 0, append(apply, "-replace=pgreplication_router_config.a")...)
			if !strings.Contains(out, "pgreplication_router_config.a: Creating") {
				t.Fatalf("want a replacement:\n%s", out)
			}
			if strings.Contains(out, "Router File Left in Place") {
				t.Errorf("the old object's destroy warned about the new object's file:\n%s", out)
			}
			if got := hostOf(); got != "10.0.0.2" {
				t.Fatalf("after the replacement: host %s", got)
			}
			if got := inState(); got != "10.0.0.2" {
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

package examples_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestRouterFileOneWriter: what the plan of one provider configuration
// cannot see, pgreplication_router_config's create finds on disk and
// refuses before writing anything, with the real CLI and its real plugin
// processes (one per provider configuration, which terraform-plugin-testing
// cannot show: in-process every alias shares one provider server):
//   - two provider configurations (aliases) whose resources write one file,
//     in one apply: one of them writes it, the other is refused, and so is
//     every later apply of it;
//   - a -target plan that leaves out the resource that wrote the file;
//   - a path known only at apply (from terraform_data) that names another
//     resource's file.
//
// Before, each of these replaced the other resource's file.
// unreachableProvider declares the provider under test and configures it
// with a server nothing answers on: pgreplication_router_config needs none.
const unreachableProvider = `terraform {
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
`

// routerFilePrimary is the first node, the primary, of the router file at
// file, which must parse: a refused write never leaves half a file.
func routerFilePrimary(t *testing.T, file string) artifact.Node {
	t.Helper()
	topo, err := artifact.Load(file)
	if err != nil {
		t.Fatalf("the router file: %v", err)
	}
	return topo.Nodes[0]
}

func TestRouterFileOneWriter(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	const providers = unreachableProvider + `
provider "pgreplication" {
  alias           = "other"
  host            = "127.0.0.1"
  port            = 1
  connect_timeout = 1
}
`
	// routerConfig renders a resource whose primary is named after it.
	routerConfig := func(name, provider, path string) string {
		p := ""
		if provider != "" {
			p = "\n  provider = " + provider
		}
		return fmt.Sprintf(`
resource "pgreplication_router_config" %[1]q {%[2]s
  path = %[3]s
  primary {
    name = "primary-%[1]s"
    host = "10.0.0.1"
  }
}
`, name, p, path)
	}
	refused := regexp.MustCompile(`Error: Router File Already Exists(?s:.*)a\s+router\s+file\s+whose\s+primary\s+node\s+is\s+"primary-`)
	apply := []string{"apply", "-auto-approve", "-input=false", "-no-color"}
	unchanged := func(file string, want []byte) {
		t.Helper()
		if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s changed (%v): %s, want %s", file, err, got, want)
		}
	}

	t.Run("two provider configurations", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "router.json")
		writeFile(t, filepath.Join(dir, "main.tf"), providers+
			routerConfig("a", "", fmt.Sprintf("%q", file))+
			routerConfig("b", "pgreplication.other", fmt.Sprintf("%q", file)))
		defer cli.exec(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
		code, out := cli.exec(t, dir, apply...)
		if code == 0 || !refused.MatchString(out) {
			t.Fatalf("apply of two resources of two provider configurations writing one file exited %d; want the second one refused:\n%s", code, out)
		}
		written := routerFilePrimary(t, file).Name
		state := cli.run(t, dir, 0, "state", "list")
		if n := strings.Count(state, "pgreplication_router_config."); n != 1 || !strings.Contains(state, "."+strings.TrimPrefix(written, "primary-")+"\n") {
			t.Fatalf("the file holds %s's topology, and the state lists:\n%s", written, state)
		}
		before, _ := os.ReadFile(file)
		code, out = cli.exec(t, dir, apply...)
		if code == 0 || !refused.MatchString(out) {
			t.Fatalf("a second apply exited %d; want the refusal again:\n%s", code, out)
		}
		unchanged(file, before)
	})

	// appliedA applies resource a alone in a new directory, whose file it
	// returns with its bytes and a's configuration. The caller destroys.
	appliedA := func(t *testing.T) (dir, file, a string, before []byte) {
		dir = t.TempDir()
		file = filepath.Join(dir, "router.json")
		a = providers + routerConfig("a", "", fmt.Sprintf("%q", file))
		writeFile(t, filepath.Join(dir, "main.tf"), a)
		cli.run(t, dir, 0, apply...)
		before, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return dir, file, a, before
	}

	t.Run("-target", func(t *testing.T) {
		dir, file, a, before := appliedA(t)
		defer cli.exec(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
		writeFile(t, filepath.Join(dir, "main.tf"), a+routerConfig("b", "", fmt.Sprintf("%q", file)))
		// Planned together, the two are refused at plan time.
		if out := cli.run(t, dir, 1, "plan", "-input=false", "-no-color"); !strings.Contains(out, "Router File Written by Two Resources") {
			t.Fatalf("plan of both:\n%s", out)
		}
		target := "-target=pgreplication_router_config.b"
		if out := cli.run(t, dir, 0, "plan", "-input=false", "-no-color", target); !strings.Contains(out, "Warning: Router File Already Exists") {
			t.Fatalf("plan %s does not warn:\n%s", target, out)
		}
		code, out := cli.exec(t, dir, append(apply, target)...)
		if code == 0 || !refused.MatchString(out) {
			t.Fatalf("apply %s exited %d; want b refused:\n%s", target, code, out)
		}
		unchanged(file, before)
	})

	t.Run("path known at apply", func(t *testing.T) {
		dir, file, a, before := appliedA(t)
		defer cli.exec(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
		writeFile(t, filepath.Join(dir, "main.tf"), a+`
resource "terraform_data" "name" {
  input = "router.json"
}
`+routerConfig("b", "", fmt.Sprintf(`"%s/${terraform_data.name.output}"`, dir)))
		code, out := cli.exec(t, dir, apply...)
		if code == 0 || !refused.MatchString(out) {
			t.Fatalf("apply of b, whose path is known only at apply, exited %d; want b refused:\n%s", code, out)
		}
		unchanged(file, before)
	})
}

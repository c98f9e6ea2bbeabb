package routerlib_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbiddenForRouterlib are import-path prefixes that must never reach an
// application through routerlib: the provider and the Terraform plugin
// libraries it compiles in.
var forbiddenForRouterlib = []string{
	"github.com/hashicorp/terraform-plugin-",
	"github.com/pgreplication/terraform-provider-pgreplication/provider",
}

// violations returns the packages in deps that routerlib must not depend on.
func violations(deps []string) []string {
	var bad []string
	for _, d := range deps {
		for _, prefix := range forbiddenForRouterlib {
			if strings.HasPrefix(d, prefix) {
				bad = append(bad, d)
			}
		}
	}
	return bad
}

// TestDependencyDirection keeps the architecture: provider → routerlib/artifact,
// routerlib → pgx, never routerlib → provider or terraform-plugin-*. It asks
// the go tool for the real dependency graph (tests included), so an import
// anywhere below routerlib breaks it.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "github.com/pgreplication/terraform-provider-pgreplication/routerlib/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps failed: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned only %d packages; the check would prove nothing:\n%s", len(deps), out)
	}
	if bad := violations(deps); len(bad) > 0 {
		t.Errorf("routerlib depends on packages applications must not compile:\n  %s\nMove the shared code into routerlib/artifact or invert the import.", strings.Join(bad, "\n  "))
	}
}

// TestViolationsDetectsForbiddenImports proves the check can fail.
func TestViolationsDetectsForbiddenImports(t *testing.T) {
	deps := []string{
		"fmt",
		"github.com/jackc/pgx/v5",
		"github.com/hashicorp/terraform-plugin-framework/resource",
		"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql",
		"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact",
	}
	got := violations(deps)
	if len(got) != 2 || got[0] != deps[2] || got[1] != deps[3] {
		t.Errorf("violations = %v, want the terraform-plugin and provider packages", got)
	}
}

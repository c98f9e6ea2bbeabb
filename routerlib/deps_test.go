package routerlib_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenForRouterlib are import-path prefixes that must never reach an
// application through routerlib or routerlib/stdlib: the provider and the
// Terraform libraries it compiles in, and the ORMs routerlib/stdlib is
// tested with (those tests live in their own module, routerlib/stdlib/compat).
var forbiddenForRouterlib = []string{
	"github.com/hashicorp/terraform",
	"github.com/pgreplication/terraform-provider-pgreplication/provider",
	"gorm.io/",
	"github.com/jmoiron/sqlx",
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
// routerlib → pgx, never routerlib (routerlib/stdlib included) → provider,
// Terraform's libraries, GORM or sqlx. It asks the go tool for the real
// dependency graph (tests included), so an import anywhere below routerlib
// breaks it; routerlib/stdlib/compat is a module of its own and not below it.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "github.com/pgreplication/terraform-provider-pgreplication/routerlib/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps failed: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned only %d packages; the check would prove nothing:\n%s", len(deps), out)
	}
	if !slices.Contains(deps, "github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib") {
		t.Fatalf("go list -deps does not list routerlib/stdlib; the check would not cover it")
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
		"github.com/hashicorp/terraform-json",
		"gorm.io/gorm",
		"github.com/jmoiron/sqlx",
		"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib",
	}
	got := violations(deps)
	want := []string{deps[2], deps[3], deps[5], deps[6], deps[7]}
	if !slices.Equal(got, want) {
		t.Errorf("violations = %v, want %v", got, want)
	}
}

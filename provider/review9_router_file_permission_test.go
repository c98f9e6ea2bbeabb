package provider

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A router file in a directory the user running Terraform may not write
// is refused with what to do, not just the system's "permission denied":
// the provider writes a temporary file beside it and renames it over, so
// the directory must be writable (root ignores modes: there the directory
// is made immutable, which refuses root too). Before, the error ended with
// "operation not permitted" and named no fix.
func TestRouterConfig_review9UnwritableDirectoryNamesTheFix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locked")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Skipf("root, and chattr +i %s failed (%v: %s): no directory root cannot write", dir, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
	} else {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{{
			Config:      routerConfigGolden(filepath.Join(dir, "router.json"), 50),
			ExpectError: errorText("Cannot Write Router File", "the file on disk is unchanged", "give it write permission on that directory", "then apply again"),
		}},
	})
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the locked directory holds %d entries, want none", len(entries))
	}
}

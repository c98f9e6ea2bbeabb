package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/atomicfile"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

const routerConfigAddr = "pgreplication_router_config.test"

// goldenRouterFile is the format's golden file; routerConfigGolden mirrors it.
const goldenRouterFile = "../routerlib/artifact/testdata/topology.golden.json"

// unreachableProvider is a provider block whose server does not exist: the
// router file resource must not need it.
const unreachableProvider = `
provider "pgreplication" {
  host            = "127.0.0.1"
  port            = 1
  connect_timeout = 1
}
`

// routerConfigGolden renders a configuration that mirrors
// topology.golden.json, with replica-2's weight as a parameter.
func routerConfigGolden(file string, replica2Weight int) string {
	pathLine := ""
	if file != "" {
		pathLine = fmt.Sprintf("path = %q", file)
	}
	return unreachableProvider + fmt.Sprintf(`
resource "pgreplication_router_config" "test" {
  %s

  primary {
    name         = "primary"
    host         = "127.0.0.1"
    port         = 5432
    database     = "app"
    user         = "app"
    sslmode      = "disable"
    password_env = "PGREPLICATION_APP_PASSWORD"
    zone         = "eu-west-1a"
  }

  replica {
    name          = "replica-1"
    host          = "127.0.0.1"
    port          = 5433
    database      = "app"
    user          = "app"
    sslmode       = "disable"
    password_env  = "PGREPLICATION_APP_PASSWORD"
    zone          = "eu-west-1a"
    weight        = 100
    max_lag       = "10s"
    max_lag_bytes = 16777216
    synchronous   = true
  }

  replica {
    name          = "replica-2"
    host          = "127.0.0.1"
    port          = 5434
    database      = "app"
    user          = "app"
    sslmode       = "disable"
    password_env  = "PGREPLICATION_APP_PASSWORD"
    zone          = "eu-west-1b"
    weight        = %d
    max_lag       = "30s"
    max_lag_bytes = 67108864
  }

  read_policy {
    strategy = "weighted"
    fallback = "primary"
  }

  consistency {
    mode         = "read_your_writes"
    wait_timeout = "200ms"
  }

  health {
    interval        = "1s"
    timeout         = "500ms"
    connect_timeout = "2s"
    eject_after     = 3
    readmit_after   = 2
  }

  route {
    name     = "analytics"
    nodes    = ["replica-2"]
    strategy = "round_robin"
    fallback = "error"
  }

  pool {
    max_conns         = 10
    min_conns         = 1
    max_conn_lifetime = "30m"
  }
}
`, pathLine, replica2Weight)
}

// replaceTriggered adds to a configuration of routerConfigAddr a
// terraform_data whose input is trigger, and makes a change of it replace
// the resource (replace_triggered_by): what -replace does, which
// terraform-plugin-testing cannot pass.
func replaceTriggered(config, trigger string) string {
	return strings.Replace(config, `resource "pgreplication_router_config" "test" {`, fmt.Sprintf(`resource "terraform_data" "trigger" {
  input = %q
}

resource "pgreplication_router_config" "test" {
  lifecycle {
    replace_triggered_by = [terraform_data.trigger]
  }
`, trigger), 1)
}

// goldenWith returns the golden topology's canonical bytes with replica-2
// changed by edit: the expectation for a file, built with artifact itself.
func goldenWith(t *testing.T, edit func(n *artifact.Node)) []byte {
	t.Helper()
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := artifact.Parse(golden)
	if err != nil {
		t.Fatal(err)
	}
	for i := range topo.Nodes {
		if topo.Nodes[i].Name == "replica-2" {
			edit(&topo.Nodes[i])
		}
	}
	data, err := artifact.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fileEquals checks that the file holds exactly want, with mode perm.
func fileEquals(file string, want []byte, perm os.FileMode) tfresource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s holds\n%s\nwant\n%s", file, got, want)
		}
		fi, err := os.Stat(file)
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != perm {
			return fmt.Errorf("%s has mode %04o, want %04o", file, fi.Mode().Perm(), perm)
		}
		return nil
	}
}

// editRouterFile changes the router file by hand, through artifact.
func editRouterFile(t *testing.T, file string, edit func(topo *artifact.Topology)) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := artifact.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	edit(&topo)
	if data, err = artifact.Marshal(topo); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

// expectFieldChange asserts that the plan changes the value at p of the
// resource at addr from before to after: the exact field a hand edit
// changed, not just the top-level attribute that holds it.
func expectFieldChange(addr string, p tfjsonpath.Path, before, after string) plancheck.PlanCheck {
	return fieldChangeCheck{addr, p, before, after}
}

type fieldChangeCheck struct {
	addr          string
	path          tfjsonpath.Path
	before, after string
}

func (c fieldChangeCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != c.addr {
			continue
		}
		b, err := tfjsonpath.Traverse(rc.Change.Before, c.path)
		if err != nil {
			resp.Error = fmt.Errorf("%s before: %w", c.addr, err)
			return
		}
		a, err := tfjsonpath.Traverse(rc.Change.After, c.path)
		if err != nil {
			resp.Error = fmt.Errorf("%s after: %w", c.addr, err)
			return
		}
		if fmt.Sprint(b) != c.before || fmt.Sprint(a) != c.after {
			resp.Error = fmt.Errorf("%s %s changes from %v to %v, want %s to %s", c.addr, c.path, b, a, c.before, c.after)
		}
		return
	}
	resp.Error = fmt.Errorf("%s: not in the plan", c.addr)
}

// The life of a router file: create (byte for byte the golden file, mode
// 0640, no secret), import by path, update in place, and every kind of
// drift: a field edited by hand, a chmod, a deleted file, a file that no
// longer parses. The provider's server is unreachable throughout.
func TestAccRouterConfig_basic(t *testing.T) {
	testAccPreCheck(t)
	const secret = "s3cret-router-config-password"
	t.Setenv("PGREPLICATION_APP_PASSWORD", secret)
	dir := t.TempDir()
	file := filepath.Join(dir, "router.json")
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	updated := goldenWith(t, func(n *artifact.Node) { n.Weight = 75 })

	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				Config: routerConfigGolden(file, 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// The exact bytes are in the plan, before anything is written.
					plancheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("content"), knownvalue.StringExact(string(golden))),
				}},
				Check: tfresource.ComposeTestCheckFunc(
					fileEquals(file, golden, 0o640),
					func(*terraform.State) error {
						data, _ := os.ReadFile(file)
						if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte(`"password"`)) {
							return fmt.Errorf("the router file holds a password:\n%s", data)
						}
						return nil
					},
				),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("id"), knownvalue.StringExact(file)),
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("file_permission"), knownvalue.StringExact("0640")),
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("content"), knownvalue.StringExact(string(golden))),
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("sha256"), knownvalue.StringExact(sha256Hex(golden))),
				},
			},
			{
				ResourceName:      routerConfigAddr,
				ImportState:       true,
				ImportStateId:     file,
				ImportStateVerify: true,
			},
			{
				Config: routerConfigGolden(file, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
					expectFieldChange(routerConfigAddr, tfjsonpath.New("replica").AtSliceIndex(1).AtMapKey("weight"), "50", "75"),
					plancheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("content"), knownvalue.StringExact(string(updated))),
				}},
				Check: fileEquals(file, updated, 0o640),
			},
			{
				// A hand edit of one field: the plan names it. content and
				// sha256 change with it, because they are the file's bytes.
				PreConfig: func() {
					editRouterFile(t, file, func(topo *artifact.Topology) {
						for i := range topo.Nodes {
							if topo.Nodes[i].Name == "replica-2" {
								topo.Nodes[i].MaxLag = "45s"
							}
						}
					})
				},
				Config: routerConfigGolden(file, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(routerConfigAddr, "replica", "content", "sha256"),
					expectFieldChange(routerConfigAddr, tfjsonpath.New("replica").AtSliceIndex(1).AtMapKey("max_lag"), "45s", "30s"),
					plancheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("replica").AtSliceIndex(1).AtMapKey("max_lag"), knownvalue.StringExact("30s")),
				}},
				Check: fileEquals(file, updated, 0o640),
			},
			{
				// The same for the health block's connect_timeout.
				PreConfig: func() {
					editRouterFile(t, file, func(topo *artifact.Topology) { topo.Health.ConnectTimeout = "10s" })
				},
				Config: routerConfigGolden(file, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(routerConfigAddr, "health", "content", "sha256"),
					expectFieldChange(routerConfigAddr, tfjsonpath.New("health").AtMapKey("connect_timeout"), "10s", "2s"),
				}},
				Check: fileEquals(file, updated, 0o640),
			},
			{
				PreConfig: func() {
					if err := os.Chmod(file, 0o600); err != nil {
						t.Fatal(err)
					}
				},
				Config: routerConfigGolden(file, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(routerConfigAddr, "file_permission"),
					expectFieldChange(routerConfigAddr, tfjsonpath.New("file_permission"), "0600", "0640"),
				}},
				Check: fileEquals(file, updated, 0o640),
			},
			{
				PreConfig: func() {
					if err := os.Remove(file); err != nil {
						t.Fatal(err)
					}
				},
				Config: routerConfigGolden(file, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectRecreate(routerConfigAddr),
				}},
				Check: fileEquals(file, updated, 0o640),
			},
			{
				// The file no longer parses: Read warns (see
				// TestRouterConfigRead_unparseableFileWarns) and the plan
				// rewrites it in place.
				PreConfig: func() {
					if err := os.WriteFile(file, []byte("{\"format_version\": 1, \"nodes\": [ garbage"), 0o640); err != nil {
						t.Fatal(err)
					}
				},
				Config: routerConfigGolden(file, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
				}},
				Check: tfresource.ComposeTestCheckFunc(
					fileEquals(file, updated, 0o640),
					func(*terraform.State) error { return onlyRouterFile(dir, "router.json") },
				),
			},
		},
	})
}

// onlyRouterFile fails unless dir holds exactly the named entries: an
// atomic write leaves no temporary file behind.
func onlyRouterFile(dir string, want ...string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return fmt.Errorf("%s holds %q, want only %q", dir, got, want)
	}
	return nil
}

// Without a path the resource only computes content, for shipping the file
// another way; it writes nothing.
func TestAccRouterConfig_contentOnly(t *testing.T) {
	testAccPreCheck(t)
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	updated := goldenWith(t, func(n *artifact.Node) { n.Weight = 60 })
	dir := t.TempDir()
	t.Chdir(dir)
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				Config: routerConfigGolden("", 50),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("content"), knownvalue.StringExact(string(golden))),
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("id"), knownvalue.StringExact(sha256Hex(golden))),
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("path"), knownvalue.Null()),
				},
				Check: func(*terraform.State) error { return onlyRouterFile(dir) },
			},
			{
				Config: routerConfigGolden("", 60),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("content"), knownvalue.StringExact(string(updated))),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("sha256"), knownvalue.StringExact(sha256Hex(updated))),
				},
				Check: func(*terraform.State) error { return onlyRouterFile(dir) },
			},
		},
	})
}

// routerConfigMinimal renders a resource with a primary, one replica, and
// extra HCL inside the resource block.
func routerConfigMinimal(file, replica, extra string) string {
	return unreachableProvider + fmt.Sprintf(`
resource "pgreplication_router_config" "test" {
  path = %q
  primary {
    name = "primary"
    host = "127.0.0.1"
  }
  replica {
    name = "replica-1"
    host = "127.0.0.2"
    %s
  }
  %s
}
`, file, replica, extra)
}

// Every problem artifact's Validate finds is an error on the attribute that
// causes it, at plan time, before anything is written.
func TestAccRouterConfig_validation(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	file := filepath.Join(t.TempDir(), "router.json")
	step := func(replica, extra, want string) tfresource.TestStep {
		return tfresource.TestStep{
			Config:   routerConfigMinimal(file, replica, extra),
			PlanOnly: true,
			// Terraform wraps long lines anywhere.
			ExpectError: regexp.MustCompile(strings.ReplaceAll(want, " ", `\s+`)),
		}
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			step("", `
  replica {
    name = "replica-1"
    host = "10.0.0.2"
  }`, `replica "replica-1": replica\[1\]\.name: duplicate node name "replica-1", also used by\s+replica\[0\]`),
			step("", `
  route {
    name  = "analytics"
    nodes = ["replica-1", "replica-9"]
  }`, `route "analytics": route\[0\]\.nodes\[1\]: unknown node "replica-9"; the nodes are:\s+primary, replica-1`),
			// The primary listed again as a replica: the router would see
			// two primaries and take no writes.
			step("", `
  replica {
    name = "primary-reads"
    host = "127.0.0.1"
  }`, `replica "primary-reads": replica\[1\]\.host: node "primary-reads" reaches the same server as primary "primary"`),
			step(`max_lag = "10 seconds"`, "", `replica "replica-1": replica\[0\]\.max_lag: invalid duration "10\s+seconds"`),
			step(`weight = -1`, "", `replica "replica-1": replica\[0\]\.weight: weight -1 is out of range`),
			step(`weight = 0`, "", `replica\[0\]\.weight = 0 cannot be expressed in the router file`),
			step(`password_env = "hunter2"`, "", `password_env Looks Like a Password`),
			step(`password_env = "NOT-A-NAME"`, "", `replica\[0\]\.password_env: is not an environment variable name`),
			// A password typed into user would show in every connection
			// error the router logs; the plan refuses it, never showing it.
			step(`user = "app:Canary7f3a"`, "", `replica "replica-1": replica\[0\]\.user: user holds ':', '=' or white space`),
			step(`user = "app password=Canary7f3a"`, "", `replica\[0\]\.user: user holds ':', '=' or white space`),
			step(`sslmode = "sometimes"`, "", `value must be one of`),
			step("", `read_policy {
    strategy = "nearest_zone"
  }`, `the read_policy block: read_policy.strategy: strategy "nearest_zone" needs zones, but no node has one`),
			step("", `health {
    interval = "-1s"
  }`, `the health block: health\.interval: duration "-1s" must be greater than zero`),
			step("", `consistency {
    wait_timeout = "-1s"
  }`, `the consistency block: consistency\.wait_timeout: duration "-1s" is negative`),
			{
				// 0s is valid: read_your_writes reads go to the primary at
				// once when no replica has replayed the write.
				Config: routerConfigMinimal(file, "", `consistency {
    mode         = "read_your_writes"
    wait_timeout = "0s"
  }`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			// Two primaries cannot even be written: primary is a single block.
			step("", `primary {
    name = "second"
    host = "10.0.0.9"
  }`, `Duplicate primary block`),
			{
				Config: unreachableProvider + fmt.Sprintf(`
resource "pgreplication_router_config" "test" {
  path = %q
}`, file),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Block primary must have a configuration value`),
			},
		},
	})
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a refused configuration wrote %s", file)
	}
}

// A reader polling the file during several applies never sees a partial
// file: every read parses. No temporary file is left behind.
func TestAccRouterConfig_concurrentReader(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "router.json")
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			data, err := os.ReadFile(file)
			if os.IsNotExist(err) {
				continue // before the first apply
			}
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if _, err := artifact.Parse(data); err != nil {
				t.Errorf("the reader saw a file that does not parse: %v\n%s", err, data)
				return
			}
			reads.Add(1)
			time.Sleep(100 * time.Microsecond) // poll hard, but leave the CPUs to the applies
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	var steps []tfresource.TestStep
	for _, w := range []int{50, 51, 52, 53, 54, 55} {
		steps = append(steps, tfresource.TestStep{
			Config: routerConfigGolden(file, w),
			Check:  func(*terraform.State) error { return onlyRouterFile(dir, "router.json") },
		})
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    steps,
	})
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("the reader never read the file")
	}
	t.Logf("%d reads during the applies, every one a whole router file", reads.Load())
}

// Names with dots, slashes, quotes, spaces, upper case and non-ASCII, in the
// nodes, the route and the path itself, apply, show no diff and import.
func TestAccRouterConfig_hostileNames(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	dir := filepath.Join(t.TempDir(), "Conf dir é")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, `router "main".json`)
	config := unreachableProvider + fmt.Sprintf(`
resource "pgreplication_router_config" "test" {
  path = %q
  primary {
    name = "Primary.eu/1 \"main\""
    host = "db-1.internal"
  }
  replica {
    name = "Réplica 2/b.x"
    host = "/var/run/postgresql"
    zone = "zone \"b\""
  }
  route {
    name  = "Analytics/Über \"ro\""
    nodes = ["Primary.eu/1 \"main\"", "Réplica 2/b.x"]
  }
}
`, file)
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				Config: config,
				Check: func(*terraform.State) error {
					topo, err := artifact.Load(file)
					if err != nil {
						return err
					}
					if topo.Nodes[1].Name != "Réplica 2/b.x" || topo.Routes[0].Name != `Analytics/Über "ro"` {
						return fmt.Errorf("unexpected topology %+v", topo)
					}
					return nil
				},
			},
			{
				ResourceName:      routerConfigAddr,
				ImportState:       true,
				ImportStateId:     file,
				ImportStateVerify: true,
			},
		},
	})
}

// A file that no longer parses keeps the declared attributes in state, puts
// a placeholder in content (which the plan then rewrites), never the bytes
// found, and warns with the reason, naming the field. A file someone typed a
// password into is the case that matters: the state must not keep it.
// terraform-plugin-testing cannot see warnings, so Read is called directly.
func TestRouterConfigRead_unparseableFileWarns(t *testing.T) {
	ctx := context.Background()
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	const canary = "canary-router-s3cret"
	withPassword := bytes.Replace(golden, []byte(`"role": "replica",`), []byte(`"role": "replica", "password": "`+canary+`",`), 1)
	withURI := bytes.Replace(golden, []byte(`"host": "127.0.0.1",
      "port": 5433`), []byte(`"host": "postgres://app:`+canary+`@127.0.0.1/app",
      "port": 5433`), 1)
	for _, tc := range []struct {
		name   string
		data   []byte
		reason string
	}{
		{"not UTF-8", []byte("{not json\xff"), "not valid UTF-8"},
		{"password field", withPassword, "nodes[1].password: password field not allowed"},
		{"password in a URI", withURI, "nodes[1].host: password field not allowed"},
		{"password as password_env", bytes.Replace(golden, []byte(`"PGREPLICATION_APP_PASSWORD"`), []byte(`"`+canary+`"`), 1), "nodes[0].password_env"},
		{"lower-case password_env", bytes.Replace(golden, []byte(`"PGREPLICATION_APP_PASSWORD"`), []byte(`"`+strings.ReplaceAll(canary, "-", "_")+`"`), 1), "nodes[0].password_env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.data, golden) {
				t.Fatal("the golden file changed: the test no longer adds its secret")
			}
			file := filepath.Join(t.TempDir(), "router.json")
			if err := os.WriteFile(file, tc.data, 0o640); err != nil {
				t.Fatal(err)
			}
			r := &routerConfigResource{}
			var sr resource.SchemaResponse
			r.Schema(ctx, resource.SchemaRequest{}, &sr)
			prior, why := routerModelFromFile(ctx, golden, routerConfigModel{})
			if why != nil {
				t.Fatal(why)
			}
			prior.ID, prior.Path, prior.FilePermission = types.StringValue(file), types.StringValue(file), types.StringValue("0640")
			prior.Content, prior.SHA256 = types.StringValue(string(golden)), types.StringValue(sha256Hex(golden))
			state := tfsdk.State{Schema: sr.Schema}
			if d := state.Set(ctx, &prior); d.HasError() {
				t.Fatal(d)
			}
			resp := resource.ReadResponse{State: state}
			r.Read(ctx, resource.ReadRequest{State: state}, &resp)
			if resp.Diagnostics.HasError() {
				t.Fatal(resp.Diagnostics)
			}
			warnings := resp.Diagnostics.Warnings()
			if len(warnings) != 1 || warnings[0].Summary() != "Router File Does Not Parse" ||
				!strings.Contains(warnings[0].Detail(), file) || !strings.Contains(warnings[0].Detail(), tc.reason) {
				t.Fatalf("warnings %v, want one naming the file and %q", warnings, tc.reason)
			}
			if strings.Contains(warnings[0].Detail(), canary) {
				t.Errorf("the warning shows the secret: %s", warnings[0].Detail())
			}
			var got routerConfigModel
			if d := resp.State.Get(ctx, &got); d.HasError() {
				t.Fatal(d)
			}
			if !got.Replica.Equal(prior.Replica) || !got.Primary.Equal(prior.Primary) {
				t.Fatal("Read changed the declared attributes of a file that does not parse")
			}
			if got.Content.ValueString() != unparsedRouterFileContent(file) || got.SHA256.ValueString() != sha256Hex(tc.data) {
				t.Fatalf("content %q, sha256 %s: want the placeholder and the hash of the bytes on disk", got.Content.ValueString(), got.SHA256.ValueString())
			}
		})
	}
}

// Problem paths of artifact map to the blocks routerTopologyFromModel built
// the topology from.
func TestRouterProblemPath(t *testing.T) {
	topo := artifact.Topology{
		Nodes:  []artifact.Node{{Name: "p"}, {Name: "r1"}, {Name: "r2"}},
		Routes: []artifact.Route{{Name: "a"}},
	}
	for problem, want := range map[string]struct{ path, object string }{
		"nodes[0].host":          {"primary.host", `primary "p"`},
		"nodes[2].max_lag":       {"replica[1].max_lag", `replica "r2"`},
		"nodes[1]":               {"replica[0]", `replica "r1"`},
		"nodes[1].role":          {"replica[0]", `replica "r1"`},
		"nodes":                  {"primary", "the nodes"},
		"routes[0].nodes[1]":     {"route[0].nodes[1]", `route "a"`},
		"routes[0].strategy":     {"route[0].strategy", `route "a"`},
		"read_policy.strategy":   {"read_policy.strategy", "the read_policy block"},
		"pool.max_conn_lifetime": {"pool.max_conn_lifetime", "the pool block"},
	} {
		p, object := routerProblemPath(topo, problem)
		if p.String() != want.path || object != want.object {
			t.Errorf("%s: got %s (%s), want %s (%s)", problem, p, object, want.path, want.object)
		}
	}
	if p, _ := routerProblemPath(topo, "format_version"); !p.Equal(path.Empty()) {
		t.Errorf("format_version: got %s, want the resource", p)
	}
}

// A new path is an update: the new file is written, then the old one
// removed. A missing directory is an error naming it, and nothing is
// created. Under create_before_destroy, a file that no longer parses is
// rewritten in place (an update), and a replacement at the same path
// (replace_triggered_by) writes its content over the old object's file,
// which the old object's destroy then leaves: whether the content is
// unchanged, changed, or the file was corrupted by hand (the plan records
// the replacement in the user's cache directory for its apply:
// routerFileReplacement). A replacement planned and never applied leaves
// no record once the resource is planned again, and the same change
// without create_before_destroy applies (destroy, then create).
func TestAccRouterConfig_replace(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	missing := filepath.Join(dir, "missing")
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	// cbd: create_before_destroy, and a replacement whenever trigger
	// changes.
	cbd := func(file, trigger string, weight int) string {
		return strings.Replace(replaceTriggered(routerConfigGolden(file, weight), trigger), "  lifecycle {", "  lifecycle {\n    create_before_destroy = true", 1)
	}
	weight75 := goldenWith(t, func(n *artifact.Node) { n.Weight = 75 })
	// onlySecond: b.json holds the golden file and is the only file.
	onlySecond := tfresource.ComposeTestCheckFunc(
		fileEquals(second, golden, 0o640),
		func(*terraform.State) error { return onlyRouterFile(dir, "b.json") },
	)
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				Config:      routerConfigGolden(filepath.Join(missing, "router.json"), 50),
				ExpectError: errorText("directory " + missing + " does not exist; create it"),
			},
			{
				Config: routerConfigGolden(first, 50),
				Check:  fileEquals(first, golden, 0o640),
			},
			// A new path in a directory that does not exist: the write fails
			// and the file the application reads is still there. (It was
			// a replacement, whose destroy removed the old file first.)
			{
				Config:      routerConfigGolden(filepath.Join(missing, "b.json"), 50),
				ExpectError: errorText("directory " + missing + " does not exist; create it"),
			},
			{
				Config: routerConfigGolden(first, 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: fileEquals(first, golden, 0o640),
			},
			// A new path is written first, then the old file is removed.
			{
				Config: routerConfigGolden(second, 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
				}},
				Check: onlySecond,
			},
			// The same file under another spelling of its path: nothing is
			// removed.
			{
				Config: routerConfigGolden(dir+"/./b.json", 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
				}},
				Check: fileEquals(second, golden, 0o640),
			},
			{
				Config: routerConfigGolden(second, 50),
				Check:  fileEquals(second, golden, 0o640),
			},
			{
				Config: cbd(second, "1", 50),
			},
			{
				PreConfig: func() {
					if err := os.WriteFile(second, []byte("garbage\n"), 0o640); err != nil {
						t.Fatal(err)
					}
				},
				Config: cbd(second, "1", 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
				}},
				Check: onlySecond,
			},
			{
				Config: cbd(second, "2", 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionCreateBeforeDestroy),
				}},
				Check: onlySecond,
			},
			// One whose content also changes writes the new content over
			// the old object's file, whose destroy leaves it (old code:
			// refused, "Router File Already Exists").
			{
				Config: cbd(second, "3", 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionCreateBeforeDestroy),
				}},
				Check: tfresource.ComposeTestCheckFunc(
					fileEquals(second, weight75, 0o640),
					func(*terraform.State) error { return onlyRouterFile(dir, "b.json") },
					noReplacementRecord(second),
				),
			},
			// The same over a file corrupted by hand, which the refresh
			// shows (old code: the apply's second plan refused it and
			// dropped the old object from the state, so the next plan was
			// a create, refused for ever).
			{
				PreConfig: func() {
					if err := os.WriteFile(second, []byte("garbage\n"), 0o640); err != nil {
						t.Fatal(err)
					}
				},
				Config: cbd(second, "4", 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionCreateBeforeDestroy),
				}},
				Check: tfresource.ComposeTestCheckFunc(onlySecond, noReplacementRecord(second)),
			},
			// A replacement planned and never applied: its record is
			// dropped by the resource's next plan that does not replace it
			// (old code: left for ever, permitting the write).
			{
				Config:             cbd(second, "5", 75),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: func() {
					target, err := canonicalRouterPath(second)
					if err != nil {
						t.Fatal(err)
					}
					if rec, err := loadRouterReplacement(target); rec == nil || err != nil {
						t.Fatalf("the plan of the replacement recorded nothing: %v", err)
					}
				},
				Config: cbd(second, "4", 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: tfresource.ComposeTestCheckFunc(onlySecond, noReplacementRecord(second)),
			},
			{
				// Without create_before_destroy the same change replaces
				// it too: destroy, then create.
				Config: replaceTriggered(routerConfigGolden(second, 75), "5"),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: tfresource.ComposeTestCheckFunc(
					fileEquals(second, weight75, 0o640),
					func(*terraform.State) error { return onlyRouterFile(dir, "b.json") },
					noReplacementRecord(second),
				),
			},
		},
		CheckDestroy: func(*terraform.State) error { return onlyRouterFile(dir) },
	})
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the provider created %s", missing)
	}
}

// A create_before_destroy replacement whose content is not known at plan
// (here its host comes from the replaced terraform_data) is refused at
// apply, before anything is written, saying why and what to do, and the old
// object stays: a record permits writing only the planned bytes over the old
// object's file, and this plan has none, so it records nothing (and warns).
// Old code: it recorded the replacement without them, which let the apply
// write any content over that file. Without create_before_destroy the same
// change applies (destroy, then create).
func TestAccRouterConfig_replaceContentUnknownAtPlan(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	file := filepath.Join(t.TempDir(), "router.json")
	config := func(host, lifecycle string) string {
		return unreachableProvider + fmt.Sprintf(`
resource "terraform_data" "host" {
  input = %q
}

resource "pgreplication_router_config" "test" {
  path = %q
  primary {
    name = "primary"
    host = terraform_data.host.output
  }
  lifecycle {
    replace_triggered_by = [terraform_data.host]%s
  }
}
`, host, file, lifecycle)
	}
	const cbd = "\n    create_before_destroy = true"
	hostIs := func(want string) tfresource.TestCheckFunc {
		return func(*terraform.State) error {
			topo, err := artifact.Load(file)
			if err != nil {
				return err
			}
			if got := topo.Nodes[0].Host; got != want {
				return fmt.Errorf("%s: host %s, want %s", file, got, want)
			}
			return nil
		}
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{Config: config("10.0.0.1", cbd), Check: hostIs("10.0.0.1")},
			{
				Config: config("10.0.0.2", cbd),
				ExpectError: errorText("Router File Already Exists", "where a file that this resource did not write already is: a router file whose primary node is \"primary\"",
					"nothing is written", "if the content was not known at plan, apply first what it depends on (-target), then plan again", "The old object stays in the state"),
			},
			{
				PreConfig: func() {
					if err := hostIs("10.0.0.1")(nil); err != nil {
						t.Fatalf("after the refused apply: %v", err)
					}
				},
				Config: config("10.0.0.2", ""),
				Check:  tfresource.ComposeTestCheckFunc(hostIs("10.0.0.2"), noReplacementRecord(file)),
			},
		},
	})
}

// The record of a create_before_destroy replacement lets the apply write
// over a router file, so one kept where another user could write it or
// redirect it is never used (XDG_CACHE_HOME may name a shared directory):
// a record directory that is a symbolic link, that its group or others may
// write or that another user owns, and a record file that is a symbolic
// link, are each refused at plan with an error naming the path and the fix,
// and nothing is written. Old code: each plan recorded the replacement
// there and the apply wrote the file.
func TestAccRouterConfig_replacementRecordUnsafe(t *testing.T) {
	testAccPreCheck(t)
	kinds := []struct {
		name string
		// unsafe makes cache's record directories unsafe for the file
		// at target, and returns the path the error names and why.
		unsafe func(t *testing.T, cache, target string) (name, why string)
	}{
		{"directorySymlink", func(t *testing.T, cache, _ string) (string, string) {
			elsewhere := t.TempDir()
			link := filepath.Join(cache, "terraform-provider-pgreplication")
			if err := os.Symlink(elsewhere, link); err != nil {
				t.Fatal(err)
			}
			return link, "is a symbolic link"
		}},
		{"groupWritable", func(t *testing.T, cache, _ string) (string, string) {
			dir := filepath.Join(cache, "terraform-provider-pgreplication", "router-file-replacements")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
			return dir, "may be written by its group or by others (mode 0770)"
		}},
		{"anotherOwner", func(t *testing.T, cache, _ string) (string, string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			dir := filepath.Join(cache, "terraform-provider-pgreplication")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return dir, "is owned by uid 65534, not by the user running Terraform (uid 0)"
		}},
		{"recordSymlink", func(t *testing.T, cache, target string) (string, string) {
			dir := filepath.Join(cache, "terraform-provider-pgreplication", "router-file-replacements")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			record := filepath.Join(dir, sha256Hex([]byte(target))+".json")
			if err := os.Symlink(filepath.Join(t.TempDir(), "record.json"), record); err != nil {
				t.Fatal(err)
			}
			return record, "is a symbolic link"
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			cache := t.TempDir()
			t.Setenv("XDG_CACHE_HOME", cache)
			file := filepath.Join(t.TempDir(), "router.json")
			golden, err := os.ReadFile(goldenRouterFile)
			if err != nil {
				t.Fatal(err)
			}
			cbd := func(trigger string, weight int) string {
				return strings.Replace(replaceTriggered(routerConfigGolden(file, weight), trigger), "  lifecycle {", "  lifecycle {\n    create_before_destroy = true", 1)
			}
			// The create does not use the record directories.
			target, err := canonicalRouterPath(file)
			if err != nil {
				t.Fatal(err)
			}
			name, why := k.unsafe(t, cache, target)
			tfresource.Test(t, tfresource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []tfresource.TestStep{
					{Config: cbd("1", 50), Check: fileEquals(file, golden, 0o640)},
					{
						Config:      cbd("2", 75),
						ExpectError: errorText("Cannot Record Router File Replacement", name+" "+why, "is never used", "Remove "+name, "set XDG_CACHE_HOME to a directory that only the user running Terraform can write"),
					},
					{
						// Nothing was written.
						Config: cbd("1", 50),
						ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectEmptyPlan(),
						}},
						Check: fileEquals(file, golden, 0o640),
					},
				},
			})
		})
	}
}

// When the create of a create_before_destroy replacement wrote over its old
// object's file but could not record that it did (ReplacedBy: a full disk,
// a cache directory made read-only between its read and its write), the
// old object's destroy leaves the new file, and its warning does not tell
// the user to remove it: the application reads it. (The failure between
// the record's read and its update cannot be brought about through the
// CLI, so the destroy is called here as the apply would.) Old code: "Remove
// it by hand if nothing needs it". A path change's removal of the old file
// still says so.
func TestRemoveRouterFileReplacementNotRecorded(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	file := filepath.Join(t.TempDir(), "router.json")
	old, updated := topologyBytes(t, "primary", "10.0.0.1"), topologyBytes(t, "primary", "10.0.0.2")
	if err := atomicfile.Write(file, old, 0o640); err != nil {
		t.Fatal(err)
	}
	cur, err := atomicfile.Read(file)
	if err != nil {
		t.Fatal(err)
	}
	// The plan's record, never updated by the create that used it.
	if err := saveRouterReplacement(routerFileReplacement{Target: currentTarget(cur), FileID: cur.ID, Changed: cur.Changed, SHA256: sha256Hex(old), NewSHA256: sha256Hex(updated)}); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(file, updated, 0o640); err != nil { // the create
		t.Fatal(err)
	}
	state := routerConfigModel{Path: types.StringValue(file), SHA256: types.StringValue(sha256Hex(old))}
	for _, destroy := range []bool{true, false} {
		var diags diag.Diagnostics
		removeRouterFile(state, cur.ID, destroy, &diags)
		if diags.HasError() || diags.WarningsCount() != 1 {
			t.Fatalf("destroy=%v: %v", destroy, diags)
		}
		detail := diags.Warnings()[0].Detail()
		removeIt := strings.Contains(detail, "Remove it by hand")
		if destroy && (removeIt || !strings.Contains(detail, "the file is most likely its new object's, which the application reads: leave it")) {
			t.Errorf("the destroy's warning about the new object's file: %s", detail)
		}
		if !destroy && !removeIt {
			t.Errorf("a path change's warning: %s", detail)
		}
		if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, updated) {
			t.Fatalf("destroy=%v: the new object's file is %q, %v", destroy, got, err)
		}
	}
}

// noReplacementRecord fails when a record of a create_before_destroy
// replacement of the file at name is left (routerFileReplacement): the
// apply that used it, or the destroy after it, removes it.
func noReplacementRecord(name string) tfresource.TestCheckFunc {
	return func(*terraform.State) error {
		target, err := canonicalRouterPath(name)
		if err != nil {
			return err
		}
		rec, err := loadRouterReplacement(target)
		if rec != nil {
			return fmt.Errorf("a record of a replacement of %s is left: %+v", target, *rec)
		}
		return err
	}
}

// A symbolic link at path is kept and written through, as a plain write to
// it would: the file it leads to is replaced atomically in that file's
// directory, so an application reading the file through another link (or by
// its own name) sees each change. The old code renamed over the link,
// turning it into a regular file while the file it led to kept the old
// bytes. The plan after apply is empty, an edit of the file the link leads
// to shows in the plan, path may name the same file without the link, and
// destroy removes the file and keeps the link (Terraform did not make it).
func TestAccRouterConfig_symlinkWrittenThrough(t *testing.T) {
	testAccPreCheck(t)
	dir := t.TempDir()
	shared, app, other := filepath.Join(dir, "shared"), filepath.Join(dir, "app"), filepath.Join(dir, "other")
	for _, d := range []string{shared, app, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(shared, "router.json")
	link := filepath.Join(app, "router.json")
	otherLink := filepath.Join(other, "router.json")
	if err := os.WriteFile(target, []byte("{}\n"), 0o640); err != nil { // what was there before Terraform
		t.Fatal(err)
	}
	if err := os.Symlink("../shared/router.json", link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, otherLink); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	updated := goldenWith(t, func(n *artifact.Node) { n.Weight = 75 })
	// written checks that every reader sees want and that both links and
	// only the one file remain.
	written := func(want []byte) tfresource.TestCheckFunc {
		return func(*terraform.State) error {
			for _, l := range []string{link, otherLink} {
				if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					return fmt.Errorf("%s is no longer a symbolic link (%v, %v)", l, fi.Mode(), err)
				}
			}
			for _, reader := range []string{target, link, otherLink} {
				if err := fileEquals(reader, want, 0o640)(nil); err != nil {
					return err
				}
			}
			return onlyRouterFile(shared, "router.json")
		}
	}
	weight := tfjsonpath.New("replica").AtSliceIndex(1).AtMapKey("weight")
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				// What was there before Terraform is not this resource's:
				// refused, naming the file the link leads to.
				Config:      routerConfigGolden(link, 50),
				ExpectError: errorText("Router File Already Exists", target+" (where "+link+" leads)", "not a router file"),
			},
			{
				PreConfig: func() {
					if got, err := os.ReadFile(target); err != nil || string(got) != "{}\n" {
						t.Errorf("the refused plan changed %s: %q, %v", target, got, err)
					}
					if err := os.Remove(target); err != nil {
						t.Fatal(err)
					}
				},
				Config: routerConfigGolden(link, 50),
				Check:  written(golden),
			},
			{
				Config: routerConfigGolden(link, 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				Config: routerConfigGolden(link, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectFieldChange(routerConfigAddr, weight, "50", "75"),
				}},
				Check: written(updated),
			},
			{
				// Edited by hand, by its own name: the refresh reads it
				// through the link.
				PreConfig: func() {
					editRouterFile(t, target, func(topo *artifact.Topology) {
						for i := range topo.Nodes {
							if topo.Nodes[i].Name == "replica-2" {
								topo.Nodes[i].Weight = 7
							}
						}
					})
				},
				Config: routerConfigGolden(link, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
					expectFieldChange(routerConfigAddr, weight, "7", "75"),
				}},
				Check: written(updated),
			},
			{
				// The same file without the link: nothing is removed.
				Config: routerConfigGolden(target, 75),
				Check:  written(updated),
			},
			{Config: routerConfigGolden(link, 50), Check: written(golden)},
		},
		CheckDestroy: func(*terraform.State) error {
			if err := onlyRouterFile(shared); err != nil {
				return fmt.Errorf("destroy: %w", err)
			}
			for _, l := range []string{link, otherLink} {
				if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					return fmt.Errorf("destroy removed or replaced the link %s (%v)", l, err)
				}
			}
			return nil
		},
	})
}

// Two pgreplication_router_config resources that write one file, however
// their paths spell it (the same text, "..", a symbolic link, relative and
// absolute), are refused at plan time, naming both paths and the other's
// primary node; before, each apply rewrote the other's file and every plan
// showed drift. Nothing is written. Distinct files plan and apply.
func TestAccRouterConfig_samePathTwice(t *testing.T) {
	testAccPreCheck(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "router.json")
	if err := os.Symlink("router.json", filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd() // the in-process provider's, where relative paths start
	if err != nil {
		t.Fatal(err)
	}
	relative, err := filepath.Rel(cwd, file)
	if err != nil {
		t.Fatal(err)
	}
	two := func(a, b string) string {
		return unreachableProvider + fmt.Sprintf(`
resource "pgreplication_router_config" "a" {
  path = %q
  primary {
    name = "primary-a"
    host = "10.0.0.1"
  }
}

resource "pgreplication_router_config" "b" {
  path = %q
  primary {
    name = "primary-b"
    host = "10.0.0.2"
  }
}
`, a, b)
	}
	// refused expects the error, with both spellings (the resources are
	// planned concurrently, so either may be "this one") and, when they
	// differ from it, the file both name.
	refused := func(b string) *regexp.Regexp {
		re := `(?s)Router File Written by Two Resources.*` + wrappedText(`another one in this configuration (path =`) +
			`\s+"(` + regexp.QuoteMeta(file) + `|` + regexp.QuoteMeta(b) + `)"` + wrappedText(`, primary node "primary-`) + `[ab]` + wrappedText(`" (host 10.0.0.`) + `[12]\)`
		if b != file {
			re += `.*` + wrappedText("(both name "+file+")")
		}
		return regexp.MustCompile(re)
	}
	var steps []tfresource.TestStep
	for _, b := range []string{file, filepath.Join(dir, "sub", "..", "router.json"), filepath.Join(dir, "link.json"), relative} {
		steps = append(steps, tfresource.TestStep{Config: two(file, b), ExpectError: refused(b)})
	}
	other := filepath.Join(dir, "sub", "router.json")
	steps = append(steps, tfresource.TestStep{
		PreConfig: func() {
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Errorf("a refused plan wrote %s (%v)", file, err)
			}
		},
		Config: two(file, other),
		Check: tfresource.ComposeTestCheckFunc(
			tfresource.TestCheckResourceAttrWith("pgreplication_router_config.a", "content", func(v string) error {
				if !strings.Contains(v, "primary-a") {
					return fmt.Errorf("a's content %q", v)
				}
				return nil
			}),
			func(*terraform.State) error {
				for f, want := range map[string]string{file: "primary-a", other: "primary-b"} {
					if got, err := os.ReadFile(f); err != nil || !strings.Contains(string(got), want) {
						return fmt.Errorf("%s holds %q (%v), want %s's", f, got, err, want)
					}
				}
				return nil
			},
		),
	})
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    steps,
	})
}

// A router file written by hand, with other units than the configuration
// ("10000ms" for "10s", "0.5m" for "30s") and another layout (one line,
// fields in another order): the import is a no-op, the plan after it is
// empty and the file is left as it is, since it means the same; a change of
// file_permission alone leaves its bytes too. A change of another field
// still plans, and writes the file.
func TestAccRouterConfig_importOtherUnits(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	file := filepath.Join(t.TempDir(), "router.json")
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, golden, 0o640); err != nil {
		t.Fatal(err)
	}
	respelled := map[artifact.Duration]artifact.Duration{
		"10s": "10000ms", "30s": "0.5m", "200ms": "0.2s", "1s": "1000ms", "500ms": "500000us", "2s": "2000ms", "30m": "1800s",
	}
	respell := func(d *artifact.Duration) {
		other, ok := respelled[*d]
		if !ok {
			t.Fatalf("the golden file has the duration %q, which this test does not respell", *d)
		}
		*d = other
	}
	editRouterFile(t, file, func(topo *artifact.Topology) {
		for i := range topo.Nodes {
			if topo.Nodes[i].MaxLag != "" {
				respell(&topo.Nodes[i].MaxLag)
			}
		}
		respell(&topo.Consistency.WaitTimeout)
		respell(&topo.Health.Interval)
		respell(&topo.Health.Timeout)
		respell(&topo.Health.ConnectTimeout)
		respell(&topo.Pool.MaxConnLifetime)
	})
	respelledFile, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Another layout: one line, fields sorted by name (json.Marshal of a map).
	var fields map[string]any
	if err := json.Unmarshal(respelledFile, &fields); err != nil {
		t.Fatal(err)
	}
	handWritten, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, handWritten, 0o640); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(handWritten, []byte(`"10s"`)) || !bytes.Contains(handWritten, []byte(`"10000ms"`)) || bytes.Contains(handWritten, []byte("\n")) ||
		!bytes.HasPrefix(handWritten, []byte(`{"consistency":`)) {
		t.Fatalf("the file was not respelled:\n%s", handWritten)
	}
	config := routerConfigGolden(file, 50)
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				// An import block: the plan must be a no-op import.
				Config:          config,
				ResourceName:    routerConfigAddr,
				ImportState:     true,
				ImportStateKind: tfresource.ImportBlockWithID,
				ImportStateId:   file,
			},
			{
				Config:             config,
				ResourceName:       routerConfigAddr,
				ImportState:        true,
				ImportStateId:      file,
				ImportStatePersist: true,
			},
			{
				Config: config,
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: fileEquals(file, handWritten, 0o640),
			},
			{
				Config: strings.Replace(config, "\n  primary {", "\n  file_permission = \"0600\"\n\n  primary {", 1),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
				}},
				Check: fileEquals(file, handWritten, 0o600),
			},
			{
				Config: routerConfigGolden(file, 75),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
					expectFieldChange(routerConfigAddr, tfjsonpath.New("replica").AtSliceIndex(1).AtMapKey("weight"), "50", "75"),
				}},
				Check: func(*terraform.State) error {
					topo, err := artifact.Load(file)
					if err != nil {
						return err
					}
					if w := topo.Nodes[2].Weight; w != 75 {
						return fmt.Errorf("replica-2 has weight %d in the file, want 75", w)
					}
					return nil
				},
			},
		},
	})
}

// The file is canonical (replicas, routes and a route's nodes sorted), but
// the state keeps the configuration's order, so there is no diff after
// apply or after a refresh.
func TestAccRouterConfig_keepsConfigurationOrder(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	file := filepath.Join(t.TempDir(), "router.json")
	config := unreachableProvider + fmt.Sprintf(`
resource "pgreplication_router_config" "test" {
  path = %q
  primary {
    name = "p"
    host = "10.0.0.1"
  }
  replica {
    name = "z"
    host = "10.0.0.3"
  }
  replica {
    name = "a"
    host = "10.0.0.2"
  }
  route {
    name  = "reports"
    nodes = ["z", "a"]
  }
  route {
    name  = "batch"
    nodes = ["z"]
  }
}
`, file)
	names := func(values ...string) knownvalue.Check {
		var checks []knownvalue.Check
		for _, v := range values {
			checks = append(checks, knownvalue.StringExact(v))
		}
		return knownvalue.ListExact(checks)
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				Config: config,
				Check: func(*terraform.State) error {
					topo, err := artifact.Load(file)
					if err != nil {
						return err
					}
					if topo.Nodes[1].Name != "a" || topo.Routes[0].Name != "batch" || topo.Routes[1].Nodes[0] != "a" {
						return fmt.Errorf("the file is not in canonical order: %+v", topo)
					}
					return nil
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("replica").AtSliceIndex(0).AtMapKey("name"), knownvalue.StringExact("z")),
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("route").AtSliceIndex(0).AtMapKey("nodes"), names("z", "a")),
				},
			},
			{
				// Refreshed from the file, the state still has no diff.
				Config: config,
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("replica").AtSliceIndex(0).AtMapKey("name"), knownvalue.StringExact("z")),
					statecheck.ExpectKnownValue(routerConfigAddr, tfjsonpath.New("route").AtSliceIndex(0).AtMapKey("nodes"), names("z", "a")),
				},
			},
		},
	})
}

// Values known only after apply (a host from another resource, replicas
// from a dynamic block over an unknown list) leave content unknown in the
// plan, and the file is written and validated at apply.
func TestAccRouterConfig_unknownAtPlan(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	file := filepath.Join(t.TempDir(), "router.json")
	// Each step has its own terraform_data, so its output is unknown at
	// that step's plan.
	config := func(step, routeNode string) string {
		return unreachableProvider + strings.ReplaceAll(fmt.Sprintf(`
resource "terraform_data" "hosts" {
  input = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
}

resource "pgreplication_router_config" "test" {
  path = %q
  primary {
    name = "primary"
    host = terraform_data.hosts.output[0]
  }
  dynamic "replica" {
    for_each = slice(terraform_data.hosts.output, 1, 3)
    content {
      name = "replica-${replica.key + 1}"
      host = replica.value
    }
  }
  route {
    name  = "reports"
    nodes = [%s]
  }
}
`, file, routeNode), "hosts", "hosts_"+step)
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				// Valid for all the plan can tell; the apply finds the
				// route's node missing and writes nothing.
				Config:      config("a", `"replica-${length(terraform_data.hosts.output)}"`),
				ExpectError: regexp.MustCompile(`route\[0\]\.nodes\[0\]:\s+unknown\s+node\s+"replica-3"`),
			},
			{
				Config: config("b", `"replica-${length(terraform_data.hosts.output) - 1}"`),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectUnknownValue(routerConfigAddr, tfjsonpath.New("content")),
				}},
				Check: func(*terraform.State) error {
					topo, err := artifact.Load(file)
					if err != nil {
						return err
					}
					if len(topo.Nodes) != 3 || topo.Nodes[0].Host != "10.0.0.1" || topo.Nodes[2].Host != "10.0.0.3" || topo.Routes[0].Nodes[0] != "replica-2" {
						return fmt.Errorf("unexpected topology %+v", topo)
					}
					return nil
				},
			},
		},
	})
}

// topologyBytes is the file a one-primary configuration writes.
func topologyBytes(t *testing.T, primary, host string) []byte {
	t.Helper()
	data, err := artifact.Marshal(artifact.Topology{Nodes: []artifact.Node{{Name: primary, Role: artifact.RolePrimary, Host: host}}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A new resource, or a new path, never writes over a file it did not
// write; before, it replaced whatever was there. A new resource's plan
// only warns of a file there, router file or not (see checkNewRouterFile:
// it cannot tell itself from the apply's plan of a create_before_destroy
// replacement, whose error would drop the old object), and the apply
// refuses it before anything is written; a new path's plan refuses a file
// that is not a router file. Either way the error names the
// file and what it holds, and the file is left as it was. Importing the
// file makes it the resource's; a file that already holds exactly the
// bytes to be written is taken as it is.
func TestAccRouterConfig_existingFileNotOverwritten(t *testing.T) {
	testAccPreCheck(t)
	dir := t.TempDir()
	file, other := filepath.Join(dir, "router.json"), filepath.Join(dir, "other.json")
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	theirs := topologyBytes(t, "theirs", "10.9.9.9")
	write := func(name string, data []byte) {
		if err := os.WriteFile(name, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	holds := func(name string, want []byte) {
		if got, err := os.ReadFile(name); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s holds %q (%v), want %q: a refused write changed it", name, got, err, want)
		}
	}
	refused := func(name, what string) *regexp.Regexp {
		return errorText("Router File Already Exists", `would write `+name+`, where a file that this resource did not write already is: `+what,
			"give this resource its own path", "import it")
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				PreConfig:   func() { write(file, []byte("hello\n")) },
				Config:      routerConfigGolden(file, 50),
				ExpectError: refused(file, "a file that is not a router file (6 bytes)"),
			},
			{
				PreConfig: func() {
					holds(file, []byte("hello\n"))
					write(file, theirs)
				},
				Config:      routerConfigGolden(file, 50),
				ExpectError: refused(file, `a router file whose primary node is "theirs"`),
			},
			{
				PreConfig:          func() { holds(file, theirs) },
				Config:             routerConfigGolden(file, 50),
				ResourceName:       routerConfigAddr,
				ImportState:        true,
				ImportStateId:      file,
				ImportStatePersist: true,
			},
			{
				Config: routerConfigGolden(file, 50),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
				}},
				Check: fileEquals(file, golden, 0o640),
			},
			// A new path where another file is: refused, and the old
			// file stays the application's.
			{
				PreConfig:   func() { write(other, []byte("hello\n")) },
				Config:      routerConfigGolden(other, 50),
				ExpectError: refused(other, "a file that is not a router file (6 bytes)"),
			},
			{
				PreConfig: func() {
					holds(other, []byte("hello\n"))
					holds(file, golden)
					write(other, golden)
				},
				Config: routerConfigGolden(other, 50),
				Check: tfresource.ComposeTestCheckFunc(
					fileEquals(other, golden, 0o640),
					func(*terraform.State) error { return onlyRouterFile(dir, "other.json") },
				),
			},
		},
		CheckDestroy: func(*terraform.State) error { return onlyRouterFile(dir) },
	})
}

// Two resources whose paths are hard links to one existing file are
// refused at plan time like two spellings of one path: no spelling
// reveals a hard link, so the files are compared by identity. (Writing
// either name would give it a new file, and the application would read
// whichever name it was given.) Before, both planned and applied.
func TestAccRouterConfig_hardLinksRefused(t *testing.T) {
	testAccPreCheck(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	// The bytes both resources write, so that neither is refused for
	// the file already being there.
	data := topologyBytes(t, "primary", "10.0.0.1")
	if err := os.WriteFile(a, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	config := unreachableProvider
	for _, name := range []string{"a", "b"} {
		config += fmt.Sprintf(`
resource "pgreplication_router_config" %q {
  path = %q
  primary {
    name = "primary"
    host = "10.0.0.1"
  }
}
`, name, filepath.Join(dir, name+".json"))
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				Config:      config,
				ExpectError: regexp.MustCompile(`Router File Written by Two Resources(?s:.*)are\s+hard\s+links`),
			},
			{
				PreConfig: func() {
					fa, errA := os.Stat(a)
					fb, errB := os.Stat(b)
					if errA != nil || errB != nil || !os.SameFile(fa, fb) {
						t.Errorf("a refused plan touched the files (%v, %v)", errA, errB)
					}
				},
				// One of them alone is the file's.
				Config: strings.Split(config, `resource "pgreplication_router_config" "b"`)[0],
				Check:  fileEquals(a, data, 0o640),
			},
		},
	})
}

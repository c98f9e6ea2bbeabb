package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// 89d8293 takes a timeout of the probe's replication connection after a
// database connection that failed otherwise for "the primary stopped
// answering between the two": silent, and reset_on_destroy is refused.
// But the two connections share publisherProbeTimeout (5 s), and a
// primary that answers slowly on purpose, auth_delay (a contrib module
// hardened servers load to slow password guessing), spends it on the first
// refusal: a login refused from Terraform's machine (the password is in the
// standby host's passfile, the case 89d8293 keeps a warning) with
// auth_delay.milliseconds = 3000 refuses the database connection after 3 s,
// and the replication connection runs out of the 5 s before the second
// refusal comes. The probe then says the primary "accepted the connection
// ... but did not answer within 5s", and every destroy is refused although
// the primary answered each time, "password authentication failed".
func TestReview2StandbyResetProbeAuthDelayIsLoginRefused(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t,
		routertest.WithSetting("shared_preload_libraries", "auth_delay"),
		routertest.WithSetting("auth_delay.milliseconds", "3000"))
	primary := topo.Primary
	ctx := context.Background()
	const role = "review2_pw"
	execSQL(t, primary, "postgres", `CREATE ROLE `+role+` LOGIN REPLICATION PASSWORD 'right'`)
	hba := filepath.Join(primary.DataDir, "pg_hba.conf")
	was, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	lines := "host all " + role + " 127.0.0.1/32 scram-sha-256\nhost replication " + role + " 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(hba, append([]byte(lines), was...), 0o600); err != nil {
		t.Fatal(err)
	}
	execSQL(t, primary, "postgres", `SELECT pg_reload_conf()`)
	time.Sleep(300 * time.Millisecond)

	cfg, err := namedHostConfig(conninfo.Params{"host": primary.Host, "port": strconv.Itoa(primary.Port), "user": role, "password": "wrong",
		"dbname": "postgres", "sslmode": "disable"}, publisherProbeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = probePrimary(ctx, cfg, "standby")
	var silent *primarySilentError
	if err == nil || errors.As(err, &silent) {
		t.Errorf("a login refused (after auth_delay) is taken for a silent primary, which refuses the destroy: probe error after %s: %v",
			time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("probe error after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

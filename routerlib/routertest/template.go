package routertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// initdb is most of the time a topology takes to start (1.5 s of 2 on an idle
// two-core machine, far more on a busy one), and its output depends only on
// the binaries and routertest's fixed options. So each binary installation
// runs it once per user and machine, into a template cluster in the temporary
// directory, and every topology starts from a copy. Removing the templates
// (os.TempDir()/routertest-template-*) at any time is safe.
const templatePrefix = "routertest-template-"

// templateDir returns the path of the template cluster for the current
// binaries and user; its data directory is templateDir/data.
func (t *Topology) templateDir() (string, error) {
	postgres := filepath.Join(t.binDir, "postgres")
	info, err := os.Stat(postgres)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(t.binDir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%d\n%d\n", abs, info.Size(), info.ModTime().UnixNano(), os.Geteuid())
	key := hex.EncodeToString(h.Sum(nil))[:16]
	return filepath.Join(os.TempDir(), templatePrefix+strconv.Itoa(t.Version)+"-"+key), nil
}

// ensureTemplate returns the data directory of the template cluster, making
// the template first if there is none.
func (t *Topology) ensureTemplate(ctx context.Context) (string, error) {
	dir, err := t.templateDir()
	if err != nil {
		return "", fmt.Errorf("routertest: %w", err)
	}
	if t.ownCluster {
		dir = filepath.Join(t.Dir, "initdb") // removed with the topology
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		if err := t.makeTemplate(ctx, dir); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "data"), nil
}

// makeTemplate runs initdb into a directory of its own and renames it into
// place, so that concurrent test binaries never see half a template: the
// first rename wins and the others discard their copy.
func (t *Topology) makeTemplate(ctx context.Context, dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("routertest: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename there is nothing left to remove
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("routertest: %w", err)
	}
	data := filepath.Join(tmp, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("routertest: %w", err)
	}
	if err := t.user.chown(data); err != nil {
		return fmt.Errorf("routertest: %w", err)
	}
	// Superuser postgres, trust authentication (replaced by routertest's
	// pg_hba.conf), C locale, no fsync: a test cluster need not survive a
	// power cut.
	err = t.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("routertest: making the template cluster: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); statErr == nil {
			return nil // another process made it first
		}
		return fmt.Errorf("routertest: %w", err)
	}
	t.logf("routertest: made template cluster %s", dir)
	return nil
}

package routertest

import (
	"fmt"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// Artifact describes the topology as a router file: the primary with role
// primary, each standby with role replica, all reached as the postgres user
// on the postgres database without TLS. Like Primary and Standbys it shows
// the topology as built, not roles changed later by [Node.Promote]; set
// Role by hand for such a test. With [WithPgBouncer] each node is reached
// through its PgBouncer; with [WithPgBouncerTLS], over TLS (sslmode
// require).
func (t *Topology) Artifact() artifact.Topology {
	a := artifact.Topology{FormatVersion: artifact.FormatVersion}
	for _, n := range t.Nodes() {
		role := artifact.RoleReplica
		if n == t.Primary {
			role = artifact.RolePrimary
		}
		port, sslmode := n.Port, artifact.SSLModeDisable
		if n.BouncerPort != 0 {
			port = n.BouncerPort
			if n.bouncer != nil && n.bouncer.tls {
				sslmode = artifact.SSLModeRequire
			}
		}
		a.Nodes = append(a.Nodes, artifact.Node{
			Name:     n.Name,
			Role:     role,
			Host:     n.Host,
			Port:     port,
			Database: "postgres",
			User:     "postgres",
			SSLMode:  sslmode,
		})
	}
	return a
}

// WriteRouterFile writes [Topology.Artifact] to path with [artifact.Marshal],
// atomically: a router reading the file sees the old one or the new one.
func (t *Topology) WriteRouterFile(path string) error {
	data, err := artifact.Marshal(t.Artifact())
	if err != nil {
		return fmt.Errorf("routertest: router file %s: %w", path, err)
	}
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("routertest: router file: %w", err)
	}
	return nil
}

// Package artifact defines the router config file: the JSON document the
// Terraform provider writes and routerlib reads, so the two cannot disagree
// about its shape or its rules.
//
// A reader loads, checks and completes a file in three steps:
//
//	t, err := artifact.Load("/etc/pgreplication/router.json") // Parse + Validate
//	if err != nil {
//		return err // names the file and every problem in it
//	}
//	t = t.WithDefaults() // every unset field set to its Default… constant
//
// A writer builds a [Topology] and calls [Marshal], which validates it and
// returns canonical bytes: the same topology always gives the same bytes, so
// the provider sees no spurious diff and the file can be compared byte for
// byte against testdata/topology.golden.json.
//
// The format is versioned by [FormatVersion]. [Parse] is strict: unknown
// fields, duplicate fields, a field named "password", a missing or
// unsupported format_version and trailing data are all errors, because a
// silently ignored field in a routing file is a misrouted query later.
// [Topology.Validate] reports every problem at once as a [*ValidationError].
//
// What the package deliberately does not do:
//   - It holds no secrets. Nodes name an environment variable (password_env)
//     or a .pgpass file (passfile); a password in the file is rejected.
//   - [Parse] does not apply defaults and does not validate; [Load] validates,
//     and [Topology.WithDefaults] fills defaults when the caller asks.
//   - It never connects to PostgreSQL or resolves hosts; it describes a
//     topology, routerlib acts on it.
//   - It imports only the standard library, so the provider can depend on it
//     without pulling in pgx, and routerlib without pulling in Terraform.
package artifact

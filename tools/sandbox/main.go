// Command sandbox keeps a replicated PostgreSQL (a primary and hot standbys on
// 127.0.0.1) running in a directory, for demos and local development:
//
//	go run ./tools/sandbox up     [-dir .sandbox] [-standbys 2] [-pgbin DIR]
//	go run ./tools/sandbox status [-dir .sandbox]
//	go run ./tools/sandbox down   [-dir .sandbox]
//
// up starts the topology with routertest (or, when it exists, starts any
// stopped server of it) and writes, in the directory, router.json for
// routerlib and dsns.env for shells (`. .sandbox/dsns.env`). The servers keep
// running after the command exits; down stops them by their data
// directories and removes the directory. The default directory is .sandbox
// at the root of the repository (gitignored).
//
// The servers trust every connection from 127.0.0.1: a sandbox is for one
// developer's machine, never for a shared host.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

const (
	routerFile = "router.json"
	envFile    = "dsns.env"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: go run ./tools/sandbox up|status|down [-dir DIR] [-standbys N] [-pgbin DIR]

  up      start a primary and N hot standbys in DIR (or start the stopped servers
          of the sandbox already there), write DIR/router.json and DIR/dsns.env
  status  show each server's role, port and whether it is up
  down    stop the servers and remove DIR`)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command")
	}
	command := args[0]
	flags := flag.NewFlagSet("sandbox "+command, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { usage(stderr); flags.PrintDefaults() }
	dir := flags.String("dir", defaultDir(), "the directory holding the sandbox")
	standbys := flags.Int("standbys", 2, "the number of hot standbys (up only)")
	pgbin := flags.String("pgbin", "", "the directory of initdb, pg_ctl and postgres (up only; default: see routertest)")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	switch command {
	case "up":
		// An existing sandbox keeps its standbys; say so only if asked for others.
		wantStandbys := -1
		flags.Visit(func(f *flag.Flag) {
			if f.Name == "standbys" {
				wantStandbys = *standbys
			}
		})
		return up(ctx, stdout, stderr, *dir, *standbys, wantStandbys, *pgbin)
	case "status":
		topo, err := routertest.Open(*dir)
		if err != nil {
			return notRunning(*dir, err)
		}
		printStatus(ctx, stdout, topo)
		return nil
	case "down":
		return down(stdout, *dir)
	default:
		usage(stderr)
		return fmt.Errorf("unknown command %q", command)
	}
}

// up starts the sandbox, or the stopped servers of an existing one, whose
// number of standbys stays as it is (wantStandbys is -1 unless -standbys was
// given).
func up(ctx context.Context, stdout, stderr io.Writer, dir string, standbys, wantStandbys int, pgbin string) error {
	topo, err := routertest.Open(dir)
	if err == nil {
		for _, n := range topo.Nodes() {
			if err := n.Start(ctx); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "sandbox already in %s\n", topo.Dir)
		if wantStandbys >= 0 && wantStandbys != len(topo.Standbys) {
			fmt.Fprintf(stderr, "sandbox: it has %d standbys, not %d: run down, then up, to change that\n", len(topo.Standbys), wantStandbys)
		}
	} else {
		if _, statErr := os.Stat(dir); statErr == nil {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				return fmt.Errorf("%s exists but holds no sandbox (%v); remove it and run up again", dir, err)
			}
		}
		opts := []routertest.Option{
			routertest.WithDir(dir),
			routertest.WithStandbys(standbys),
			routertest.WithLogf(func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }),
		}
		if pgbin != "" {
			opts = append(opts, routertest.WithBinDir(pgbin))
		}
		if topo, err = routertest.New(ctx, opts...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sandbox started in %s\n", topo.Dir)
	}
	if err := topo.WriteRouterFile(filepath.Join(topo.Dir, routerFile)); err != nil {
		return err
	}
	if err := writeEnvFile(filepath.Join(topo.Dir, envFile), topo); err != nil {
		return err
	}
	printStatus(ctx, stdout, topo)
	rel := relative(topo.Dir)
	fmt.Fprintf(stdout, "\nrouter file:  %s\nenvironment:  . %s\nstop with:    %s\n",
		filepath.Join(rel, routerFile), filepath.Join(rel, envFile), downCommand(topo.Dir))
	return nil
}

// downCommand is the command that stops the sandbox in dir: with -dir
// unless dir is the default, since a plain down run from the repository
// would look for the sandbox in .sandbox and leave this one running.
func downCommand(dir string) string {
	if filepath.Clean(dir) == filepath.Clean(defaultDir()) {
		return "go run ./tools/sandbox down"
	}
	return "go run ./tools/sandbox down -dir " + shellQuote(dir)
}

func down(stdout io.Writer, dir string) error {
	topo, err := routertest.Open(dir)
	if err != nil {
		if _, statErr := os.Stat(dir); os.IsNotExist(statErr) {
			fmt.Fprintf(stdout, "no sandbox in %s\n", dir)
			return nil
		}
		return fmt.Errorf("%s holds no sandbox that can be stopped (%v); stop its servers with pg_ctl stop -D and remove it", dir, err)
	}
	if err := topo.Close(); err != nil {
		return err
	}
	if err := os.RemoveAll(topo.Dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sandbox in %s stopped and removed\n", topo.Dir)
	return nil
}

// printStatus prints one line per server: its name, the role it has now,
// its address, whether it answers, and its DSN.
func printStatus(ctx context.Context, w io.Writer, topo *routertest.Topology) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tROLE\tADDRESS\tSTATE\tDSN\n")
	for _, n := range topo.Nodes() {
		role, state := "-", "down"
		var inRecovery bool
		queryCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := n.QueryRow(queryCtx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err == nil {
			role, state = "primary", "up"
			if inRecovery {
				role = "standby"
			}
		}
		cancel()
		fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s\t%s\n", n.Name, role, n.Host, n.Port, state, n.DSN())
	}
	tw.Flush()
}

// writeEnvFile writes shell-sourceable variables for each node:
// PGREPLICATION_<NODE>_NAME, _HOST, _PORT and _DSN, where <NODE> is the node
// name in capitals with '-' as '_' (PRIMARY, REPLICA_1, …).
func writeEnvFile(path string, topo *routertest.Topology) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `go run ./tools/sandbox up`; source it: . %s\n", relative(path))
	var names []string
	for _, n := range topo.Nodes() {
		names = append(names, n.Name)
	}
	fmt.Fprintf(&b, "PGREPLICATION_NODES=%s\n", shellQuote(strings.Join(names, " ")))
	fmt.Fprintf(&b, "PGREPLICATION_ROUTER_FILE=%s\n", shellQuote(filepath.Join(topo.Dir, routerFile)))
	for _, n := range topo.Nodes() {
		prefix := "PGREPLICATION_" + strings.ToUpper(strings.ReplaceAll(n.Name, "-", "_"))
		fmt.Fprintf(&b, "%s_NAME=%s\n", prefix, shellQuote(n.Name))
		fmt.Fprintf(&b, "%s_HOST=%s\n", prefix, shellQuote(n.Host))
		fmt.Fprintf(&b, "%s_PORT=%d\n", prefix, n.Port)
		fmt.Fprintf(&b, "%s_DSN=%s\n", prefix, shellQuote(n.DSN()))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func notRunning(dir string, err error) error {
	if _, statErr := os.Stat(dir); os.IsNotExist(statErr) {
		return fmt.Errorf("no sandbox in %s: start one with go run ./tools/sandbox up", dir)
	}
	return err
}

// defaultDir is .sandbox at the root of the repository: the nearest
// directory above the working directory holding go.mod.
func defaultDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return ".sandbox"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".sandbox")
		}
		if dir == filepath.Dir(dir) {
			return filepath.Join(wd, ".sandbox")
		}
	}
}

// relative shortens path against the working directory for messages.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

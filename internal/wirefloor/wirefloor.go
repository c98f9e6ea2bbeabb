// Package wirefloor sends one write as bare protocol messages on one
// connection (prepared statements, no pool, no router), plain and in each
// shape routerlib's read-your-writes capture could take: the latency floor
// under routerlib's Exec with a Session. routerlib's BenchmarkRYWWire and
// tools/peerbench both measure it; it lives at the module root so that both
// may import it without adding to routerlib's API.
package wirefloor

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// LSNQuery is the capture's WAL position query.
const LSNQuery = "SELECT pg_catalog.pg_current_wal_insert_lsn()"

// Statement names prepared on the connection.
const (
	insertName = "wirefloor_insert"
	lsnName    = "wirefloor_lsn"
	beginName  = "wirefloor_begin"
	commitName = "wirefloor_commit"
)

// A Floor sends the write on one connection it does not own; nothing else
// may use the connection while the Floor does.
type Floor struct {
	ctx context.Context
	pc  *pgconn.PgConn
	f   *pgproto3.Frontend
}

// New prepares insert (the write, parameters in text format), BEGIN,
// COMMIT and the LSN query on pc.
func New(ctx context.Context, pc *pgconn.PgConn, insert string) (*Floor, error) {
	for name, sql := range map[string]string{insertName: insert, lsnName: LSNQuery, beginName: "BEGIN", commitName: "COMMIT"} {
		if _, err := pc.Prepare(ctx, name, sql, nil); err != nil {
			return nil, err
		}
	}
	return &Floor{ctx: ctx, pc: pc, f: pc.Frontend()}, nil
}

// binary asks for the LSN in binary, as routerlib does.
var binary = []int16{1}

func (w *Floor) exec(stmt string, params [][]byte) {
	var results []int16
	if stmt == lsnName {
		results = binary
	}
	w.f.SendBind(&pgproto3.Bind{PreparedStatement: stmt, Parameters: params, ResultFormatCodes: results})
	w.f.SendExecute(&pgproto3.Execute{})
}

func (w *Floor) sync() { w.f.SendSync(&pgproto3.Sync{}) }

// run flushes what was queued and reads up to the syncs-th ReadyForQuery.
func (w *Floor) run(syncs int) error {
	if err := w.f.Flush(); err != nil {
		return err
	}
	var failed error
	for syncs > 0 {
		msg, err := w.pc.ReceiveMessage(w.ctx)
		if err != nil {
			return err
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			failed = errors.New(msg.Message)
		case *pgproto3.ReadyForQuery:
			syncs--
		}
	}
	return failed
}

// Plain is the write alone: Bind, Execute, Sync.
func (w *Floor) Plain(params [][]byte) error {
	w.exec(insertName, params)
	w.sync()
	return w.run(1)
}

// OneSync is the capture as routerlib sends it: BEGIN, the write, COMMIT,
// the LSN query and a single Sync, so the server flushes once.
func (w *Floor) OneSync(params [][]byte) error {
	w.exec(beginName, nil)
	w.exec(insertName, params)
	w.exec(commitName, nil)
	w.exec(lsnName, nil)
	w.sync()
	return w.run(1)
}

// TwoSyncs is the write, Sync, the LSN query, Sync: the server flushes at
// each Sync, so the client wakes twice.
func (w *Floor) TwoSyncs(params [][]byte) error {
	w.exec(insertName, params)
	w.sync()
	w.exec(lsnName, nil)
	w.sync()
	return w.run(2)
}

// CommitOnly is OneSync without the LSN query: what BEGIN and COMMIT
// alone cost.
func (w *Floor) CommitOnly(params [][]byte) error {
	w.exec(beginName, nil)
	w.exec(insertName, params)
	w.exec(commitName, nil)
	w.sync()
	return w.run(1)
}

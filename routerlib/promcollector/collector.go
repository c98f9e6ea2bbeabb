// Package promcollector exposes a [routerlib.Router]'s per-node state as
// Prometheus metrics. It lives apart from routerlib so that applications
// which do not use Prometheus do not compile its client.
//
//	reg.MustRegister(promcollector.New(router))
//
// Every metric carries a "node" label (the node's name in the router file).
// The counters restart from zero if a node disappears from the router file
// and comes back.
package promcollector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
)

// A StatSource reports node state; [routerlib.Router] is one.
type StatSource interface {
	Stat() []routerlib.NodeStat
}

// Collector is a [prometheus.Collector] that reads [routerlib.Router.Stat]
// on every scrape.
type Collector struct {
	src StatSource

	up, readable, writer, ejected             *prometheus.Desc
	lagBytes, lagSeconds, replayLSN           *prometheus.Desc
	reads, writes, errors                     *prometheus.Desc
	totalConns, idleConns, acquired, maxConns *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires   *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector for src. Register it with a
// [prometheus.Registerer].
func New(src StatSource) *Collector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("routerlib_"+name, help, append([]string{"node"}, labels...), nil)
	}
	return &Collector{
		src:            src,
		up:             desc("node_up", "1 when the node's last health check succeeded.", "declared_role"),
		readable:       desc("node_readable", "1 when the node is in read rotation."),
		writer:         desc("node_writer", "1 for the node that takes writes."),
		ejected:        desc("node_ejected", "1 with the reason the node is out of read rotation.", "reason"),
		lagBytes:       desc("replication_lag_bytes", "Bytes of WAL the node has not replayed yet."),
		lagSeconds:     desc("replication_lag_seconds", "How far behind the primary the node's replay is."),
		replayLSN:      desc("replay_lsn", "The node's replay position (its WAL position on a primary), as a byte offset."),
		reads:          desc("reads_total", "Calls routed to the node as reads."),
		writes:         desc("writes_total", "Calls routed to the node as writes."),
		errors:         desc("errors_total", "Calls on the node that failed."),
		totalConns:     desc("pool_conns", "Connections in the node's pool."),
		idleConns:      desc("pool_idle_conns", "Idle connections in the node's pool."),
		acquired:       desc("pool_acquired_conns", "Connections in use from the node's pool."),
		maxConns:       desc("pool_max_conns", "The node's pool size limit."),
		acquires:       desc("pool_acquires_total", "Connections acquired from the node's pool."),
		acquireSeconds: desc("pool_acquire_seconds_total", "Time spent acquiring connections from the node's pool."),
		emptyAcquires:  desc("pool_empty_acquires_total", "Acquires that had to wait because the pool had no idle connection."),
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.up, c.readable, c.writer, c.ejected, c.lagBytes, c.lagSeconds, c.replayLSN,
		c.reads, c.writes, c.errors, c.totalConns, c.idleConns, c.acquired, c.maxConns,
		c.acquires, c.acquireSeconds, c.emptyAcquires,
	} {
		ch <- d
	}
}

// Collect reads the router's Stat and sends one sample per metric and node.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, s := range c.src.Stat() {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{s.Name}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, s.Name)
		}
		gauge(c.up, b(s.Healthy), s.DeclaredRole)
		gauge(c.readable, b(s.Readable))
		gauge(c.writer, b(s.Writer))
		if !s.Readable && s.Ejected != routerlib.EjectNone {
			gauge(c.ejected, 1, s.Ejected.String())
		}
		gauge(c.lagBytes, float64(s.LagBytes))
		gauge(c.lagSeconds, s.Lag.Seconds())
		gauge(c.replayLSN, float64(s.ReplayLSN))
		counter(c.reads, float64(s.Reads))
		counter(c.writes, float64(s.Writes))
		counter(c.errors, float64(s.Errors))
		gauge(c.totalConns, float64(s.Pool.TotalConns))
		gauge(c.idleConns, float64(s.Pool.IdleConns))
		gauge(c.acquired, float64(s.Pool.AcquiredConns))
		gauge(c.maxConns, float64(s.Pool.MaxConns))
		counter(c.acquires, float64(s.Pool.AcquireCount))
		counter(c.acquireSeconds, s.Pool.AcquireDuration.Seconds())
		counter(c.emptyAcquires, float64(s.Pool.EmptyAcquires))
	}
}

// Package servercpu reads what a client's CPU time does not show: the CPU
// time of a routertest topology's PostgreSQL processes, and the machine's
// idle time. peerbench and its callcount command both read them.
package servercpu

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Servers are a topology's PostgreSQL processes: each postmaster and
// every process it started (the backends of every contender's
// connections, the WAL receivers, the checkpointer). On a machine whose
// cores the client and the servers share, a query's cost is both.
type Servers struct{ postmasters map[int]bool }

// New finds the postmasters of the data directories (the first
// line of postmaster.pid). A directory it cannot read is left out.
func New(dataDirs []string) Servers {
	s := Servers{postmasters: map[int]bool{}}
	for _, d := range dataDirs {
		data, err := os.ReadFile(filepath.Join(d, "postmaster.pid"))
		if err != nil {
			continue
		}
		line, _, _ := strings.Cut(string(data), "\n")
		if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
			s.postmasters[pid] = true
		}
	}
	return s
}

// A Sample is each server process's CPU time so far, in
// nanoseconds, and the times it was put on a CPU, and the machine's idle
// and total time in clock ticks.
type Sample struct {
	cpu, slices map[int]int64
	idle, total int64
}

// Sample reads /proc: a process's time on a CPU from its schedstat
// (nanoseconds, where stat counts ticks).
func (s Servers) Sample() Sample {
	out := Sample{cpu: map[int]int64{}, slices: map[int]int64{}}
	for pm := range s.postmasters {
		out.read(pm)
		for _, pid := range children(pm) {
			out.read(pid)
		}
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal…
		for i, v := range f[min(1, len(f)):] {
			n, _ := strconv.ParseInt(v, 10, 64)
			if i < 8 {
				out.total += n
			}
			if i == 3 || i == 4 {
				out.idle += n
			}
		}
	}
	return out
}

// Since returns the server processes' CPU time between b and a, in
// nanoseconds (a process started after b counts whole, one ended before
// a not at all), and the share of the machine's time it was idle.
func (a Sample) Since(b Sample) (cpu int64, idle float64) {
	for pid, ns := range a.cpu {
		cpu += ns - b.cpu[pid]
	}
	if t := a.total - b.total; t > 0 {
		idle = float64(a.idle-b.idle) / float64(t)
	}
	return cpu, idle
}

// Activity returns, between b and a, how many server processes ran (a
// backend that served queries, a WAL receiver) and how many times they
// were put on a CPU: a process that sleeps between two queries wakes for
// each, so the count shows how a client spreads its queries over the
// servers' connections.
func (a Sample) Activity(b Sample) (ran int, slices int64) {
	for pid, ns := range a.cpu {
		if ns > b.cpu[pid] {
			ran++
			slices += a.slices[pid] - b.slices[pid]
		}
	}
	return ran, slices
}

// read adds pid's time on a CPU and its count of times on a CPU
// (schedstat's first and third fields), if it still runs.
func (out Sample) read(pid int) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
	if err != nil {
		return
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return
	}
	if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
		out.cpu[pid] = ns
	}
	if len(f) > 2 {
		if n, err := strconv.ParseInt(f[2], 10, 64); err == nil {
			out.slices[pid] = n
		}
	}
}

// children are the processes pid started that still run, from each of
// its threads' /proc/PID/task/TID/children (a postmaster has one).
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	var pids []int
	for _, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				pids = append(pids, c)
			}
		}
	}
	return pids
}

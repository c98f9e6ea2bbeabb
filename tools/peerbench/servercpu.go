package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// servers reads what the client's CPU time does not show: the CPU time of
// the topology's PostgreSQL processes (each postmaster and every process
// it started: the backends of every contender's connections, the WAL
// receivers, the checkpointer), and the machine's idle time. On a machine
// whose cores the client and the servers share, a query's cost is both.
type servers struct{ postmasters map[int]bool }

// newServers finds the postmasters of the data directories (the first
// line of postmaster.pid). A directory it cannot read is left out.
func newServers(dataDirs []string) servers {
	s := servers{postmasters: map[int]bool{}}
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

// A serverSample is each server process's CPU time so far, in
// nanoseconds, and the machine's idle and total time in clock ticks.
type serverSample struct {
	cpu         map[int]int64
	idle, total int64
}

// sample reads /proc: a process's time on a CPU from its schedstat
// (nanoseconds, where stat counts ticks), its parent from its stat.
func (s servers) sample() serverSample {
	out := serverSample{cpu: map[int]int64{}}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if !s.postmasters[pid] && !s.postmasters[parent(pid)] {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			continue
		}
		if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out.cpu[pid] = ns
		}
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		for i, v := range strings.Fields(line)[1:] { // user nice system idle iowait irq softirq steal…
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

// since returns the server processes' CPU time between b and a, in
// nanoseconds (a process started after b counts whole, one ended before
// a not at all), and the share of the machine's time it was idle.
func (a serverSample) since(b serverSample) (cpu int64, idle float64) {
	for pid, ns := range a.cpu {
		cpu += ns - b.cpu[pid]
	}
	if t := a.total - b.total; t > 0 {
		idle = float64(a.idle-b.idle) / float64(t)
	}
	return cpu, idle
}

// parent is pid's parent process, or 0.
func parent(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces and parentheses
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // state, ppid, …
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

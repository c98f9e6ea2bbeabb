package servercpu

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestServersCountChildrenCPU: the CPU time of a process started by a
// "postmaster" (here this test's own process, named by a postmaster.pid)
// is counted, one that started after the first reading whole, and the
// idle share is a share.
func TestServersCountChildrenCPU(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n/data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := New([]string{dir, filepath.Join(dir, "missing")})
	if len(srv.postmasters) != 1 {
		t.Fatalf("postmasters %v, want this process alone", srv.postmasters)
	}
	before := srv.Sample()
	// A child that spends CPU, says so and then waits to be killed.
	child := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done; exec sleep 60")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "done\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	start := time.Now()
	after := srv.Sample()
	t.Logf("a reading of /proc took %v", time.Since(start))
	cpu, idle := after.Since(before)
	if cpu < int64(20*time.Millisecond) {
		t.Errorf("the child's CPU counted %v, want the time its loop took (tens of ms at least)", time.Duration(cpu))
	}
	if idle < 0 || idle > 1 {
		t.Errorf("idle share %v, want one between 0 and 1", idle)
	}
	// The child ran: one process at least, put on a CPU at least once.
	if ran, slices := after.Activity(before); ran < 1 || slices < 1 {
		t.Errorf("Activity: %d processes ran, %d times on a CPU; want the child, at least once", ran, slices)
	}
}

// TestActivityCountsOnlyProcessesThatRan: a process whose CPU time did not
// grow is not counted, nor its times on a CPU; one that ran is, with the
// times it was put on a CPU between the two samples.
func TestActivityCountsOnlyProcessesThatRan(t *testing.T) {
	b := Sample{cpu: map[int]int64{1: 100, 2: 500}, slices: map[int]int64{1: 10, 2: 40}}
	a := Sample{cpu: map[int]int64{1: 100, 2: 900, 3: 50}, slices: map[int]int64{1: 12, 2: 47, 3: 2}}
	ran, slices := a.Activity(b)
	if ran != 2 || slices != 9 {
		t.Errorf("Activity = %d processes, %d times on a CPU; want 2 (the second and the new third) and 7 + 2", ran, slices)
	}
}

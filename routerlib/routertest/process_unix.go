//go:build unix

package routertest

import (
	"errors"
	"os"
	"syscall"
)

// runAs makes a command run as the server user; a no-op when servers run as
// ourselves.
func (u *serverUser) runAs(a *syscall.SysProcAttr) {
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid, NoSetGroups: true}
	}
}

// fileOwner returns the user and group that own a file.
func fileOwner(info os.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}

// stopProcess and continueProcess send SIGSTOP and SIGCONT; a process that
// has ended is not an error.
func stopProcess(pid int) error     { return signal(pid, syscall.SIGSTOP) }
func continueProcess(pid int) error { return signal(pid, syscall.SIGCONT) }

func signal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

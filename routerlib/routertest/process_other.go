//go:build !unix

package routertest

import (
	"errors"
	"os"
	"syscall"
)

// runAs does nothing: only a Unix root process hands the servers to another
// user (lookupServerUser), so there is never a server user here.
func (u *serverUser) runAs(*syscall.SysProcAttr) {}

// fileOwner knows no owner outside Unix.
func fileOwner(os.FileInfo) (uid, gid uint32, ok bool) { return 0, 0, false }

// errNoSignals is why a node cannot be frozen outside Unix: there is no
// SIGSTOP.
var errNoSignals = errors.New("freezing a server needs SIGSTOP and SIGCONT, which only Unix systems have")

func stopProcess(int) error     { return errNoSignals }
func continueProcess(int) error { return errNoSignals }

package routertest

import "syscall"

// dieWithParent has the kernel kill the child when the test process dies,
// so a crashed or killed test leaves no PgBouncer behind.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

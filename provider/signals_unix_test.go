//go:build unix

package provider

import "syscall"

// stopProcess and continueProcess pause and resume one server process
// (SIGSTOP, SIGCONT), where Node.Freeze stops the whole server.
func stopProcess(pid int) error     { return syscall.Kill(pid, syscall.SIGSTOP) }
func continueProcess(pid int) error { return syscall.Kill(pid, syscall.SIGCONT) }

//go:build !unix

package provider

import "errors"

// Outside Unix there is no SIGSTOP or SIGCONT to pause a process with.
func stopProcess(int) error     { return errors.ErrUnsupported }
func continueProcess(int) error { return errors.ErrUnsupported }

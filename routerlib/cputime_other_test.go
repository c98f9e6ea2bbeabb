//go:build !linux

package routerlib_test

func threadCPU() (int64, bool) { return 0, false }

func processCPU() (int64, bool) { return 0, false }

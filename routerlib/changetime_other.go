//go:build !linux

package routerlib

import (
	"os"
	"time"
)

// changeTime is zero where routerlib does not read the status-change time:
// there a router file made readable by chmod alone is read again only
// when it next changes, or by Router.Reload.
func changeTime(os.FileInfo) time.Time { return time.Time{} }

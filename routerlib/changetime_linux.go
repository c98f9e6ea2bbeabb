package routerlib

import (
	"os"
	"syscall"
	"time"
)

// changeTime is fi's status-change time (st_ctime), which chmod and chown
// move; see Router.watch.
func changeTime(fi os.FileInfo) time.Time {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}
	}
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
}

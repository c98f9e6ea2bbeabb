package routerlib

// CheckAskedForTest reports whether a check of the node called name was
// asked for now (see server.recheck) and its watcher has not taken the
// request yet.
func (r *Router) CheckAskedForTest(name string) bool {
	return len(r.cur.Load().byName[name].checkNow) > 0
}

package routerlib

import "testing"

// TestRecordEnd: an insert position just past a page's or a segment's
// header is the boundary itself, as a standby reports the end of the
// record it replayed there; any other position is already a record's end
// (TestSessionPositionAtAPageBoundary shows the page case on a server).
func TestRecordEnd(t *testing.T) {
	for _, c := range []struct{ in, want LSN }{
		{0x1_4DA018, 0x1_4DA000}, // a page's short header
		{0x3_000028, 0x3_000000}, // a segment's long header
		{0x3_100028, 0x3_100000}, // 1 MB in: a short header and the end of a continued record
		{0x1_4DA020, 0x1_4DA020}, // the end of a record in a page
		{0x1_4DA028, 0x1_4DA028}, // 40 bytes into a page other than a 1 MB boundary
		{0x1_4DA000, 0x1_4DA000},
	} {
		if got := recordEnd(c.in); got != c.want {
			t.Errorf("recordEnd(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

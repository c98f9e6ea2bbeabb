package guc

import "testing"

func TestMilliseconds(t *testing.T) {
	for in, want := range map[string]int64{
		"0":      0,
		"-1":     -1,
		"250":    250,
		"250ms":  250,
		"30s":    30000,
		"30 s":   30000,
		"5min":   300000,
		"300s":   300000,
		"1h":     3600000,
		"1d":     86400000,
		"1.5s":   1500,
		"1500us": 2, // rounds like the server
		" 60s ":  60000,
	} {
		got, err := Milliseconds(in)
		if err != nil || got != want {
			t.Errorf("Milliseconds(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "s", "5 minutes", "5m", "5MIN", "abc", "1e99s"} {
		if got, err := Milliseconds(in); err == nil {
			t.Errorf("Milliseconds(%q) = %d, want an error", in, got)
		}
	}
}

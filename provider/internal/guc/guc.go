// Package guc reads PostgreSQL time settings (recovery_min_apply_delay,
// wal_receiver_timeout, …) the way the server does, so that a configuration
// that says "300s" and a server that shows "5min" compare equal and
// `terraform plan` stays empty.
package guc

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// timeUnits are PostgreSQL's time units, in milliseconds. Unit names are
// case-sensitive, as in the server.
var timeUnits = map[string]float64{
	"us":  0.001,
	"ms":  1,
	"s":   1000,
	"min": 60 * 1000,
	"h":   60 * 60 * 1000,
	"d":   24 * 60 * 60 * 1000,
}

// Milliseconds parses a time setting whose base unit is the millisecond:
// a number, optionally fractional and negative, then optionally a unit
// (us, ms, s, min, h, d); no unit means milliseconds. Fractions round to the
// nearest millisecond, as the server rounds them. "-1" stays -1, which some
// settings read as "forever".
func Milliseconds(value string) (int64, error) {
	v := strings.TrimSpace(value)
	end := 0
	for end < len(v) && (v[end] == '-' || v[end] == '+' || v[end] == '.' || (v[end] >= '0' && v[end] <= '9')) {
		end++
	}
	num, unit := v[:end], strings.TrimSpace(v[end:])
	if num == "" {
		return 0, fmt.Errorf("%q is not a time: want a number with an optional unit (us, ms, s, min, h, d), such as \"30s\" or \"5min\"", value)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time: %q is not a number", value, num)
	}
	scale := 1.0
	if unit != "" {
		s, ok := timeUnits[unit]
		if !ok {
			return 0, fmt.Errorf("%q is not a time: unknown unit %q; valid units are us, ms, s, min, h and d", value, unit)
		}
		scale = s
	}
	ms := math.Round(f * scale)
	if ms > math.MaxInt32 || ms < math.MinInt32 {
		return 0, fmt.Errorf("%q is out of range for a PostgreSQL time setting", value)
	}
	return int64(ms), nil
}

package provider

import (
	"fmt"
	"strconv"
)

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func itoa(i int) string { return strconv.Itoa(i) }

func positive(v int64) error {
	if v <= 0 {
		return fmt.Errorf("want a positive number, got %d", v)
	}
	return nil
}

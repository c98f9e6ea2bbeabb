package validate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func run(v validator.String, value types.String) *validator.StringResponse {
	resp := &validator.StringResponse{}
	v.ValidateString(context.Background(), validator.StringRequest{Path: path.Root("attr"), ConfigValue: value}, resp)
	return resp
}

func TestString(t *testing.T) {
	calls := 0
	v := String("Invalid Thing", "a thing", func(s string) error {
		calls++
		if s != "ok" {
			return errors.New("not ok")
		}
		return nil
	})
	if d := run(v, types.StringValue("ok")).Diagnostics; d.HasError() {
		t.Errorf("a valid value was refused: %v", d)
	}
	d := run(v, types.StringValue("bad")).Diagnostics
	if !d.HasError() || d[0].Summary() != "Invalid Thing" || d[0].Detail() != "Not ok" {
		t.Errorf("a bad value gave %v", d)
	}
	run(v, types.StringNull())
	run(v, types.StringUnknown())
	if calls != 2 {
		t.Errorf("check ran %d times, want 2 (null and unknown values are not checked)", calls)
	}
	if v.Description(context.Background()) != "a thing" {
		t.Error("description lost")
	}
}

func TestPositiveDuration(t *testing.T) {
	if err := PositiveDuration("90s"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"0s", "-1s", "5", "soon"} {
		if err := PositiveDuration(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("PositiveDuration(%q) = %v, want an error naming the value", bad, err)
		}
	}
}

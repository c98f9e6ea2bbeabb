// Package validate turns a check of one string into a Terraform attribute
// validator, so that every rule the provider enforces at plan time (names,
// durations, PostgreSQL time settings) is written once, as a plain function
// that unit tests can call, and reported the same way.
package validate

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// String returns a validator that runs check on every known, non-null value
// and reports its error on the attribute under summary (a Title-Case
// diagnostic summary). description says what a valid value is, for docs.
func String(summary, description string, check func(string) error) validator.String {
	return stringCheck{summary: summary, description: description, check: check}
}

type stringCheck struct {
	summary, description string
	check                func(string) error
}

func (v stringCheck) Description(context.Context) string { return v.description }

func (v stringCheck) MarkdownDescription(context.Context) string { return v.description }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, sentence(err.Error()))
	}
}

// sentence starts a diagnostic's detail with a capital letter: checks return
// Go errors, which start in lower case so that they can be wrapped.
func sentence(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// PositiveDuration checks a Go duration ("90s", "5m") greater than zero.
func PositiveDuration(s string) error {
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = fmt.Errorf("it is not positive")
	}
	if err != nil {
		return fmt.Errorf("%q is not a positive duration such as \"90s\" or \"5m\": %v", s, err)
	}
	return nil
}

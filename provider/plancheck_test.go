package provider

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// expectDrift asserts that the plan updates the resource at addr in place and
// that the attributes whose value changes are exactly attrs: the drift a test
// made by hand, and nothing else. A computed attribute that the plan turns
// "known after apply" counts as a change: live status that churns in every
// drift plan would bury the field that drifted.
func expectDrift(addr string, attrs ...string) plancheck.PlanCheck {
	return driftCheck{addr: addr, action: tfjson.ActionUpdate, attrs: attrs}
}

// expectRecreate asserts that the plan creates the resource at addr (it was
// deleted out of band, so Read removed it from state).
func expectRecreate(addr string) plancheck.PlanCheck {
	return driftCheck{addr: addr, action: tfjson.ActionCreate}
}

type driftCheck struct {
	addr   string
	action tfjson.Action
	attrs  []string
}

func (c driftCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	var rc *tfjson.ResourceChange
	for _, r := range req.Plan.ResourceChanges {
		if r.Address == c.addr {
			rc = r
		}
	}
	if rc == nil {
		resp.Error = fmt.Errorf("%s: not in the plan", c.addr)
		return
	}
	if len(rc.Change.Actions) != 1 || rc.Change.Actions[0] != c.action {
		resp.Error = fmt.Errorf("%s: planned actions %v, want [%s]", c.addr, rc.Change.Actions, c.action)
		return
	}
	if c.action != tfjson.ActionUpdate {
		return
	}
	before, _ := rc.Change.Before.(map[string]any)
	after, _ := rc.Change.After.(map[string]any)
	unknown, _ := rc.Change.AfterUnknown.(map[string]any)
	var changed []string
	for k, b := range before {
		a := after[k]
		if u, _ := unknown[k].(bool); u || !reflect.DeepEqual(a, b) {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	want := append([]string(nil), c.attrs...)
	sort.Strings(want)
	if !reflect.DeepEqual(changed, want) {
		resp.Error = fmt.Errorf("%s: the plan changes [%s], want exactly [%s]", c.addr, strings.Join(changed, ", "), strings.Join(want, ", "))
	}
}

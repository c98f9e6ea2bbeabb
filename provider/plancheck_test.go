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
	attrs  []string   // expectDrift: the top-level attributes that change
	paths  [][]string // expectDriftAt: the leaves that change, when not nil
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
	if c.paths != nil {
		var changed []string
		changedLeaves(nil, rc.Change.Before, rc.Change.After, rc.Change.AfterUnknown, &changed)
		want := make([]string, len(c.paths))
		for i, p := range c.paths {
			want[i] = leafPath(p)
		}
		sort.Strings(changed)
		sort.Strings(want)
		if !reflect.DeepEqual(changed, want) {
			resp.Error = fmt.Errorf("%s: the plan changes [%s], want exactly [%s]", c.addr, strings.Join(changed, ", "), strings.Join(want, ", "))
		}
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

// expectDriftAt is expectDrift down to the leaves: the plan updates the
// resource at addr in place, and the values it changes are exactly those at
// paths, each a list of steps through attributes, nested objects and maps
// ("tables", "public.books", "where"). A value that appears or disappears
// (a map element) is changed at its own path; lists and sets are leaves.
// It is how a test asserts that a drift made by hand shows as the one field
// that drifted, not as a whole element removed and another added.
func expectDriftAt(addr string, paths ...[]string) plancheck.PlanCheck {
	return driftCheck{addr: addr, action: tfjson.ActionUpdate, paths: paths}
}

// changedLeaves appends to out the paths below prefix where before and after
// differ, or where after is unknown.
func changedLeaves(prefix []string, before, after, unknown any, out *[]string) {
	if u, _ := unknown.(bool); u {
		*out = append(*out, leafPath(prefix))
		return
	}
	b, bok := before.(map[string]any)
	a, aok := after.(map[string]any)
	if !bok || !aok {
		if !reflect.DeepEqual(before, after) {
			*out = append(*out, leafPath(prefix))
		}
		return
	}
	u, _ := unknown.(map[string]any)
	keys := map[string]bool{}
	for k := range b {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	for k := range keys {
		path := append(append([]string(nil), prefix...), k)
		bv, inBefore := b[k]
		av, inAfter := a[k]
		if inBefore != inAfter {
			*out = append(*out, leafPath(path))
			continue
		}
		changedLeaves(path, bv, av, u[k], out)
	}
}

// leafPath writes steps as tables["public.books"].where: quoted where a step
// is not a plain attribute name.
func leafPath(steps []string) string {
	var b strings.Builder
	for i, s := range steps {
		switch {
		case i == 0:
			b.WriteString(s)
		case strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_0123456789") == "":
			b.WriteString("." + s)
		default:
			fmt.Fprintf(&b, "[%q]", s)
		}
	}
	return b.String()
}

package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/atomicfile"
)

// routerFileClaims are the router files that the pgreplication_router_config
// resources of one provider instance write, by canonical path: two
// resources writing one file would each rewrite the other's on every apply
// and show it as drift on every plan. Each ModifyPlan claims its file; a
// second claim is refused at plan time. The provider's Configure makes a new
// set for every plan and apply (Terraform configures the provider once per
// walk), so the claims of one plan never meet the next one's.
//
// Terraform does not tell a provider a resource's address, so a claim is
// told apart from another resource's by a token the claiming resource keeps
// in its private state: Terraform passes the planned private state to the
// second PlanResourceChange it makes for a replacement, which then
// recognises its own claim.
type routerFileClaims struct {
	mu sync.Mutex
	m  map[string]routerFileClaim // by canonicalRouterPath
}

// routerFileClaim is one resource's claim on a router file.
type routerFileClaim struct {
	token    string // in the claiming resource's private state
	declared string // path as its configuration spells it
	primary  string // its primary node, `"name" (host h)`, or ""
}

// routerFileClaimKey is the private-state key of a resource's claim token.
const routerFileClaimKey = "router_file_claim"

// claimRouterFile claims the file at declared for the resource planned with
// private, and adds an error on path naming the other resource's path and
// primary node when another resource of this provider instance claimed the
// same file first.
func (c *routerFileClaims) claimRouterFile(ctx context.Context, declared, primary string, private interface {
	privateGetter
	privateSetter
}, diags *diag.Diagnostics) {
	canonical, err := canonicalRouterPath(declared)
	if err != nil {
		return // the write reports it, naming the path
	}
	var token string
	if raw, d := private.GetKey(ctx, routerFileClaimKey); !d.HasError() && raw != nil {
		_ = json.Unmarshal(raw, &token)
	}
	if token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		token = hex.EncodeToString(b)
		raw, _ := json.Marshal(token)
		diags.Append(private.SetKey(ctx, routerFileClaimKey, raw)...)
	}
	c.mu.Lock()
	other, taken := c.m[canonical]
	if !taken {
		c.m[canonical] = routerFileClaim{token: token, declared: declared, primary: primary}
	}
	c.mu.Unlock()
	if !taken || other.token == token {
		return
	}
	same := ""
	if canonical != declared || canonical != other.declared {
		same = fmt.Sprintf(" (both name %s)", canonical)
	}
	otherDesc := fmt.Sprintf("path = %q", other.declared)
	if other.primary != "" {
		otherDesc += ", primary node " + other.primary
	}
	diags.AddAttributeError(path.Root("path"), "Router File Written by Two Resources",
		fmt.Sprintf("This pgreplication_router_config (path = %q) and another one in this configuration (%s) write the same router file%s. "+
			"Each apply would replace the other's file and every plan would show it as drift, and the application would read whichever was written last. "+
			"Give each resource its own path, or keep one resource for the file: one router file holds one topology, and route blocks in it name sets of replicas for different reads.",
			declared, otherDesc, same))
}

// canonicalRouterPath is the file that writing path writes, spelled one way:
// absolute (relative paths are taken from the provider's working directory,
// Terraform's), cleaned of "." and "..", and through any symbolic link
// (atomicfile.Target, which resolves every directory on the way too).
func canonicalRouterPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return atomicfile.Target(abs)
}

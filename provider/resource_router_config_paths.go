package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/atomicfile"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
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
	token    string      // in the claiming resource's private state
	declared string      // path as its configuration spells it
	primary  string      // its primary node, `"name" (host h)`, or ""
	file     os.FileInfo // the file when it exists, to tell hard links apart; else nil
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
	// A hard link is another name of the same file, which no spelling of
	// the path reveals: compared by identity where the file exists.
	// (Writing one name replaces that name's file, so the other name keeps
	// the old bytes: the application reads whichever name it was given.)
	file, _ := os.Stat(canonical)
	c.mu.Lock()
	other, taken := c.m[canonical]
	hardLink := ""
	if !taken && file != nil {
		for otherCanonical, o := range c.m {
			if o.file != nil && os.SameFile(file, o.file) {
				other, taken, hardLink = o, true, otherCanonical
				break
			}
		}
	}
	if !taken {
		c.m[canonical] = routerFileClaim{token: token, declared: declared, primary: primary, file: file}
	}
	c.mu.Unlock()
	if !taken || other.token == token {
		return
	}
	same := ""
	switch {
	case hardLink != "":
		same = fmt.Sprintf(" (%s and %s are hard links: two names of one file)", canonical, hardLink)
	case canonical != declared || canonical != other.declared:
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

// routerFileOwnedKey is the private-state key under which ModifyPlan
// records, for a resource with state, the file its path leads to and that
// file's sha256. Terraform plans a replacement's new object with no prior
// state but with the old object's planned private state, so that plan knows
// the file at the path is its own old object's.
const routerFileOwnedKey = "router_file_owned"

// routerFileOwned is the file a resource's current object wrote or read.
type routerFileOwned struct {
	Target string `json:"target"` // atomicfile.Target of its path
	SHA256 string `json:"sha256"`
}

// routerFileTakenSummary is the summary of the refusal to write over a file
// this resource did not write.
const routerFileTakenSummary = "Router File Already Exists"

// routerFileTakenError is that refusal, its detail as the message.
type routerFileTakenError struct {
	detail     string
	routerFile bool // the file there is a router file
}

func (e *routerFileTakenError) Error() string { return e.detail }

// mayCreateRouterFile is the rule for writing a router file at a path this
// resource has not written yet (a new resource, or a new path): only where
// there is no file, or where the file holds exactly data, the bytes about to
// be written (data is nil when not known yet), so that no reader sees a
// change. Any other file, another resource's router file (of another
// provider configuration, another Terraform configuration, a -target plan
// that left the other resource out) or a file that is not a router file at
// all, is someone else's: writing over it would be an outage. (The file of
// this resource's own replaced object is the one exception, which only a
// recorded routerFileReplacement proves.)
func mayCreateRouterFile(declared, primary string, data []byte) func(atomicfile.Current) error {
	return func(cur atomicfile.Current) error {
		if !cur.Exists || data != nil && bytes.Equal(cur.Data, data) {
			return nil
		}
		return routerFileTaken(declared, primary, cur)
	}
}

// routerFileTaken is the refusal to write over cur: its detail names this
// resource (its path and primary node), the file that is there and what it
// is, and the fixes.
func routerFileTaken(declared, primary string, cur atomicfile.Current) *routerFileTakenError {
	what, routerFile := routerFileHolds(cur)
	detail := fmt.Sprintf("This pgreplication_router_config (%s) would write %s, where a file that this resource did not write already is: %s. "+
		"Writing over it would replace what an application may be reading, so nothing is written. "+
		"If it belongs to another pgreplication_router_config (under another provider configuration or alias, in another Terraform configuration or workspace, or one left out of a -target plan), give this resource its own path. "+
		"If this resource is to manage the existing file, import it (terraform import, with this resource's address and the ID %q, or an import block with that id) and plan again; if nothing needs the file, remove it. "+
		"(A create_before_destroy replacement of this resource writes over its old object's file when the plan that set it up recorded that file and the content to write (in the user's cache directory) and the file is unchanged since: "+
		"if that plan was made by another user or on another machine, or the cache directory was cleared since, plan and apply again here; if the content was not known at plan, apply first what it depends on (-target), then plan again. The old object stays in the state until then.)",
		routerFileThis(declared, primary), routerFileWhere(declared, cur), what, declared)
	return &routerFileTakenError{detail: detail, routerFile: routerFile}
}

// routerFileChangedSincePlan is the refusal of a create_before_destroy
// replacement to write over its old object's file, rec, which is no longer
// the file the plan saw: cur is there instead.
func routerFileChangedSincePlan(declared, primary string, cur atomicfile.Current, rec *routerFileReplacement) *routerFileTakenError {
	what, routerFile := routerFileHolds(cur)
	detail := fmt.Sprintf("This pgreplication_router_config (%s) replaces its old object (create_before_destroy), whose file %s the plan recorded (sha256 %s), "+
		"but that file was changed or replaced since the plan: it is now %s (sha256 %s). "+
		"Writing over it could replace what another writer or a hand edit put there, so nothing is written, and the old object stays in the state with its file. "+
		"Find out what changed the file, then plan and apply again: the plan reads the file as it is now and shows what the apply will write over it.",
		routerFileThis(declared, primary), routerFileWhere(declared, cur), rec.SHA256, what, sha256Hex(cur.Data))
	return &routerFileTakenError{detail: detail, routerFile: routerFile}
}

// routerFileThis names a resource in a refusal: its path and primary node.
func routerFileThis(declared, primary string) string {
	this := fmt.Sprintf("path = %q", declared)
	if primary != "" {
		this += ", primary node " + primary
	}
	return this
}

// routerFileWhere is the file cur, and where declared leads when that is
// another name.
func routerFileWhere(declared string, cur atomicfile.Current) string {
	if abs, err := filepath.Abs(declared); err == nil && abs != currentTarget(cur) {
		return fmt.Sprintf("%s (where %s leads)", cur.Target, declared)
	}
	return cur.Target
}

// routerFileHolds says what cur holds, for a refusal, and whether it is a
// router file: the primary's name only, since a host may be a connection
// URI, and the file was written by someone else.
func routerFileHolds(cur atomicfile.Current) (what string, routerFile bool) {
	what = fmt.Sprintf("a file that is not a router file (%d bytes)", len(cur.Data))
	t, parseErr := artifact.Parse(cur.Data)
	if parseErr == nil {
		what = "a router file"
		for _, n := range t.Nodes {
			if n.Role == artifact.RolePrimary {
				what = fmt.Sprintf("a router file whose primary node is %q", n.Name)
			}
		}
	}
	if fi, err := os.Stat(cur.Target); err == nil {
		what += ", last modified " + fi.ModTime().UTC().Format(time.RFC3339)
	}
	return what, parseErr == nil
}

// routerFilePrimary names a topology's primary node for messages,
// `"name" (host h)`, or "" when it has none.
func routerFilePrimary(t artifact.Topology) string {
	for _, n := range t.Nodes {
		if n.Role == artifact.RolePrimary {
			return fmt.Sprintf("%q (host %s)", n.Name, n.Host)
		}
	}
	return ""
}

// checkNewRouterFile refuses at plan time what write would refuse at apply:
// a new resource, or a new path, whose file is already there and not this
// resource's (mayCreateRouterFile). It also records, for a resource with
// state, the file that state says it wrote, for the plan of a replacement,
// which records the replacement for its apply (routerFileReplacement).
// Terraform plans again at apply time, where the plan sees what other
// provider configurations wrote since (and paths unknown before).
func (r *routerConfigResource) checkNewRouterFile(ctx context.Context, plan, state routerConfigModel, create bool, primary string, resp *resource.ModifyPlanResponse) {
	if !create && !state.Path.IsNull() {
		if target, err := canonicalRouterPath(state.Path.ValueString()); err == nil {
			raw, _ := json.Marshal(routerFileOwned{Target: target, SHA256: state.SHA256.ValueString()})
			resp.Diagnostics.Append(resp.Private.SetKey(ctx, routerFileOwnedKey, raw)...)
			// A replacement planned before and never applied: its record
			// goes. If this plan replaces the resource, Terraform plans
			// the new object next, which records it again.
			id := routerFileID(ctx, resp.Private)
			if rec, _ := loadRouterReplacement(target); rec != nil && (id == "" || rec.FileID == id || rec.ReplacedBy == id) {
				dropRouterReplacement(target)
			}
		}
	}
	if plan.Path.IsNull() || plan.Path.IsUnknown() {
		return
	}
	name := plan.Path.ValueString()
	var owned *routerFileOwned
	if create {
		if raw, d := resp.Private.GetKey(ctx, routerFileOwnedKey); !d.HasError() && raw != nil {
			var o routerFileOwned
			if json.Unmarshal(raw, &o) == nil {
				owned = &o
			}
		}
	} else if !state.Path.IsNull() && sameRouterPath(state.Path.ValueString(), name) {
		return // an update of the file it wrote
	}
	cur, err := atomicfile.Read(name)
	if err != nil {
		return // the write reports it, naming the path
	}
	var data []byte
	if !plan.Content.IsUnknown() {
		data = []byte(plan.Content.ValueString())
	}
	if owned != nil && cur.Exists && owned.Target == currentTarget(cur) && owned.SHA256 == sha256Hex(cur.Data) {
		if id := routerFileID(ctx, resp.Private); id == "" || id == cur.ID {
			// The plan of a replacement's new object, over the file its old
			// object wrote or last read: recorded for the apply, which is
			// not told.
			if data == nil {
				// A record permits writing the planned bytes only, so none
				// is written: the apply of a create_before_destroy
				// replacement refuses the file, as anyone's. (The plan
				// cannot tell create_before_destroy from destroy, then
				// create, which removes the file first and is not refused.)
				resp.Diagnostics.AddAttributeWarning(path.Root("path"), "Router File Replacement Not Recorded",
					fmt.Sprintf("This pgreplication_router_config (path = %q) is replaced, and its content is not known until apply (it depends on values known only then). "+
						"If it is replaced create_before_destroy, its new object would write over the file its old object wrote, %s; Terraform does not tell the apply that the file is the old object's, "+
						"so the plan records the file with the bytes the apply may write over it, and without the bytes it records nothing: the apply will then refuse to write over the file, before anything is written, and the old object stays in the state. "+
						"To replace it create_before_destroy, apply first what the content depends on (terraform apply -target=ADDRESS, with that resource's address), then plan again: the content is then known. "+
						"Without create_before_destroy (destroy, then create) this does not matter.",
						name, cur.Target))
				return
			}
			rec := routerFileReplacement{Target: owned.Target, FileID: cur.ID, Changed: cur.Changed, SHA256: owned.SHA256, NewSHA256: sha256Hex(data)}
			if err := saveRouterReplacement(rec); err != nil && mayCreateRouterFile(name, primary, data)(cur) != nil {
				dir, _ := routerReplacementsDir()
				resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot Record Router File Replacement",
					fmt.Sprintf("This pgreplication_router_config (path = %q) is replaced, and its new object is to write over the file its old object wrote, %s. "+
						"Terraform does not tell the apply that the file is the old object's, so the plan records it in %s, and that failed: %v. Nothing was changed. "+
						"Make that directory belong to the user running Terraform, writable by that user alone (or set XDG_CACHE_HOME to one that is), or drop create_before_destroy.",
						name, cur.Target, dir, err))
			}
			return
		}
	}
	var recErr error
	if create && owned == nil {
		var rec *routerFileReplacement
		rec, recErr = loadRouterReplacement(currentTarget(cur))
		if rec.covers(cur, data) || cur.Exists && rec.plannedFor(currentTarget(cur), data) {
			// The apply's plan of a replacement's new object: the file is
			// still its old object's (Create writes over it), or it changed
			// since the plan, which Create refuses; an error here would drop
			// the old object from the state.
			return
		}
	}
	var taken *routerFileTakenError
	if !errors.As(mayCreateRouterFile(name, primary, data)(cur), &taken) {
		return
	}
	if !create && !taken.routerFile {
		resp.Diagnostics.AddAttributeError(path.Root("path"), routerFileTakenSummary, taken.detail)
		return
	}
	// The file, a router file or not, is most likely someone else's, but
	// it may be this resource's own old object's when the apply finds no
	// record of the replacement (a plan made by another user, on another
	// machine, or a cache directory cleared since): at apply, Terraform
	// plans a create_before_destroy replacement again with the old object
	// set aside and nothing that says so, and an error from that plan
	// leaves the old object out of the state (its file then looks like
	// anyone's to every later plan). An error from Create instead puts the
	// old object back. So the plan warns and the apply refuses. (An update
	// to a new path keeps its state whatever its plan says: another
	// router file there is warned of, as its writer may remove it first.)
	detail := taken.detail
	if recErr != nil {
		detail += " The record of a replacement could not be used: " + recErr.Error() + "."
	}
	resp.Diagnostics.AddAttributeWarning(path.Root("path"), routerFileTakenSummary, detail+
		" This plan is not refused, because it cannot always tell this from a create_before_destroy replacement of this resource; applying it stops at this resource, before anything is written, if the file is still there.")
}

// routerFileReplacement is what the plan of a create_before_destroy
// replacement's new object knows and its apply is not told: that the file
// at its path is the one its old object wrote or last read. Terraform plans
// the new object twice: in the plan, with the old object's private state
// (routerFileOwned), and again at apply, with the old object already set
// aside and nothing of it (no prior state, no private state; an error from
// that second plan drops the old object from the state). Create gets only
// that second plan. So the first plan records the replacement here, outside
// the state, and the apply writes over the file only while it is still
// exactly that file: the same identity (device and inode, and change time,
// since a removed file's inode number is given to the next file made) and
// the same bytes. Another resource's file, a file made by hand or a file
// changed by hand since the plan is another file (a write makes a new
// inode; an edit in place changes the change time and the bytes), and is
// refused as before. Once written,
// ReplacedBy names the new file, so the old object's destroy leaves it
// without a warning.
//
// Records live in the user's cache directory (routerReplacementsDir, the
// user's alone: routerRecordDir), one per file, by the hash of the file's
// canonical path. A record permits nothing but writing the planned bytes
// over that very file, so none is written when the content is not known at
// plan (the plan warns, and the apply refuses that replacement). A plan
// that is never applied leaves its record until the resource's next plan,
// which drops it (and records it again when it replaces the resource), or
// its apply or destroy.
//
// A create that writes the same bytes over an existing file without a
// record (a replacement whose content did not change, planned elsewhere)
// records ReplacedBy too, so the old object's destroy leaves the new file.
type routerFileReplacement struct {
	Target     string `json:"target"`                // atomicfile.Target of the path
	FileID     string `json:"file_id"`               // the old object's file (atomicfile.FileID)
	Changed    int64  `json:"changed"`               // and its change time (atomicfile.Current.Changed)
	SHA256     string `json:"sha256"`                // its bytes, as the plan saw them
	NewSHA256  string `json:"new_sha256,omitempty"`  // the planned content
	ReplacedBy string `json:"replaced_by,omitempty"` // the new object's file, once written
}

// covers reports whether the replacement permits writing data over cur:
// cur is still the file the plan saw, and data the planned content.
func (r *routerFileReplacement) covers(cur atomicfile.Current, data []byte) bool {
	return r.plannedFor(currentTarget(cur), data) && cur.Exists && r.FileID == cur.ID && r.Changed == cur.Changed && r.SHA256 == sha256Hex(cur.Data)
}

// currentTarget is cur's file as canonicalRouterPath spells it: absolute
// (cur.Target is relative when the path is).
func currentTarget(cur atomicfile.Current) string {
	if abs, err := filepath.Abs(cur.Target); err == nil {
		return abs
	}
	return cur.Target
}

// plannedFor reports whether the replacement was planned for a write of
// data at target, whatever the file there is now. A record always holds
// the planned content (none is written when it is unknown at plan), and
// permits writing nothing else.
func (r *routerFileReplacement) plannedFor(target string, data []byte) bool {
	return r != nil && r.ReplacedBy == "" && r.Target == target && r.NewSHA256 != "" && data != nil && r.NewSHA256 == sha256Hex(data)
}

// routerReplacementsDir is where replacements are recorded: the user's
// cache directory ($XDG_CACHE_HOME, or ~/.cache, on Linux).
func routerReplacementsDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "terraform-provider-pgreplication", "router-file-replacements"), nil
}

// routerRecordDir is routerReplacementsDir, made first (0700) when create
// is true, once it and the provider's directory above it are checked to be
// the current user's alone (routerRecordUnsafe): a record permits writing
// over a router file, so one that someone else could write is never used.
// The cache directory itself may be shared (XDG_CACHE_HOME=/tmp).
func routerRecordDir(create bool) (string, error) {
	dir, err := routerReplacementsDir()
	if err != nil {
		return "", err
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return "", err
		}
		if err := routerRecordUnsafe(d, fi, true); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// routerRecordUnsafe refuses a record directory (dir) or record file that
// is a symbolic link, is not a directory or regular file, is owned by
// another user than the one running Terraform, or that its group or others
// may write.
func routerRecordUnsafe(name string, fi fs.FileInfo, dir bool) error {
	uid, hasOwner := atomicfile.OwnerUID(fi)
	var why string
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		why = "is a symbolic link"
	case dir && !fi.IsDir():
		why = "is not a directory"
	case !dir && !fi.Mode().IsRegular():
		why = "is not a regular file"
	case hasOwner && uid != os.Geteuid():
		why = fmt.Sprintf("is owned by uid %d, not by the user running Terraform (uid %d)", uid, os.Geteuid())
	case hasOwner && fi.Mode().Perm()&0o022 != 0:
		why = fmt.Sprintf("may be written by its group or by others (mode %04o)", fi.Mode().Perm())
	default:
		return nil
	}
	return fmt.Errorf("%s %s. A record there of a create_before_destroy replacement lets the apply write over a router file, so one that another user could write or redirect is never used. "+
		"Remove %s (the provider makes it again, for you alone), or set XDG_CACHE_HOME to a directory that only the user running Terraform can write", name, why, name)
}

func routerReplacementFile(dir, target string) string {
	return filepath.Join(dir, sha256Hex([]byte(target))+".json")
}

// loadRouterReplacement is the replacement recorded for target, or nil;
// the error says why a record directory or file was not used
// (routerRecordUnsafe).
func loadRouterReplacement(target string) (*routerFileReplacement, error) {
	dir, err := routerRecordDir(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	name := routerReplacementFile(dir, target)
	f, err := atomicfile.OpenNoFollow(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		if fi, lerr := os.Lstat(name); lerr == nil {
			if unsafe := routerRecordUnsafe(name, fi, false); unsafe != nil {
				return nil, unsafe
			}
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := routerRecordUnsafe(name, fi, false); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<16))
	if err != nil {
		return nil, err
	}
	var r routerFileReplacement
	if json.Unmarshal(data, &r) != nil || r.Target != target {
		return nil, nil
	}
	return &r, nil
}

// saveRouterReplacement records r, readable by its user only.
func saveRouterReplacement(r routerFileReplacement) error {
	dir, err := routerRecordDir(true)
	if err != nil {
		return err
	}
	name := routerReplacementFile(dir, r.Target)
	if fi, err := os.Lstat(name); err == nil {
		if err := routerRecordUnsafe(name, fi, false); err != nil {
			return err
		}
	}
	data, _ := json.Marshal(r)
	return atomicfile.Write(name, data, 0o600)
}

// dropRouterReplacement removes the record for target, if any.
func dropRouterReplacement(target string) {
	if dir, err := routerRecordDir(false); err == nil {
		_ = os.Remove(routerReplacementFile(dir, target))
	}
}

package machined

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/k8s/bundle"
	"github.com/plinthos/plinth/pkg/api/machine"
)

// imageRef is one reference of ctr images ls: a name, or the CRI's alias of an image by
// its ID (sha256:...) or by its digest (NAME@sha256:...), and the manifest it points to.
type imageRef struct {
	name, digest string
	size         uint64
}

// alias says whether the reference is one the CRI adds beside an image's names.
func (r imageRef) alias() bool {
	return strings.HasPrefix(r.name, "sha256:") || strings.Contains(r.name, "@")
}

// parseRefs reads every reference of ctr images ls, aliases included.
func parseRefs(out []byte) []imageRef {
	var refs []imageRef
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || !strings.HasPrefix(f[2], "sha256:") {
			continue // the header, or a line of another shape
		}
		refs = append(refs, imageRef{name: f[0], digest: f[2], size: parseSize(f[3], f[4])})
	}
	return refs
}

// normalizeImage is the full reference of an image name as the store records it:
// myapp:v1 is docker.io/library/myapp:v1, and a name without a tag is :latest.
func normalizeImage(name string) (string, error) {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "%q is not an image reference: %v", name, err)
	}
	return reference.TagNameOnly(n).String(), nil
}

// planRemove decides what removing names takes: the references to delete (the names, and
// the aliases of an image left with no name) and the images removed. It refuses a name the
// store lacks (a built-in image with a message of its own) and an image that a container
// (running or not) was made from.
func planRemove(refs []imageRef, containers []ctrContainer, builtin []bundle.Builtin, names []string) ([]string, []*machine.Image, error) {
	if len(names) == 0 {
		return nil, nil, status.Error(codes.InvalidArgument, "name the images to remove (plinthctl image list shows them)")
	}
	byName := map[string]imageRef{}
	for _, r := range refs {
		byName[r.name] = r
	}
	var del []string
	var removed []*machine.Image
	gone := map[string]bool{} // digests whose names are all deleted, so far
	for _, name := range names {
		full, err := normalizeImage(name)
		if err != nil {
			return nil, nil, err
		}
		r, ok := byName[full]
		if i := slices.IndexFunc(builtin, func(b bundle.Builtin) bool { return b.Name == full }); i >= 0 && !ok {
			return nil, nil, status.Errorf(codes.FailedPrecondition, "%s is built into the node: it runs its own %s, not an image of the store, and it cannot be removed", full, builtin[i].Program)
		}
		if !ok || r.alias() {
			return nil, nil, status.Errorf(codes.NotFound, "the node holds no image %s (plinthctl image list shows what it holds)", full)
		}
		if slices.Contains(del, full) {
			continue
		}
		for _, c := range containers {
			if ci, ok := byName[c.image]; c.image == full || ok && ci.digest == r.digest {
				what := "container " + c.name()
				if pod := c.pod(); pod != "" {
					what += " of pod " + pod
				}
				return nil, nil, status.Errorf(codes.FailedPrecondition, "%s is the image of %s: delete what runs it first", full, what)
			}
		}
		del = append(del, full)
		removed = append(removed, &machine.Image{Name: full, Digest: r.digest, SizeBytes: r.size})
		gone[r.digest] = true
	}
	// An image keeps its aliases while another name still points at it.
	for _, r := range refs {
		if !r.alias() && !slices.Contains(del, r.name) {
			delete(gone, r.digest)
		}
	}
	for _, r := range refs {
		if r.alias() && gone[r.digest] {
			del = append(del, r.name)
		}
	}
	return del, removed, nil
}

// Remove removes images from the Kubernetes image store by name; the content goes once
// no name is left. The node reimports its bundled images at its next boot.
func (l ctrLister) Remove(ctx context.Context, names []string) ([]*machine.Image, error) {
	out, err := ctr(ctx, "k8s.io", "images", "ls")
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	containers, err := l.list(ctx, "k8s.io")
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	del, removed, err := planRemove(parseRefs(out), containers, l.builtin, names)
	if err != nil {
		return nil, err
	}
	if _, err := ctr(ctx, "k8s.io", append([]string{"images", "rm", "--sync"}, del...)...); err != nil {
		return nil, fmt.Errorf("remove: %w", err)
	}
	return removed, nil
}

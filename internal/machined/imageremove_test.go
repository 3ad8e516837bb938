package machined

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/k8s/bundle"
)

func TestPlanRemove(t *testing.T) {
	const app, pause, shared = "sha256:aaaa", "sha256:bbbb", "sha256:cccc"
	refs := []imageRef{
		{name: "docker.io/library/myapp:v1", digest: app, size: 10},
		{name: "sha256:1111", digest: app},
		{name: "docker.io/library/myapp@sha256:aaaa", digest: app},
		{name: "plinth.local/pause:3.10", digest: pause},
		{name: "sha256:2222", digest: pause},
		{name: "e2e.local/tool:1", digest: shared},
		{name: "e2e.local/tool:latest", digest: shared},
		{name: "sha256:3333", digest: shared},
	}
	sandbox := ctrContainer{id: "abcdef0123456789", image: "sha256:2222",
		labels: map[string]string{"io.cri-containerd.kind": "sandbox", "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "default"}}
	containers := []ctrContainer{sandbox}
	builtin := []bundle.Builtin{{Name: "plinth.local/kubelet:v1.37.2", Digest: "sha256:dddd", Program: "/usr/bin/kubelet"}}

	// A short name is the store's full reference; the image's aliases go with its only name.
	del, removed, err := planRemove(refs, containers, nil, []string{"myapp:v1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker.io/library/myapp:v1", "sha256:1111", "docker.io/library/myapp@sha256:aaaa"}; !slices.Equal(del, want) {
		t.Errorf("deletes %v, want %v", del, want)
	}
	if len(removed) != 1 || removed[0].Name != "docker.io/library/myapp:v1" || removed[0].Digest != app || removed[0].SizeBytes != 10 {
		t.Errorf("removed %v", removed)
	}

	// An image with another name keeps its alias; both names take it.
	del, _, err = planRemove(refs, containers, nil, []string{"e2e.local/tool:1"})
	if err != nil || !slices.Equal(del, []string{"e2e.local/tool:1"}) {
		t.Errorf("one of two names: deletes %v (%v)", del, err)
	}
	del, removed, err = planRemove(refs, containers, nil, []string{"e2e.local/tool:1", "e2e.local/tool", "e2e.local/tool:1"})
	if err != nil || !slices.Equal(del, []string{"e2e.local/tool:1", "e2e.local/tool:latest", "sha256:3333"}) || len(removed) != 2 {
		t.Errorf("both names: deletes %v, removed %v (%v)", del, removed, err)
	}

	for _, c := range []struct {
		names []string
		code  codes.Code
		msg   string
	}{
		{nil, codes.InvalidArgument, "name the images"},
		{[]string{"myapp:v2"}, codes.NotFound, "holds no image docker.io/library/myapp:v2"},
		{[]string{"sha256:1111"}, codes.NotFound, "holds no image docker.io/library/sha256:1111"}, // an alias is not a name
		{[]string{"UPPER:case"}, codes.InvalidArgument, "not an image reference"},
		// The node's own kubelet is listed as an image but is not one of the store.
		{[]string{"myapp:v1", "plinth.local/kubelet:v1.37.2"}, codes.FailedPrecondition, "plinth.local/kubelet:v1.37.2 is built into the node: it runs its own /usr/bin/kubelet"},
		// The sandbox names its image by ID; the name points at the same manifest.
		{[]string{"myapp:v1", "plinth.local/pause:3.10"}, codes.FailedPrecondition, "plinth.local/pause:3.10 is the image of container pause (abcdef012345) of pod default/web"},
	} {
		_, _, err := planRemove(refs, containers, builtin, c.names)
		st, _ := status.FromError(err)
		if err == nil || st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
			t.Errorf("%v: got %v, want %s %q", c.names, err, c.code, c.msg)
		}
	}
}

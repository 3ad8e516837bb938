package machined

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/cgroupmetrics"
	"github.com/plinthos/plinth/internal/k8s/bundle"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/reaper"
	"github.com/plinthos/plinth/pkg/api/machine"
)

// ctrLister lists containerd's containers and reads their metrics with the node's ctr.
type ctrLister struct {
	// builtin are the images whose program the node carries itself (paths.BuiltinImagesFile).
	builtin []bundle.Builtin
}

// newCtrLister reads the node's built-in images; a list that cannot be read is said and
// left out.
func newCtrLister(log *slog.Logger) ctrLister {
	builtin, err := bundle.ReadBuiltin(paths.BuiltinImagesFile)
	if err != nil {
		log.Warn("the node's built-in images are left out of its image list", "err", err)
	}
	return ctrLister{builtin: builtin}
}

// ctr runs ctr against the node's containerd in namespace ns.
func ctr(ctx context.Context, ns string, args ...string) ([]byte, error) {
	cmd := reaper.Command(ctx, "/usr/bin/ctr", append([]string{"--address", render.ContainerdSocket, "--namespace", ns}, args...)...) // environment: reaper.MinimalEnv
	// A grandchild that keeps the output open does not hold Wait once the context ends.
	cmd.WaitDelay = 10 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

// namespaceOf is containerd's namespace of the Kubernetes containers (k8s.io) or of the
// system ones (system; machined runs its own services as processes, so usually none).
func namespaceOf(kubernetes bool) string {
	if kubernetes {
		return "k8s.io"
	}
	return "system"
}

// ctrContainer is a container as ctr shows it.
type ctrContainer struct {
	id, image string
	labels    map[string]string
	pid       int
	status    string
}

// list lists the containers of namespace ns with their tasks' pids and states.
func (ctrLister) list(ctx context.Context, ns string) ([]ctrContainer, error) {
	tasks := map[string][2]string{} // id -> pid, status
	out, err := ctr(ctx, ns, "tasks", "ls")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] != "TASK" {
			tasks[f[0]] = [2]string{f[1], f[2]}
		}
	}
	out, err = ctr(ctx, ns, "containers", "ls", "-q")
	if err != nil {
		return nil, err
	}
	var list []ctrContainer
	for _, id := range strings.Fields(string(out)) {
		info, err := ctr(ctx, ns, "containers", "info", id)
		if err != nil {
			continue // gone meanwhile
		}
		var c struct {
			Image  string            `json:"Image"`
			Labels map[string]string `json:"Labels"`
		}
		if err := json.Unmarshal(info, &c); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		t := tasks[id]
		pid, _ := strconv.Atoi(t[0])
		status := t[1]
		if status == "" {
			status = "CREATED"
		}
		list = append(list, ctrContainer{id: id, image: c.Image, labels: c.Labels, pid: pid, status: status})
	}
	return list, nil
}

// name is the container's Kubernetes name with a short id ("pause" for a pod's sandbox),
// else its id.
func (c ctrContainer) name() string {
	if cn := c.labels["io.kubernetes.container.name"]; cn != "" {
		return cn + " (" + shortID(c.id) + ")"
	}
	if c.labels["io.cri-containerd.kind"] == "sandbox" {
		return "pause (" + shortID(c.id) + ")"
	}
	return c.id
}

// pod is NAMESPACE/POD of a Kubernetes container, else empty.
func (c ctrContainer) pod() string {
	pod := c.labels["io.kubernetes.pod.name"]
	if ns := c.labels["io.kubernetes.pod.namespace"]; ns != "" && pod != "" {
		pod = ns + "/" + pod
	}
	return pod
}

// Containers lists the Kubernetes containers or the system ones.
func (l ctrLister) Containers(ctx context.Context, kubernetes bool) ([]*machine.Container, error) {
	ns := namespaceOf(kubernetes)
	cs, err := l.list(ctx, ns)
	if err != nil {
		return nil, err
	}
	list := make([]*machine.Container, 0, len(cs))
	for _, c := range cs {
		list = append(list, &machine.Container{Namespace: ns, Id: c.name(), Image: c.image, Pid: int32(c.pid), Status: c.status, PodName: c.pod()})
	}
	return list, nil
}

// Images lists the images of the Kubernetes containers' store, and the node's built-in
// ones.
func (l ctrLister) Images(ctx context.Context) ([]*machine.Image, error) {
	out, err := ctr(ctx, "k8s.io", "images", "ls")
	if err != nil {
		return nil, err
	}
	return withBuiltin(parseImages(out), l.builtin), nil
}

// withBuiltin adds to images the built-in ones the store does not hold under their name
// (another version's node may import them), with the size of the node's program, sorted
// by name as ctr lists them.
func withBuiltin(images []*machine.Image, builtin []bundle.Builtin) []*machine.Image {
	for _, b := range builtin {
		if slices.ContainsFunc(images, func(im *machine.Image) bool { return im.Name == b.Name }) {
			continue
		}
		var size uint64
		if st, err := os.Stat(b.Program); err == nil {
			size = uint64(st.Size())
		}
		images = append(images, &machine.Image{Name: b.Name, Digest: b.Digest, SizeBytes: size, BuiltIn: true})
	}
	slices.SortStableFunc(images, func(a, b *machine.Image) int { return strings.Compare(a.Name, b.Name) })
	return images
}

// parseImages reads the table of ctr images ls (REF TYPE DIGEST SIZE UNIT PLATFORMS
// LABELS) without the CRI's reference of each image by its ID, the same image again.
func parseImages(out []byte) []*machine.Image {
	var images []*machine.Image
	for _, r := range parseRefs(out) {
		if !strings.HasPrefix(r.name, "sha256:") {
			images = append(images, &machine.Image{Name: r.name, Digest: r.digest, SizeBytes: r.size})
		}
	}
	return images
}

// parseSize reads a size as ctr prints it (go-units' binary units: "95.1 MiB"), or 0.
func parseSize(num, unit string) uint64 {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0
	}
	for i, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if unit == u {
			for range i {
				v *= 1024
			}
			return uint64(v)
		}
	}
	return 0
}

// Stats reports the memory and CPU time of the running Kubernetes (or system)
// containers, from their cgroups as containerd reads them.
func (l ctrLister) Stats(ctx context.Context, kubernetes bool) ([]*machine.ContainerStats, error) {
	ns := namespaceOf(kubernetes)
	cs, err := l.list(ctx, ns)
	if err != nil {
		return nil, err
	}
	var stats []*machine.ContainerStats
	for _, c := range cs {
		if c.status != "RUNNING" {
			continue
		}
		out, err := ctr(ctx, ns, "tasks", "metrics", "--format", "json", c.id)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			continue // stopped meanwhile
		}
		mem, cpu, err := cgroupmetrics.Parse(out)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.id, err)
		}
		stats = append(stats, &machine.ContainerStats{Namespace: ns, Id: c.name(), MemoryBytes: mem, CpuSeconds: cpu, PodName: c.pod()})
	}
	return stats, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

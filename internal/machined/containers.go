package machined

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/plinthos/plinth/pkg/api/machine"
)

// ctrLister lists containerd's containers with the node's ctr.
type ctrLister struct{}

// ctr runs ctr against the node's containerd in namespace ns.
func ctr(ctx context.Context, ns string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "/usr/bin/ctr", append([]string{"--address", containerdSocket, "--namespace", ns}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

// Containers lists the Kubernetes containers (namespace k8s.io) or the system ones
// (namespace system; machined runs its own services as processes, so usually none).
func (ctrLister) Containers(ctx context.Context, kubernetes bool) ([]*machine.Container, error) {
	ns := "system"
	if kubernetes {
		ns = "k8s.io"
	}
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
	var list []*machine.Container
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
		pod := c.Labels["io.kubernetes.pod.name"]
		if ns := c.Labels["io.kubernetes.pod.namespace"]; ns != "" && pod != "" {
			pod = ns + "/" + pod
		}
		name := id
		if cn := c.Labels["io.kubernetes.container.name"]; cn != "" {
			name = cn + " (" + shortID(id) + ")"
		}
		list = append(list, &machine.Container{Namespace: ns, Id: name, Image: c.Image, Pid: int32(pid), Status: status, PodName: pod})
	}
	return list, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

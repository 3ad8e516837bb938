package docker

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/provision"
)

func TestCreateCommand(t *testing.T) {
	c := NodeContainer{
		Cluster:    "demo",
		Node:       provision.NodeSpec{Name: "demo-controlplane-1", Role: provision.RoleControlPlane, IP: "10.5.0.2"},
		Image:      "plinth/node:dev",
		Network:    "plinth-demo",
		Volume:     "demo-controlplane-1-var",
		Config:     []byte("machine: {}\n"),
		Caps:       CapSet{Bounding: 0x1fffeffffff, LastCap: 40},
		CPUs:       1.5,
		MemoryMB:   2048,
		PublishAPI: true, PublishKube: true, APIHostPort: 41000, KubeHostPort: 41001,
	}
	cmd := CreateCommand(c)
	want := []string{
		"create",
		"--name", "demo-controlplane-1",
		"--hostname", "demo-controlplane-1",
		"--network", "plinth-demo",
		"--ip", "10.5.0.2",
		"--label", "plinth.cluster=demo",
		"--label", "plinth.role=controlplane",
		"--label", "plinth.node=demo-controlplane-1",
		"--volume", "demo-controlplane-1-var:/var",
		"--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
		"--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined",
		"--security-opt", "systempaths=unconfined",
		"--device-cgroup-rule", "a *:* rwm",
		"--init=false",
		"--restart", "on-failure",
		"--cpus", "1.5",
		"--memory", "2048m",
		"--publish", "127.0.0.1:41000:50000",
		"--publish", "127.0.0.1:41001:6443",
		"plinth/node:dev",
	}
	if !slices.Equal(cmd.Args, want) {
		t.Errorf("args\n%s\nwant\n%s", strings.Join(cmd.Args, " "), strings.Join(want, " "))
	}
	for _, a := range cmd.Args {
		if strings.Contains(a, "machine:") || strings.Contains(a, base64.StdEncoding.EncodeToString(c.Config)) || strings.HasPrefix(a, "--env") {
			t.Errorf("the configuration shows in the arguments: %q", a)
		}
		if strings.HasPrefix(a, "--tmpfs") || a == "--privileged" || a == "--rm" {
			t.Errorf("unexpected flag %s", a)
		}
	}
}

// TestNodeCommandsConfigIsAFile is the regression test of the configuration (with every
// key of the cluster) travelling in the container's environment, where `docker inspect`
// and /proc/1/environ showed it: it is copied into the created container as a root-only
// file instead, and no command carries it in an argument.
func TestNodeCommandsConfigIsAFile(t *testing.T) {
	cfg := []byte("machine:\n  ca:\n    key: c2VjcmV0\n")
	cmds, err := NodeCommands(NodeContainer{Node: provision.NodeSpec{Name: "n1"}, Image: "img", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 3 || cmds[0].Args[0] != "create" || !slices.Equal(cmds[1].Args, []string{"cp", "-", "n1:/"}) ||
		!slices.Equal(cmds[2].Args, []string{"start", "n1"}) {
		t.Fatalf("commands %v", cmds)
	}
	for _, c := range cmds {
		joined := strings.Join(c.Args, " ")
		if strings.Contains(joined, "c2VjcmV0") || strings.Contains(joined, base64.StdEncoding.EncodeToString(cfg)) || strings.Contains(joined, "--env") {
			t.Errorf("the configuration shows in %q", joined)
		}
	}
	tr := tar.NewReader(bytes.NewReader(cmds[1].Stdin))
	var found bool
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "etc/plinth/config.yaml" {
			data, _ := io.ReadAll(tr)
			if !bytes.Equal(data, cfg) || h.Mode != 0o600 || h.Uid != 0 {
				t.Errorf("config file mode %o uid %d content %q", h.Mode, h.Uid, data)
			}
			found = true
		}
	}
	if !found {
		t.Error("the archive holds no etc/plinth/config.yaml")
	}
}

func TestRunCommandDockerPorts(t *testing.T) {
	cmd := CreateCommand(NodeContainer{Node: provision.NodeSpec{Name: "n"}, PublishAPI: true, PublishKube: true})
	if !strings.Contains(strings.Join(cmd.Args, " "), "--publish 127.0.0.1::50000 --publish 127.0.0.1::6443") {
		t.Errorf("args without host ports: %v", cmd.Args)
	}
}

func TestRunCommandAPIPortOnly(t *testing.T) {
	// A control plane behind a load balancer publishes its node API only.
	cmd := CreateCommand(NodeContainer{Node: provision.NodeSpec{Name: "n"}, Image: "img", PublishAPI: true, APIHostPort: 41005})
	joined := strings.Join(cmd.Args, " ")
	if !strings.HasSuffix(joined, "--publish 127.0.0.1:41005:50000 img") || strings.Contains(joined, "6443") {
		t.Errorf("args %s", joined)
	}
}

func TestRunCommandArgs(t *testing.T) {
	cmd := CreateCommand(NodeContainer{Node: provision.NodeSpec{Name: "n"}, Image: "img", Args: []string{"--trustd-endpoint", "10.5.0.3:50001"}})
	if got := cmd.Args[len(cmd.Args)-3:]; !slices.Equal(got, []string{"img", "--trustd-endpoint", "10.5.0.3:50001"}) {
		t.Errorf("the machined flags do not follow the image: %v", cmd.Args)
	}
}

func TestLoadBalancerRunCommand(t *testing.T) {
	cmd := LoadBalancerRunCommand(LoadBalancerContainer{
		Cluster:       "demo",
		LB:            provision.NodeSpec{Name: "demo-lb", Role: provision.RoleLoadBalancer, IP: "10.5.0.2"},
		Image:         "plinth/node:dev",
		Network:       "plinth-demo",
		ControlPlanes: []string{"10.5.0.3", "10.5.0.4", "10.5.0.5"},
		KubeHostPort:  41010,
	})
	want := []string{
		"run", "--detach",
		"--name", "demo-lb",
		"--hostname", "demo-lb",
		"--network", "plinth-demo",
		"--ip", "10.5.0.2",
		"--label", "plinth.cluster=demo",
		"--label", "plinth.role=loadbalancer",
		"--label", "plinth.node=demo-lb",
		"--cap-drop=ALL",
		"--security-opt", "no-new-privileges",
		"--user", "65534:65534",
		"--read-only",
		"--tmpfs", "/var",
		"--restart", "on-failure",
		"--publish", "127.0.0.1:41010:6443",
		"--entrypoint", "/usr/bin/machined",
		"plinth/node:dev",
		"loadbalancer", "--listen", ":6443", "--health-https-path", "/readyz",
		"--upstream", "10.5.0.3:6443",
		"--upstream", "10.5.0.4:6443",
		"--upstream", "10.5.0.5:6443",
	}
	if !slices.Equal(cmd.Args, want) {
		t.Errorf("args\n%s\nwant\n%s", strings.Join(cmd.Args, " "), strings.Join(want, " "))
	}
	for _, a := range cmd.Args {
		if strings.HasPrefix(a, "--cap-add") || a == "--privileged" || strings.HasPrefix(a, "--volume") || strings.Contains(a, "unconfined") {
			t.Errorf("unexpected flag %s", a)
		}
	}
}

func TestRunCommandWorker(t *testing.T) {
	cmd := CreateCommand(NodeContainer{
		Cluster: "demo",
		Node:    provision.NodeSpec{Name: "demo-worker-1", Role: provision.RoleWorker, IP: "10.5.0.3"},
		Image:   "img", Network: "plinth-demo", Volume: "demo-worker-1-var",
		Caps: CapSet{Bounding: 0x1ffffffffff, LastCap: 40},
	})
	joined := strings.Join(cmd.Args, " ")
	for _, absent := range []string{"--publish", "--cpus", "--memory", "--cap-drop"} {
		if strings.Contains(joined, absent) {
			t.Errorf("worker args hold %s: %s", absent, joined)
		}
	}
	for _, present := range []string{"--cap-add=ALL", "plinth.role=worker", "--ip 10.5.0.3"} {
		if !strings.Contains(joined, present) {
			t.Errorf("worker args lack %s: %s", present, joined)
		}
	}
	if cmd.Args[len(cmd.Args)-1] != "img" {
		t.Errorf("the image is not the last argument: %s", joined)
	}
}

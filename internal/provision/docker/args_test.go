package docker

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/provision"
)

func TestRunCommand(t *testing.T) {
	c := NodeContainer{
		Cluster:  "demo",
		Node:     provision.NodeSpec{Name: "demo-controlplane-1", Role: provision.RoleControlPlane, IP: "10.5.0.2"},
		Image:    "plinth/node:dev",
		Network:  "plinth-demo",
		Volume:   "demo-controlplane-1-var",
		Config:   []byte("machine: {}\n"),
		Caps:     CapSet{Bounding: 0x1fffeffffff, LastCap: 40},
		CPUs:     1.5,
		MemoryMB: 2048,
		Publish:  true, APIHostPort: 41000, KubeHostPort: 41001,
	}
	cmd := RunCommand(c)
	want := []string{
		"run", "--detach",
		"--name", "demo-controlplane-1",
		"--hostname", "demo-controlplane-1",
		"--network", "plinth-demo",
		"--ip", "10.5.0.2",
		"--label", "plinth.cluster=demo",
		"--label", "plinth.role=controlplane",
		"--label", "plinth.node=demo-controlplane-1",
		"--env", "PLINTH_CONFIG",
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
	wantEnv := "PLINTH_CONFIG=" + base64.StdEncoding.EncodeToString(c.Config)
	if !slices.Equal(cmd.Env, []string{wantEnv}) {
		t.Errorf("env %v, want %v", cmd.Env, wantEnv)
	}
	for _, a := range cmd.Args {
		if strings.Contains(a, "machine:") || strings.Contains(a, base64.StdEncoding.EncodeToString(c.Config)) {
			t.Errorf("the configuration shows in the arguments: %q", a)
		}
		if strings.HasPrefix(a, "--tmpfs") || a == "--privileged" || a == "--rm" {
			t.Errorf("unexpected flag %s", a)
		}
	}
}

func TestRunCommandDockerPorts(t *testing.T) {
	cmd := RunCommand(NodeContainer{Node: provision.NodeSpec{Name: "n"}, Publish: true})
	if !strings.Contains(strings.Join(cmd.Args, " "), "--publish 127.0.0.1::50000 --publish 127.0.0.1::6443") {
		t.Errorf("args without host ports: %v", cmd.Args)
	}
}

func TestRunCommandWorker(t *testing.T) {
	cmd := RunCommand(NodeContainer{
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

//go:build integration

package docker_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/plinthos/plinth/internal/imagebuild"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/internal/provision/docker"
)

// testCIDR keeps the test's network away from a real cluster's 10.5.0.0/24.
const testCIDR = "10.250.7.0/24"

// needDocker skips the test when there is no usable Docker engine, or fails it when
// PLINTH_REQUIRE_DOCKER is set (make check sets it: CI must not skip silently).
func needDocker(t *testing.T) {
	t.Helper()
	if os.Getenv("PLINTH_REQUIRE_DOCKER") != "" {
		if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
			t.Fatalf("PLINTH_REQUIRE_DOCKER is set but the Docker engine is not usable: %v\n%s", err, out)
		}
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("the Docker engine is not reachable: %v\n%s", err, out)
	}
}

func dockerOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// buildSleeperImage builds testdata/sleeper as a static binary and loads an image holding
// only it into the engine, with nothing pulled. It returns the image's name.
func buildSleeperImage(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	root := filepath.Join(work, "root")
	for _, d := range []string{"etc", "var", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(root, "sleeper"), "./testdata/sleeper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the sleeper: %v\n%s", err, out)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	tag := "plinth-test/provision-sleeper:" + hex.EncodeToString(suffix)
	img, err := imagebuild.Image(imagebuild.ImageSpec{Rootfs: root, Tags: []string{tag}, Entrypoint: []string{"/sleeper"}, Volumes: []string{"/var"}})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(work, "image.tar")
	if _, err := imagebuild.Save(archive, map[string]v1.Image{tag: img}); err != nil {
		t.Fatal(err)
	}
	dockerOut(t, "load", "--input", archive)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "--force", tag).Run() })
	return tag
}

type inspected struct {
	RestartCount int
	State        struct {
		Status   string
		ExitCode int
	}
	Config struct {
		Labels   map[string]string
		Hostname string
		Env      []string
	}
	HostConfig struct {
		CapAdd, CapDrop []string
		SecurityOpt     []string
		RestartPolicy   struct{ Name string }
		Binds           []string
		Init            *bool
	}
	NetworkSettings struct {
		Ports map[string][]struct{ HostIp, HostPort string }
	}
}

func inspect(t *testing.T, container string) inspected {
	t.Helper()
	var c inspected
	if err := json.Unmarshal([]byte(dockerOut(t, "container", "inspect", "--format", "{{json .}}", container)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or a minute has passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leftovers lists what the engine still holds of a cluster, by label and by name.
func leftovers(t *testing.T, name string) []string {
	t.Helper()
	var left []string
	for _, args := range [][]string{
		{"ps", "--all", "--filter", "label=plinth.cluster=" + name, "--format", "container {{.Names}}"},
		{"ps", "--all", "--filter", "name=^" + name + "-", "--format", "container {{.Names}}"},
		{"volume", "ls", "--filter", "label=plinth.cluster=" + name, "--format", "volume {{.Name}}"},
		{"volume", "ls", "--filter", "name=^" + name + "-", "--format", "volume {{.Name}}"},
		{"network", "ls", "--filter", "label=plinth.cluster=" + name, "--format", "network {{.Name}}"},
		{"network", "ls", "--filter", "name=^plinth-" + name + "$", "--format", "network {{.Name}}"},
	} {
		if out := dockerOut(t, args...); out != "" {
			left = append(left, strings.Split(out, "\n")...)
		}
	}
	return left
}

func TestDockerProvisioner(t *testing.T) {
	needDocker(t)
	image := buildSleeperImage(t)
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "ptest-" + hex.EncodeToString(suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := docker.New()
	t.Cleanup(func() { _ = p.Destroy(context.Background(), name, nil) })

	var progress bytes.Buffer
	req := docker.Request{
		Name: name, Image: image, ControlPlanes: 1, Workers: 1, CIDR: testCIDR, MemoryMB: 256,
		Configs: func(n docker.NodeSpec) ([]byte, error) {
			return []byte("dummy config of " + n.Name + " " + n.Role + " " + n.IP), nil
		},
		Progress: &progress,
	}
	created, err := p.Create(ctx, req)
	if err != nil {
		t.Fatalf("Create: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	cp, worker := name+"-controlplane-1", name+"-worker-1"

	shown, err := p.Show(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if shown.CIDR != testCIDR || shown.Network != "plinth-"+name || len(shown.Nodes) != 2 {
		t.Fatalf("Show: %+v", shown)
	}
	n0, n1 := shown.Nodes[0], shown.Nodes[1]
	if n0.Name != cp || n0.Role != provision.RoleControlPlane || n0.IP != "10.250.7.2" || n0.State != "running" || n0.APIPort == 0 || n0.KubePort == 0 {
		t.Errorf("control plane %+v", n0)
	}
	if n1.Name != worker || n1.Role != provision.RoleWorker || n1.IP != "10.250.7.3" || n1.State != "running" || n1.APIPort != 0 || n1.KubePort != 0 {
		t.Errorf("worker %+v", n1)
	}
	if created.Nodes[0].APIPort != n0.APIPort {
		t.Errorf("Create and Show disagree: %+v vs %+v", created.Nodes[0], n0)
	}
	names, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(names, name) {
		t.Errorf("List = %v, lacks %s", names, name)
	}

	// What the containers got.
	for _, n := range shown.Nodes {
		c := inspect(t, n.Name)
		if c.Config.Labels["plinth.cluster"] != name || c.Config.Labels["plinth.role"] != n.Role || c.Config.Labels["plinth.node"] != n.Name {
			t.Errorf("%s labels %v", n.Name, c.Config.Labels)
		}
		if c.Config.Hostname != n.Name || c.HostConfig.RestartPolicy.Name != "on-failure" || c.HostConfig.Init == nil || *c.HostConfig.Init {
			t.Errorf("%s hostname %q restart %q init %v", n.Name, c.Config.Hostname, c.HostConfig.RestartPolicy.Name, c.HostConfig.Init)
		}
		if !contains(c.HostConfig.CapAdd, "ALL") || !contains(c.HostConfig.SecurityOpt, "seccomp=unconfined") ||
			!contains(c.HostConfig.Binds, "/sys/fs/cgroup:/sys/fs/cgroup:rw") || !contains(c.HostConfig.Binds, n.Name+"-var:/var") {
			t.Errorf("%s host config %+v", n.Name, c.HostConfig)
		}
		// The configuration holds the cluster's keys: it is a file in the container, never
		// in what `docker inspect` shows.
		raw := dockerOut(t, "container", "inspect", n.Name)
		if strings.Contains(raw, "dummy config") || strings.Contains(raw, "PLINTH_CONFIG") {
			t.Errorf("%s: docker inspect shows the configuration", n.Name)
		}
		t.Logf("%s: cap-drop %v", n.Name, c.HostConfig.CapDrop)
	}
	c := inspect(t, cp)
	for _, port := range []string{"50000/tcp", "6443/tcp"} {
		b := c.NetworkSettings.Ports[port]
		if len(b) != 1 || b[0].HostIp != "127.0.0.1" {
			t.Errorf("port %s published as %+v, want 127.0.0.1 only", port, b)
		}
	}
	if got := inspect(t, worker).NetworkSettings.Ports; len(got) != 0 {
		t.Errorf("the worker publishes %v", got)
	}

	// The node API port reaches the control plane, which got its host name and config.
	answer := func() []string {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(n0.APIPort), 2*time.Second)
		if err != nil {
			return nil
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		var l []string
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			l = append(l, sc.Text())
		}
		return l
	}
	var got []string
	waitFor(t, "the control plane to answer on 127.0.0.1", func() bool { got = answer(); return len(got) == 2 })
	if got[0] != cp || got[1] != "dummy config of "+cp+" controlplane 10.250.7.2" {
		t.Errorf("the control plane answered %q", got)
	}

	// A second cluster with the same name is refused before anything changes.
	if _, err := p.Create(ctx, req); err == nil || !strings.Contains(err.Error(), "destroy it") {
		t.Errorf("second Create: %v", err)
	}

	// Reboot: exit 81 and the restart policy starts the node again.
	nodeExec(cp, "reboot")
	waitFor(t, "the control plane to restart", func() bool {
		c := inspect(t, cp)
		return c.RestartCount >= 1 && c.State.Status == "running"
	})
	// The published ports survive the restart (the client config's endpoint stays right).
	again, err := p.Show(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if again.Nodes[0].APIPort != n0.APIPort || again.Nodes[0].KubePort != n0.KubePort {
		t.Errorf("ports after a reboot %d/%d, before %d/%d", again.Nodes[0].APIPort, again.Nodes[0].KubePort, n0.APIPort, n0.KubePort)
	}
	waitFor(t, "the control plane to answer again", func() bool { return len(answer()) == 2 })

	// Shutdown: exit 0 and the node stays down; Show still knows its address.
	// The engine decides on a restart when the container exits, under the container's
	// lock: one it restarts goes to "restarting" (its RestartCount counted), never to
	// "exited". So the first state after "running" says whether the policy restarts it.
	nodeExec(worker, "shutdown")
	var stopped inspected
	waitFor(t, "the worker to stop", func() bool {
		stopped = inspect(t, worker)
		return stopped.State.Status != "running" || stopped.RestartCount != 0
	})
	if c := stopped; c.State.Status != "exited" || c.State.ExitCode != 0 || c.RestartCount != 0 {
		t.Errorf("after shutdown the worker is %s (exit %d, %d restarts)", c.State.Status, c.State.ExitCode, c.RestartCount)
	}
	shown, err = p.Show(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if w := shown.Nodes[1]; w.State != "exited" || w.IP != "10.250.7.3" {
		t.Errorf("stopped worker shown as %+v", w)
	}
	if logs, err := p.Logs(ctx, worker, 10); err != nil || !strings.Contains(logs, "shutting down") {
		t.Errorf("worker logs %q, %v", logs, err)
	}

	// Destroy twice: the second finds nothing and succeeds.
	var out bytes.Buffer
	if err := p.Destroy(ctx, name, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("destroy:\n%s", out.String())
	out.Reset()
	if err := p.Destroy(ctx, name, &out); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if !strings.Contains(out.String(), "nothing") {
		t.Errorf("second destroy said %q", out.String())
	}
	if left := leftovers(t, name); len(left) != 0 {
		t.Errorf("left after destroy: %v", left)
	}
	if _, err := p.Show(ctx, name); !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("Show after destroy: %v", err)
	}
}

// TestDockerCreateCleansUp makes the engine refuse the second node and checks that the
// first node, the volumes and the network are gone afterwards.
func TestDockerCreateCleansUp(t *testing.T) {
	needDocker(t)
	image := buildSleeperImage(t)
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "ptest-" + hex.EncodeToString(suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := docker.New()
	t.Cleanup(func() { _ = p.Destroy(context.Background(), name, nil) })

	// More CPUs than the host has: docker run refuses the container.
	req := docker.Request{
		Name: name, Image: image, ControlPlanes: 1, Workers: 1, CIDR: "10.250.8.0/24", CPUs: 4096,
		Configs: func(docker.NodeSpec) ([]byte, error) { return []byte("dummy"), nil },
	}
	var progress bytes.Buffer
	req.Progress = &progress
	_, err := p.Create(ctx, req)
	if err == nil {
		t.Fatal("Create with 4096 CPUs succeeded")
	}
	t.Logf("error: %v\nprogress:\n%s", err, progress.String())
	if !strings.Contains(err.Error(), "start node "+name+"-controlplane-1") {
		t.Errorf("error does not name the node: %v", err)
	}
	if left := leftovers(t, name); len(left) != 0 {
		t.Errorf("left after a failed create: %v", left)
	}

	req.CPUs = 0
	req.Image = "plinth-test/not-there:none"
	if _, err := p.Create(ctx, req); err == nil || !strings.Contains(err.Error(), "make image-docker") {
		t.Errorf("Create with a missing image: %v", err)
	}
	if left := leftovers(t, name); len(left) != 0 {
		t.Errorf("left after a missing image: %v", left)
	}
}

// nodeExec asks a node to reboot or shut down from inside. Its exit status is ignored: the
// exec is killed when PID 1 ends first.
func nodeExec(container, action string) {
	_ = exec.Command("docker", "exec", container, "/sleeper", action).Run()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

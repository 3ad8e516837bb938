package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/plinthos/plinth/internal/provision"
)

// fakeRunner answers docker commands from rules (the last added whose prefix matches the
// arguments) and records every command. Unmatched commands succeed with no output.
type fakeRunner struct {
	mu    sync.Mutex
	calls []Command
	rules []rule
}

type rule struct {
	prefix string
	out    string
	stderr string // non-empty: the command fails with this on stderr
	times  int    // how often the rule applies; 0: always
	used   int
}

func (f *fakeRunner) on(prefix, out string) *fakeRunner {
	f.rules = append(f.rules, rule{prefix: prefix, out: out})
	return f
}

func (f *fakeRunner) fail(prefix, stderr string) *fakeRunner {
	f.rules = append(f.rules, rule{prefix: prefix, stderr: stderr})
	return f
}

// failOnce adds a rule that fails the first matching command only.
func (f *fakeRunner) failOnce(prefix, stderr string) *fakeRunner {
	f.rules = append(f.rules, rule{prefix: prefix, stderr: stderr, times: 1})
	return f
}

func (f *fakeRunner) Run(_ context.Context, c Command) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	joined := strings.Join(c.Args, " ")
	for i := len(f.rules) - 1; i >= 0; i-- {
		r := &f.rules[i]
		if r.times > 0 && r.used >= r.times {
			continue
		}
		if strings.HasPrefix(joined, r.prefix) {
			r.used++
			if r.stderr != "" {
				return nil, &CommandError{Op: opName(c.Args), Stderr: r.stderr, Err: errors.New("exit status 1")}
			}
			return []byte(r.out), nil
		}
	}
	return nil, nil
}

// commands returns the recorded commands, joined, that start with one of prefixes.
func (f *fakeRunner) commands(prefixes ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		joined := strings.Join(c.Args, " ")
		for _, p := range prefixes {
			if strings.HasPrefix(joined, p) {
				out = append(out, joined)
				break
			}
		}
	}
	return out
}

func newFake() *fakeRunner {
	return (&fakeRunner{}).
		on("version", `"20.10.24"`).
		on("image inspect", `"sha256:abc"`).
		fail("network inspect", "Error: No such network: plinth-demo")
}

func testProvisioner(r Runner) *Provisioner {
	next := 41000
	return &Provisioner{
		Runner:   r,
		Caps:     func() (CapSet, error) { return CapSet{Bounding: 0x1fffeffffff, LastCap: 40}, nil },
		FreePort: func() (int, error) { next++; return next, nil },
	}
}

func demoRequest(progress *bytes.Buffer) Request {
	return Request{
		Name: "demo", Image: "plinth/node:dev", ControlPlanes: 1, Workers: 1,
		Configs:  func(n NodeSpec) ([]byte, error) { return []byte("config of " + n.Name), nil },
		Progress: progress,
	}
}

// inspectJSON renders what `docker container inspect --format '{{json .}}'` prints for a node.
func inspectJSON(t *testing.T, name, role, ip, state string, apiPort, kubePort int) string {
	t.Helper()
	var c containerJSON
	c.ID = fmt.Sprintf("%012x", len(name)) + strings.Repeat("f", 52)
	c.Name = "/" + name
	c.State.Status = state
	c.Config.Labels = map[string]string{LabelCluster: "demo", LabelRole: role, LabelNode: name}
	c.NetworkSettings.Networks = map[string]struct {
		IPAddress  string `json:"IPAddress"`
		IPAMConfig *struct {
			IPv4Address string `json:"IPv4Address"`
		} `json:"IPAMConfig"`
	}{}
	ep := c.NetworkSettings.Networks["plinth-demo"]
	ep.IPAMConfig = &struct {
		IPv4Address string `json:"IPv4Address"`
	}{ip}
	if state == "running" {
		ep.IPAddress = ip
	}
	c.NetworkSettings.Networks["plinth-demo"] = ep
	c.NetworkSettings.Ports = map[string][]portBinding{}
	if apiPort != 0 {
		c.NetworkSettings.Ports["50000/tcp"] = []portBinding{{HostIP: "127.0.0.1", HostPort: fmt.Sprint(apiPort)}}
	}
	if kubePort != 0 {
		c.NetworkSettings.Ports["6443/tcp"] = []portBinding{{HostIP: "127.0.0.1", HostPort: fmt.Sprint(kubePort)}}
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestCreateRemovesEverythingWhenANodeFails(t *testing.T) {
	f := newFake().
		fail("start demo-worker-1", "Error response from daemon: OCI runtime create failed: unable to apply caps: operation not permitted").
		on("logs --tail 50 demo-worker-1", "machined: the last words\n")
	var progress bytes.Buffer
	_, err := testProvisioner(f).Create(context.Background(), demoRequest(&progress))
	if err == nil {
		t.Fatal("Create succeeded")
	}
	for _, want := range []string{"start node demo-worker-1", "unable to apply caps", "last 50 log lines of demo-worker-1", "machined: the last words"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	got := f.commands("rm", "volume rm", "network rm")
	want := []string{
		"rm --force --volumes demo-controlplane-1 demo-worker-1",
		"volume rm --force demo-controlplane-1-var demo-worker-1-var",
		"network rm plinth-demo",
	}
	if !slices.Equal(got, want) {
		t.Errorf("cleanup\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, want := range []string{"creating network plinth-demo (10.5.0.0/24)", "starting demo-controlplane-1 (controlplane, 10.5.0.2)",
		"starting demo-worker-1 (worker, 10.5.0.3)", "the host lacks SYS_RESOURCE", "removing what was created", "removed"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

func TestCreateRemovesOnlyWhatItMade(t *testing.T) {
	// The second volume fails: its container was never run, the first node's was.
	f := newFake().fail("volume create --label plinth.cluster=demo --label plinth.node=demo-worker-1", "Error: disk full")
	_, err := testProvisioner(f).Create(context.Background(), demoRequest(&bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Create: %v", err)
	}
	got := f.commands("rm", "volume rm", "network rm", "logs")
	want := []string{"rm --force --volumes demo-controlplane-1", "volume rm --force demo-controlplane-1-var", "network rm plinth-demo"}
	if !slices.Equal(got, want) {
		t.Errorf("cleanup\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCreateReportsIncompleteCleanup(t *testing.T) {
	f := newFake().fail("run --detach --name demo-controlplane-1", "boom").fail("network rm", "Error: network has active endpoints")
	_, err := testProvisioner(f).Create(context.Background(), demoRequest(&bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "cleanup incomplete") || !strings.Contains(err.Error(), "plinthctl cluster destroy --name demo") {
		t.Fatalf("Create: %v", err)
	}
}

func TestCreateNetworkOverlap(t *testing.T) {
	f := newFake().fail("network create", "Error response from daemon: Pool overlaps with other one on this address space")
	_, err := testProvisioner(f).Create(context.Background(), demoRequest(&bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "pick another --cidr") {
		t.Fatalf("Create: %v", err)
	}
	if got := f.commands("rm", "volume create", "volume rm", "run"); len(got) != 0 {
		t.Errorf("commands after a failed network: %v", got)
	}
}

func TestCreateFailsOnANodeThatStopped(t *testing.T) {
	f := newFake().
		on("network ls --filter label=plinth.cluster=demo", "plinth-demo\n").
		on("network inspect --format {{json .}} plinth-demo", `{"Name":"plinth-demo","IPAM":{"Config":[{"Subnet":"10.5.0.0/24"}]}}`+"\n").
		on("ps --all --quiet --no-trunc", "a\nb\n").
		on("container inspect", inspectJSON(t, "demo-controlplane-1", "controlplane", "10.5.0.2", "running", 49001, 49002)+"\n"+
			inspectJSON(t, "demo-worker-1", "worker", "10.5.0.3", "exited", 0, 0)+"\n").
		on("logs --tail 50 demo-worker-1", "machined: no such file\n")
	_, err := testProvisioner(f).Create(context.Background(), demoRequest(&bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "demo-worker-1 is exited") || !strings.Contains(err.Error(), "machined: no such file") {
		t.Fatalf("Create: %v", err)
	}
	if got := f.commands("network rm"); len(got) != 1 {
		t.Errorf("network removals %v", got)
	}
}

func TestCreateSucceeds(t *testing.T) {
	f := newFake().
		on("network ls --filter label=plinth.cluster=demo", "plinth-demo\n").
		on("network inspect --format {{json .}} plinth-demo", `{"Name":"plinth-demo","IPAM":{"Config":[{"Subnet":"10.5.0.0/24","Gateway":"10.5.0.1"}]}}`+"\n").
		on("ps --all --quiet --no-trunc", "a\nb\n").
		on("container inspect", inspectJSON(t, "demo-worker-1", "worker", "10.5.0.3", "running", 0, 0)+"\n"+
			inspectJSON(t, "demo-controlplane-1", "controlplane", "10.5.0.2", "running", 49001, 49002)+"\n")
	var seen []NodeSpec
	req := demoRequest(&bytes.Buffer{})
	req.Configs = func(n NodeSpec) ([]byte, error) { seen = append(seen, n); return []byte("cfg " + n.Role), nil }
	c, err := testProvisioner(f).Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != (NodeSpec{Name: "demo-controlplane-1", Role: "controlplane", IP: "10.5.0.2"}) || seen[1].IP != "10.5.0.3" {
		t.Errorf("Configs saw %v", seen)
	}
	if c.CIDR != "10.5.0.0/24" || len(c.Nodes) != 2 || c.Nodes[0].Name != "demo-controlplane-1" || c.Nodes[0].APIPort != 49001 ||
		c.Nodes[0].KubePort != 49002 || c.Nodes[1].APIPort != 0 || c.Nodes[0].Container != "000000000013" {
		t.Errorf("cluster %+v", c)
	}
	if got := f.commands("rm", "volume rm", "network rm"); len(got) != 0 {
		t.Errorf("a successful Create removed %v", got)
	}
	creates, copies := 0, 0
	for _, call := range f.calls {
		if len(call.Args) > 0 && call.Args[0] == "create" {
			creates++
		}
		if len(call.Args) > 0 && call.Args[0] == "cp" {
			copies++
			if !bytes.Contains(call.Stdin, []byte("cfg ")) {
				t.Errorf("docker cp without the configuration: %v", call.Args)
			}
		}
	}
	if creates != 2 || copies != 2 {
		t.Errorf("%d docker creates, %d copies", creates, copies)
	}
	if got := f.commands("create --name demo-controlplane-1"); len(got) != 1 || !strings.Contains(got[0], "--publish 127.0.0.1:41001:50000 --publish 127.0.0.1:41002:6443") {
		t.Errorf("control plane run %v", got)
	}
}

// haCluster answers Show for a cluster of two control planes, a worker and the load
// balancer, with the given state of the load balancer.
func haCluster(t *testing.T, f *fakeRunner, lbState string) *fakeRunner {
	return f.
		on("network ls --filter label=plinth.cluster=demo", "plinth-demo\n").
		on("network inspect --format {{json .}} plinth-demo", `{"Name":"plinth-demo","IPAM":{"Config":[{"Subnet":"10.5.0.0/24"}]}}`+"\n").
		on("ps --all --quiet --no-trunc", "a\nb\nc\nd\n").
		on("container inspect", inspectJSON(t, "demo-worker-1", "worker", "10.5.0.5", "running", 0, 0)+"\n"+
			inspectJSON(t, "demo-controlplane-2", "controlplane", "10.5.0.4", "running", 41004, 0)+"\n"+
			inspectJSON(t, "demo-lb", "loadbalancer", "10.5.0.2", lbState, 0, 41001)+"\n"+
			inspectJSON(t, "demo-controlplane-1", "controlplane", "10.5.0.3", "running", 41002, 0)+"\n")
}

func TestCreateWithLoadBalancer(t *testing.T) {
	f := haCluster(t, newFake(), "running")
	var progress bytes.Buffer
	req := demoRequest(&progress)
	req.ControlPlanes = 2
	var seen []string
	req.Configs = func(n NodeSpec) ([]byte, error) { seen = append(seen, n.Name+"@"+n.IP); return []byte("cfg"), nil }
	c, err := testProvisioner(f).Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"demo-controlplane-1@10.5.0.3", "demo-controlplane-2@10.5.0.4", "demo-worker-1@10.5.0.5"}; !slices.Equal(seen, want) {
		t.Errorf("Configs saw %v, want %v", seen, want)
	}
	runs := f.commands("run", "create")
	if len(runs) != 4 {
		t.Fatalf("docker runs and creates:\n%s", strings.Join(runs, "\n"))
	}
	// The load balancer starts first, from the node image, before any node.
	wantLB := "run --detach --name demo-lb --hostname demo-lb --network plinth-demo --ip 10.5.0.2 " +
		"--label plinth.cluster=demo --label plinth.role=loadbalancer --label plinth.node=demo-lb " +
		"--cap-drop=ALL --security-opt no-new-privileges --user 65534:65534 --read-only --tmpfs /var --restart on-failure " +
		"--publish 127.0.0.1:41001:6443 --entrypoint /usr/bin/machined plinth/node:dev " +
		"loadbalancer --listen :6443 --health-https-path /readyz --upstream 10.5.0.3:6443 --upstream 10.5.0.4:6443"
	if runs[0] != wantLB {
		t.Errorf("load balancer run\n%s\nwant\n%s", runs[0], wantLB)
	}
	// Every control plane publishes its node API and not the Kubernetes API; the worker
	// publishes nothing and asks the control planes' trustd, in turn.
	for i, want := range []struct{ prefix, suffix string }{
		{"create --name demo-controlplane-1 ", "--publish 127.0.0.1:41002:50000 plinth/node:dev"},
		{"create --name demo-controlplane-2 ", "--publish 127.0.0.1:41003:50000 plinth/node:dev"},
		{"create --name demo-worker-1 ", "--restart on-failure plinth/node:dev --trustd-endpoint 10.5.0.3:50001,10.5.0.4:50001"},
	} {
		if got := runs[i+1]; !strings.HasPrefix(got, want.prefix) || !strings.HasSuffix(got, want.suffix) || strings.Contains(got, ":6443") {
			t.Errorf("run %d\n%s\nwant %s...%s", i+1, got, want.prefix, want.suffix)
		}
	}
	if c.LoadBalancer == nil || c.LoadBalancer.Name != "demo-lb" || c.LoadBalancer.IP != "10.5.0.2" || c.LoadBalancer.KubePort != 41001 {
		t.Errorf("load balancer %+v", c.LoadBalancer)
	}
	if len(c.Nodes) != 3 || c.KubeHostPort() != 41001 {
		t.Errorf("nodes %+v, kube port %d", c.Nodes, c.KubeHostPort())
	}
	if !strings.Contains(progress.String(), "starting demo-lb (loadbalancer, 10.5.0.2)") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestCreateIsolated(t *testing.T) {
	// What Docker shows of an internal network: no port is published.
	f := newFake().
		on("network ls --filter label=plinth.cluster=demo", "plinth-demo\n").
		on("network inspect --format {{json .}} plinth-demo", `{"Name":"plinth-demo","Internal":true,"IPAM":{"Config":[{"Subnet":"10.5.0.0/24"}]}}`+"\n").
		on("ps --all --quiet --no-trunc", "a\nb\nc\nd\n").
		on("container inspect", inspectJSON(t, "demo-worker-1", "worker", "10.5.0.5", "running", 0, 0)+"\n"+
			inspectJSON(t, "demo-controlplane-2", "controlplane", "10.5.0.4", "running", 0, 0)+"\n"+
			inspectJSON(t, "demo-lb", "loadbalancer", "10.5.0.2", "running", 0, 0)+"\n"+
			inspectJSON(t, "demo-controlplane-1", "controlplane", "10.5.0.3", "running", 0, 0)+"\n")
	var progress bytes.Buffer
	req := demoRequest(&progress)
	req.ControlPlanes, req.Isolated = 2, true
	c, err := testProvisioner(f).Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if nets := f.commands("network create"); len(nets) != 1 || !strings.Contains(nets[0], " --internal plinth-demo") {
		t.Errorf("network create: %v", nets)
	}
	for _, run := range f.commands("run", "create") {
		if strings.Contains(run, "--publish") {
			t.Errorf("an isolated cluster publishes a port: %s", run)
		}
	}
	// The host reaches the nodes at their addresses, on the nodes' own ports.
	if !c.Isolated || c.LoadBalancer == nil || c.LoadBalancer.KubeEndpoint() != "10.5.0.2:6443" || c.KubeEndpoint() != "10.5.0.2:6443" {
		t.Errorf("cluster %+v, load balancer %+v", c, c.LoadBalancer)
	}
	var eps []string
	for _, n := range c.Nodes {
		eps = append(eps, n.Name+"="+n.APIEndpoint()+","+n.KubeEndpoint())
	}
	if want := []string{"demo-controlplane-1=10.5.0.3:50000,", "demo-controlplane-2=10.5.0.4:50000,", "demo-worker-1=,"}; !slices.Equal(eps, want) {
		t.Errorf("endpoints %v, want %v", eps, want)
	}
	if !strings.Contains(progress.String(), "isolated: no route off this machine") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestCreateRemovesTheLoadBalancer(t *testing.T) {
	f := newFake().fail("start demo-controlplane-2", "boom")
	req := demoRequest(&bytes.Buffer{})
	req.ControlPlanes, req.Workers = 2, 0
	if _, err := testProvisioner(f).Create(context.Background(), req); err == nil || !strings.Contains(err.Error(), "start node demo-controlplane-2") {
		t.Fatalf("Create: %v", err)
	}
	want := []string{
		"rm --force --volumes demo-lb demo-controlplane-1 demo-controlplane-2",
		"volume rm --force demo-controlplane-1-var demo-controlplane-2-var",
		"network rm plinth-demo",
	}
	if got := f.commands("rm", "volume rm", "network rm"); !slices.Equal(got, want) {
		t.Errorf("cleanup\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A load balancer that stopped right after its start fails Create too.
	f = haCluster(t, newFake(), "exited").on("logs --tail 50 demo-lb", "loadbalancer: listen on :6443: denied\n")
	req.Workers = 1
	_, err := testProvisioner(f).Create(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "demo-lb is exited") || !strings.Contains(err.Error(), "listen on :6443: denied") {
		t.Fatalf("Create: %v", err)
	}
	if got := f.commands("rm --force"); len(got) != 1 || !strings.HasPrefix(got[0], "rm --force --volumes demo-lb ") {
		t.Errorf("cleanup %v", got)
	}
}

func TestPreflightLoadBalancerName(t *testing.T) {
	f := newFake().on("ps --all --format {{.Names}}", "demo-lb\n")
	req := demoRequest(&bytes.Buffer{})
	req.ControlPlanes = 3
	if err := testProvisioner(f).Preflight(context.Background(), req); err == nil || !strings.Contains(err.Error(), "container demo-lb") {
		t.Errorf("Preflight: %v", err)
	}
	// One control plane: no load balancer, so the name does not matter.
	if err := testProvisioner(f).Preflight(context.Background(), demoRequest(&bytes.Buffer{})); err != nil {
		t.Errorf("Preflight of one control plane: %v", err)
	}
}

func TestCreatePicksOtherPortsWhenOneIsTaken(t *testing.T) {
	f := newFake().
		failOnce("start demo-controlplane-1", "Error response from daemon: driver failed programming external connectivity: Bind for 127.0.0.1:41001 failed: port is already allocated.").
		on("network ls --filter label=plinth.cluster=demo", "plinth-demo\n").
		on("network inspect --format {{json .}} plinth-demo", `{"Name":"plinth-demo","IPAM":{"Config":[{"Subnet":"10.5.0.0/24"}]}}`+"\n").
		on("ps --all --quiet --no-trunc", "a\n").
		on("container inspect", inspectJSON(t, "demo-controlplane-1", "controlplane", "10.5.0.2", "running", 41003, 41004)+"\n")
	var progress bytes.Buffer
	req := demoRequest(&progress)
	req.Workers = 0
	c, err := testProvisioner(f).Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if c.Nodes[0].APIPort != 41003 {
		t.Errorf("cluster %+v", c)
	}
	want := []string{
		"create --name demo-controlplane-1",
		"start demo-controlplane-1",
		"rm --force --volumes demo-controlplane-1",
		"create --name demo-controlplane-1",
		"start demo-controlplane-1",
	}
	got := f.commands("create", "start", "rm")
	if len(got) != len(want) {
		t.Fatalf("commands %v", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("command %d: %s, want %s...", i, got[i], want[i])
		}
	}
	if !strings.Contains(got[3], "127.0.0.1:41003:50000") || !strings.Contains(progress.String(), "trying others") {
		t.Errorf("retry %s\n%s", got[3], progress.String())
	}
}

func TestPreflightErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *fakeRunner
		want string
	}{
		{"daemon down", (&fakeRunner{}).fail("version", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"),
			"the Docker engine is not reachable: start it (dockerd) or install docker.io"},
		{"no image", (&fakeRunner{}).on("version", "x").fail("image inspect", "Error: No such image: plinth/node:dev"), "make image-docker"},
		{"labelled leftovers", newFake().on("volume ls --filter label=plinth.cluster", "demo\n"), "destroy it with `plinthctl cluster destroy --name demo`, or pick another --name"},
		{"network", newFake().on("network inspect", `"plinth-demo"`), "network plinth-demo"},
		{"container", newFake().on("ps --all --format {{.Names}}", "other\ndemo-worker-1\n"), "container demo-worker-1"},
		{"volume", newFake().on("volume ls --format {{.Name}}", "demo-controlplane-1-var\n"), "volume demo-controlplane-1-var"},
		{"subnet", newFake().on("network ls --quiet", "n1\nn2\n").on("network inspect --format {{json .}} n1 n2",
			`{"Name":"bridge","IPAM":{"Config":[{"Subnet":"172.17.0.0/16"}]}}`+"\n"+`{"Name":"lab","IPAM":{"Config":[{"Subnet":"10.5.0.0/16"}]}}`+"\n"),
			"the network 10.5.0.0/24 overlaps the Docker network lab (10.5.0.0/16): pick another --cidr"},
	} {
		err := testProvisioner(tc.f).Preflight(context.Background(), demoRequest(&bytes.Buffer{}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if got := tc.f.commands("run", "network create", "volume create"); len(got) != 0 {
			t.Errorf("%s: preflight changed things: %v", tc.name, got)
		}
	}
	p := &Provisioner{lookPath: func(string) (string, error) { return "", errors.New("not found") }}
	if err := p.Preflight(context.Background(), demoRequest(&bytes.Buffer{})); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("without docker: %v", err)
	}
}

func TestDestroy(t *testing.T) {
	f := newFake()
	var out bytes.Buffer
	if err := testProvisioner(f).Destroy(context.Background(), "demo", &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nothing of cluster \"demo\" is left") {
		t.Errorf("progress %q", out.String())
	}
	if got := f.commands("rm", "volume rm", "network rm"); len(got) != 0 {
		t.Errorf("removed %v from an empty engine", got)
	}

	f = newFake().
		on("ps --all --filter label=plinth.cluster=demo", "demo-controlplane-1\ndemo-worker-1\n").
		on("volume ls --filter label=plinth.cluster=demo", "demo-controlplane-1-var\n").
		on("network ls --filter label=plinth.cluster=demo", "plinth-demo\n").
		fail("volume rm", "Error: No such volume: demo-controlplane-1-var")
	out.Reset()
	if err := testProvisioner(f).Destroy(context.Background(), "demo", &out); err != nil {
		t.Fatal(err)
	}
	want := []string{"rm --force --volumes demo-controlplane-1 demo-worker-1", "volume rm --force demo-controlplane-1-var", "network rm plinth-demo"}
	if got := f.commands("rm", "volume rm", "network rm"); !slices.Equal(got, want) {
		t.Errorf("removed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := testProvisioner(newFake()).Destroy(context.Background(), "Bad Name", nil); err == nil {
		t.Error("Destroy accepted a bad name")
	}
}

func TestShowAndList(t *testing.T) {
	f := newFake()
	if _, err := testProvisioner(f).Show(context.Background(), "demo"); !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("Show of nothing: %v", err)
	}
	f = newFake().
		on("network ls --filter label=plinth.cluster=demo", "plinth-demo\n").
		on("network inspect --format {{json .}} plinth-demo", `{"Name":"plinth-demo","IPAM":{"Config":[{"Subnet":"10.5.0.0/24"}]}}`+"\n").
		on("ps --all --quiet --no-trunc --filter label=plinth.cluster=demo", "a\nb\n").
		on("container inspect", inspectJSON(t, "demo-worker-1", "worker", "10.5.0.3", "exited", 0, 0)+"\n"+
			inspectJSON(t, "demo-controlplane-1", "controlplane", "10.5.0.2", "running", 49001, 49002)+"\n").
		on("ps --all --filter label=plinth.cluster --format", "demo\ndemo\n").
		on("network ls --filter label=plinth.cluster --format", "demo\nother\n")
	c, err := testProvisioner(f).Show(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{
		{Name: "demo-controlplane-1", Role: "controlplane", IP: "10.5.0.2", State: "running", Container: "000000000013", APIPort: 49001, KubePort: 49002},
		{Name: "demo-worker-1", Role: "worker", IP: "10.5.0.3", State: "exited", Container: "00000000000d"},
	}
	if c.Name != "demo" || c.Network != "plinth-demo" || c.CIDR != "10.5.0.0/24" || !slices.Equal(c.Nodes, want) {
		t.Errorf("cluster %+v\nwant nodes %+v", c, want)
	}
	names, err := testProvisioner(f).List(context.Background())
	if err != nil || !slices.Equal(names, []string{"demo", "other"}) {
		t.Errorf("List = %v, %v", names, err)
	}
}

func TestHostPortIgnoresOtherAddresses(t *testing.T) {
	ports := map[string][]portBinding{"50000/tcp": {{HostIP: "0.0.0.0", HostPort: "1"}, {HostIP: "127.0.0.1", HostPort: "2"}}}
	if p := hostPort(ports, APIPort); p != 2 {
		t.Errorf("port %d", p)
	}
	if p := hostPort(ports, KubePort); p != 0 {
		t.Errorf("kube port %d", p)
	}
}

func TestHostPortsDistinct(t *testing.T) {
	ports := []int{41000, 41000, 41001, 41000, 41002}
	p := &Provisioner{FreePort: func() (int, error) { v := ports[0]; ports = ports[1:]; return v, nil }}
	got, err := p.hostPorts(3)
	if err != nil || !slices.Equal(got, []int{41000, 41001, 41002}) {
		t.Errorf("hostPorts(3) = %v, %v", got, err)
	}
	p = &Provisioner{FreePort: func() (int, error) { return 41000, nil }}
	if got, err := p.hostPorts(2); err == nil {
		t.Errorf("hostPorts(2) of one port = %v", got)
	}
	if got, err := p.hostPorts(0); err != nil || len(got) != 0 {
		t.Errorf("hostPorts(0) = %v, %v", got, err)
	}
}

package vmnet

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeRunner records ip commands and fails the one that starts with failOn.
type fakeRunner struct {
	cmds   []string
	failOn string
	out    map[string]string
}

func (f *fakeRunner) Run(_ context.Context, args ...string) ([]byte, error) {
	cmd := strings.Join(args, " ")
	f.cmds = append(f.cmds, cmd)
	if f.failOn != "" && strings.HasPrefix(cmd, f.failOn) {
		return nil, errors.New("ip " + cmd + ": exit status 2: RTNETLINK answers: Operation not permitted")
	}
	return []byte(f.out[cmd]), nil
}

// fakeHost is a Host whose /proc/sys, /sys/class/net and /run/netns are temporary
// directories, with r as its ip.
func fakeHost(t *testing.T, r Runner) Host {
	t.Helper()
	dir := t.TempDir()
	h := Host{Runner: r, ProcSys: filepath.Join(dir, "proc"), SysClassNet: filepath.Join(dir, "net"), NamespaceDir: filepath.Join(dir, "netns")}
	for _, d := range []string{h.ProcSys, h.SysClassNet, h.NamespaceDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func testNetwork() Network {
	return Network{Namespace: NamespaceName("demo"), HostLink: HostLinkName("demo"), Gateway: netip.MustParsePrefix("10.5.0.1/24"),
		Taps: []string{TapName(1), TapName(2)}}
}

func TestNames(t *testing.T) {
	if got := NamespaceName("demo"); got != "plinth-demo" {
		t.Errorf("namespace %q", got)
	}
	link := HostLinkName(strings.Repeat("a", 40))
	if len(link) > 15 || !strings.HasPrefix(link, "plq") || link == HostLinkName("demo") {
		t.Errorf("host link %q", link)
	}
	if got := HostLinkName("demo"); got != "plq2a97516c" {
		t.Errorf("the host link of demo is %q: its name must stay stable, as destroy finds it by it", got)
	}
	if got := strings.Join(ExecPrefix("plinth-demo"), " "); got != "ip netns exec plinth-demo" {
		t.Errorf("exec prefix %q", got)
	}
}

func TestCreate(t *testing.T) {
	r := &fakeRunner{}
	h := fakeHost(t, r)
	proc := h.ProcSys
	link := HostLinkName("demo")
	for _, d := range []string{"net/ipv4/conf/" + link, "net/ipv6/conf/" + link} {
		if err := os.MkdirAll(filepath.Join(proc, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := testNetwork()
	if err := h.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"netns add plinth-demo",
		"link add " + link + " type veth peer name host0 netns plinth-demo",
		"addr add 10.5.0.1/24 dev " + link,
		"link set " + link + " up",
		"-n plinth-demo link add br0 type bridge",
		"-n plinth-demo link set host0 master br0",
		"-n plinth-demo link set host0 up",
		"-n plinth-demo tuntap add dev tap1 mode tap",
		"-n plinth-demo link set tap1 master br0",
		"-n plinth-demo link set tap1 up",
		"-n plinth-demo tuntap add dev tap2 mode tap",
		"-n plinth-demo link set tap2 master br0",
		"-n plinth-demo link set tap2 up",
		"-n plinth-demo link set br0 up",
	}
	if got := strings.Join(r.cmds, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	var all []string
	for _, c := range n.Commands() {
		all = append(all, strings.Join(c, " "))
	}
	if strings.Join(all, "\n") != strings.Join(want, "\n") {
		t.Errorf("Commands() differs from what Create ran:\n%s", strings.Join(all, "\n"))
	}
	// No NAT, no route, no forwarding: the commands never touch them.
	for _, c := range r.cmds {
		if strings.Contains(c, "route") || strings.Contains(c, "nat") || strings.Contains(c, "forward") {
			t.Errorf("command %q", c)
		}
	}
	for key, want := range map[string]string{"net/ipv4/conf/" + link + "/forwarding": "0\n", "net/ipv6/conf/" + link + "/disable_ipv6": "1\n"} {
		if got, err := os.ReadFile(filepath.Join(proc, key)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", key, got, err, want)
		}
	}
}

func TestCreateFailsAndRemoves(t *testing.T) {
	r := &fakeRunner{failOn: "-n plinth-demo link add br0"}
	h := fakeHost(t, r)
	n := testNetwork()
	if err := os.MkdirAll(filepath.Join(h.ProcSys, "net/ipv4/conf", n.HostLink), 0o755); err != nil {
		t.Fatal(err)
	}
	// The namespace and the pair exist when the bridge fails.
	for _, p := range []string{filepath.Join(h.NamespaceDir, n.Namespace), filepath.Join(h.SysClassNet, n.HostLink)} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := h.Create(t.Context(), n)
	if err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Fatalf("error %v", err)
	}
	got := strings.Join(r.cmds, "\n")
	if !strings.HasSuffix(got, "netns del plinth-demo\nlink del "+n.HostLink) {
		t.Errorf("the network was not removed after the failure:\n%s", got)
	}
}

func TestCreateRefuses(t *testing.T) {
	for name, n := range map[string]Network{
		"no namespace":   {HostLink: "plq1", Gateway: netip.MustParsePrefix("10.5.0.1/24")},
		"long link name": {Namespace: "x", HostLink: "plq0123456789abcdef", Gateway: netip.MustParsePrefix("10.5.0.1/24")},
		"IPv6 gateway":   {Namespace: "x", HostLink: "plq1", Gateway: netip.MustParsePrefix("fd00::1/64")},
	} {
		r := &fakeRunner{}
		if err := fakeHost(t, r).Create(t.Context(), n); err == nil || len(r.cmds) > 0 {
			t.Errorf("%s: %v, commands %v", name, err, r.cmds)
		}
	}
}

func TestDelete(t *testing.T) {
	r := &fakeRunner{}
	h := fakeHost(t, r)
	links, namespaces := h.SysClassNet, h.NamespaceDir
	found, err := h.Delete(t.Context(), "plinth-demo", "plqdeadbeef")
	if err != nil || found || len(r.cmds) != 0 {
		t.Errorf("nothing there: found %v, %v, commands %v", found, err, r.cmds)
	}
	for _, p := range []string{filepath.Join(namespaces, "plinth-demo"), filepath.Join(links, "plqdeadbeef")} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	found, err = h.Delete(t.Context(), "plinth-demo", "plqdeadbeef")
	if err != nil || !found || strings.Join(r.cmds, ";") != "netns del plinth-demo;link del plqdeadbeef" {
		t.Errorf("found %v, %v, commands %v", found, err, r.cmds)
	}
}

func TestCheckFree(t *testing.T) {
	routes := `[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},{"dst":"172.17.0.0/16","dev":"docker0"},
	  {"type":"local","dst":"192.0.2.2","table":"local","dev":"eth0"},{"type":"multicast","dst":"ff00::/8","table":"local"},{"dst":"10.5.0.0/24","dev":"br-1"}]`
	r := &fakeRunner{out: map[string]string{"-j -4 route show table all": routes}}
	for cidr, clash := range map[string]string{
		"10.6.0.0/24": "", "10.5.0.0/24": "10.5.0.0/24 on br-1", "10.5.0.128/25": "10.5.0.0/24", "10.0.0.0/8": "10.5.0.0/24",
		"172.17.3.0/24": "172.17.0.0/16", "192.0.2.0/24": "192.0.2.2 on eth0",
	} {
		err := (Host{Runner: r}).CheckFree(t.Context(), netip.MustParsePrefix(cidr))
		switch {
		case clash == "" && err != nil:
			t.Errorf("%s: %v", cidr, err)
		case clash != "" && (err == nil || !strings.Contains(err.Error(), clash)):
			t.Errorf("%s: %v, want a clash with %s", cidr, err, clash)
		}
	}
}

// TestRealNetwork makes a network with the host's ip and removes it again (root only).
func TestRealNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	name := "vmnettest-" + strconv.Itoa(os.Getpid())
	ctx := t.Context()
	var h Host
	r := ExecRunner{}
	prefix := netip.MustParsePrefix("10.251.93.0/29")
	if err := h.CheckFree(ctx, prefix); err != nil {
		t.Skip(err)
	}
	n := Network{Namespace: NamespaceName(name), HostLink: HostLinkName(name), Gateway: netip.PrefixFrom(prefix.Addr().Next(), prefix.Bits()), Taps: []string{TapName(1)}}
	if ok, _ := h.Exists(n.Namespace); ok {
		t.Skipf("namespace %s exists", n.Namespace)
	}
	t.Cleanup(func() { _, _ = h.Delete(context.WithoutCancel(ctx), n.Namespace, n.HostLink) })
	if err := h.Create(ctx, n); err != nil {
		if strings.Contains(err.Error(), "not permitted") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	if ok, err := h.Exists(n.Namespace); !ok || err != nil {
		t.Errorf("namespace: %v %v", ok, err)
	}
	if data, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + n.HostLink + "/forwarding"); err != nil || strings.TrimSpace(string(data)) != "0" {
		t.Errorf("forwarding on the host link: %q %v", data, err)
	}
	out, err := r.Run(ctx, "-n", n.Namespace, "-br", "link", "show", "master", Bridge)
	if err != nil || !strings.Contains(string(out), "tap1") || !strings.Contains(string(out), PeerLink) {
		t.Errorf("bridge ports: %s %v", out, err)
	}
	// Nothing routes out of the namespace.
	if out, err := r.Run(ctx, "-n", n.Namespace, "-4", "route", "show"); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("routes in the namespace: %q %v", out, err)
	}
	if err := h.CheckFree(ctx, prefix); err == nil {
		t.Error("CheckFree does not see the network it made")
	}
	found, err := h.Delete(ctx, n.Namespace, n.HostLink)
	if err != nil || !found {
		t.Fatalf("delete: %v %v", found, err)
	}
	if ok, _ := h.Exists(n.Namespace); ok {
		t.Error("the namespace is left")
	}
	if ok, _ := h.LinkExists(n.HostLink); ok {
		t.Error("the host link is left")
	}
}

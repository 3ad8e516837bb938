package controllers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/etcdintent"
	"github.com/plinthos/plinth/internal/k8s/certs"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// nodeInputs are the inputs shared by the Kubernetes node controllers.
var nodeInputs = []controller.Input{
	machineConfigInput,
	{Namespace: resources.NamespaceNetwork, Type: resources.HostnameType},
	{Namespace: resources.NamespaceNetwork, Type: resources.NodeAddressType},
}

// nodeFacts reads the configuration, host name and addresses; ok is false until all exist.
func nodeFacts(rt controller.Runtime) (cfg *config.MachineConfig, node render.Node, ok bool, err error) {
	if cfg, err = machineConfig(rt); err != nil || cfg == nil {
		return nil, node, false, err
	}
	host, okHost, err := get[resources.HostnameSpec](rt, resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID)
	if err != nil || !okHost {
		return nil, node, false, err
	}
	addrs, okAddrs, err := get[resources.NodeAddressSpec](rt, resources.NamespaceNetwork, resources.NodeAddressType, resources.DefaultID)
	if err != nil || !okAddrs || len(addrs.Addresses) == 0 {
		return nil, node, false, err
	}
	return cfg, render.Node{Name: host.Hostname, IP: addrs.Addresses[0], IPs: addrs.Addresses}, true, nil
}

// digestKey keys the digests for this boot. The generations are shown to readers (the
// KubeletSpec resource) and some inputs are secret (machine.env): a keyed digest cannot be
// checked against guesses, such as of a weak proxy password.
var digestKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("random key: %v", err))
	}
	return k
}()

// digest is a short keyed digest of parts, each length-prefixed so that no two different
// lists of parts give the same input.
func digest(parts ...[]byte) string {
	h := hmac.New(sha256.New, digestKey)
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// KubeletFiles writes what kubelet and containerd need: the node's Kubernetes PKI (all of
// it on control planes; the CA and a bootstrap kubeconfig on workers), kubelet's
// configuration and containerd's, and publishes kubelet's arguments.
type KubeletFiles struct {
	Layout paths.Layout
	// CgroupV1 makes kubelet accept a cgroup v1 host.
	CgroupV1 bool
	// RestrictOOMScoreAdj is set where processes cannot lower their oom_score_adj.
	RestrictOOMScoreAdj bool
}

// Name implements controller.Controller.
func (c *KubeletFiles) Name() string { return "k8s.KubeletFiles" }

// Inputs implements controller.Controller.
func (c *KubeletFiles) Inputs() []controller.Input { return nodeInputs }

// Outputs implements controller.Controller.
func (c *KubeletFiles) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.KubeletSpecType}}
}

// Run implements controller.Controller.
func (c *KubeletFiles) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	last := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.EventCh():
		}
		cfg, node, ok, err := nodeFacts(rt)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		raw, err := config.Marshal(cfg, false)
		if err != nil {
			return err
		}
		gen := digest(raw, []byte(node.Name), []byte(strings.Join(node.IPs, ",")))
		if gen == last {
			continue
		}
		cp := cfg.Machine.Type == config.TypeControlPlane
		var files certs.Files
		if cp {
			var ips []net.IP
			for _, a := range node.IPs {
				ips = append(ips, net.ParseIP(a))
			}
			files, err = certs.ControlPlane(cfg, certs.Node{Name: node.Name, IPs: ips}, rt.Clock().Now())
		} else {
			files, err = certs.Worker(cfg)
		}
		if err != nil {
			return err
		}
		for name, data := range files {
			if err := writeFile(c.Layout.PKI(name), data, 0o600); err != nil {
				return err
			}
		}
		dnsIP, err := render.ClusterDNSIP(cfg)
		if err != nil {
			return err
		}
		resolv := podResolvConf(cfg, readFile(c.Layout.Host("/etc/resolv.conf")), node.IP)
		if err := writeFile(c.Layout.Host(paths.PodResolvConf), resolv, 0o644); err != nil {
			return err
		}
		kubeletCfg, err := render.KubeletConfig(cfg, node, render.KubeletOptions{CgroupV1: c.CgroupV1, ClusterDNS: dnsIP, ControlPlane: cp,
			ResolvConf: paths.PodResolvConf})
		if err != nil {
			return err
		}
		if err := writeFile(c.Layout.Host(paths.KubeletDir+"/config.yaml"), kubeletCfg, 0o644); err != nil {
			return err
		}
		// machine.files come first: containerd imports the drop-ins among them.
		// A file that cannot be written does not hold kubelet back; the controller fails
		// after publishing the spec, and its restart (with back-off) tries again.
		criFiles, filesErr := writeMachineFiles(c.Layout.Host("/"), cfg.Machine.Files, render.CRIConfDir+"/")
		ctrd, err := render.ContainerdConfig(cfg, c.RestrictOOMScoreAdj)
		if err != nil {
			return err
		}
		for p, data := range ctrd {
			if err := writeFile(c.Layout.Host(p), data, 0o644); err != nil {
				return err
			}
		}
		args := render.KubeletArgs(cfg, node, cp)
		// What each service reads, so that each runs again when, and only when, its own
		// inputs change. The certificates are left out: they are issued anew at each
		// change (the old ones stay valid), and a CA change needs a reboot anyway.
		// machine.env is in both services' environment: a change runs both again.
		env := []byte(strings.Join(render.ServiceEnv(cfg), "\x00"))
		kubeletInputs := [][]byte{[]byte(strings.Join(args, "\x00")), kubeletCfg, resolv, env, []byte(cfg.Machine.Kubelet.Image)}
		ctrdInputs := append([][]byte{env}, criFiles...)
		for _, p := range slices.Sorted(maps.Keys(ctrd)) {
			ctrdInputs = append(ctrdInputs, []byte(p), ctrd[p])
		}
		spec := resources.KubeletSpecSpec{Args: args, ControlPlane: cp, Image: cfg.Machine.Kubelet.Image, Generation: digest(kubeletInputs...),
			ContainerdGeneration: digest(ctrdInputs...)}
		if err := set(ctx, rt, resources.NamespaceK8s, resources.KubeletSpecType, resources.DefaultID, spec); err != nil {
			return err
		}
		last = gen
		log.Info("kubelet and containerd files written", "kubelet", spec.Generation, "containerd", spec.ContainerdGeneration, "controlPlane", cp)
		if filesErr != nil {
			return fmt.Errorf("machine.files, tried again after a pause: %w", filesErr)
		}
	}
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// podResolvConf lists the upstream name servers pods (CoreDNS) may use: the configured
// ones, else the node's own that are not loopback addresses (a loopback resolver, such as
// Docker's embedded one, is unreachable from a pod). With none left, the node's address is
// given, so CoreDNS starts and answers cluster names while external names fail.
func podResolvConf(cfg *config.MachineConfig, nodeResolv, nodeIP string) []byte {
	servers := slices.Clone(cfg.Machine.Network.Nameservers)
	if len(servers) == 0 {
		for _, line := range strings.Split(nodeResolv, "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == "nameserver" {
				if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() {
					servers = append(servers, f[1])
				}
			}
		}
	}
	if len(servers) == 0 {
		servers = []string{nodeIP}
	}
	var b strings.Builder
	b.WriteString("# Written by machined for pods that use the node's DNS settings.\n")
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	return []byte(b.String())
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}

// EtcdIntent is where the EtcdState controller reads the node's etcd decision
// (etcdintent.Keeper).
type EtcdIntent interface {
	Current() etcdintent.Intent
	// Changed is signalled after each change of the decision.
	Changed() <-chan struct{}
}

// EtcdState publishes how this control-plane node runs etcd, from the node's decision
// (bootstrapped here, joined the cluster's etcd, or a member from before). The spec is the
// same before and after etcd first started, so the manifest stays put and kubelet does
// not restart etcd for nothing.
type EtcdState struct {
	Intent EtcdIntent
}

// Name implements controller.Controller.
func (c *EtcdState) Name() string { return "etcd.EtcdState" }

// Inputs implements controller.Controller.
func (c *EtcdState) Inputs() []controller.Input { return nodeInputs }

// Outputs implements controller.Controller.
func (c *EtcdState) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.EtcdStateType}}
}

// Run implements controller.Controller.
func (c *EtcdState) Run(ctx context.Context, rt controller.Runtime, _ *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.EventCh():
		case <-c.Intent.Changed():
		}
		cfg, node, ok, err := nodeFacts(rt)
		if err != nil {
			return err
		}
		if !ok || cfg.Machine.Type != config.TypeControlPlane {
			continue
		}
		alone := node.Name + "=" + ports.EtcdPeerURL(node.IP)
		in := c.Intent.Current()
		spec := resources.EtcdStateSpec{Role: string(in.Role)}
		switch in.Role {
		case etcdintent.RoleJoin:
			spec.Run, spec.ClusterState, spec.InitialCluster = true, "existing", in.InitialCluster
		case etcdintent.RoleBootstrap:
			spec.Run, spec.ClusterState, spec.InitialCluster = true, "new", alone
		case etcdintent.RoleMember:
			spec.Run, spec.ClusterState, spec.InitialCluster = true, "existing", alone
		}
		if err := set(ctx, rt, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID, spec); err != nil {
			return err
		}
	}
}

// StaticPods writes the control plane's static pod manifests once the node runs etcd.
type StaticPods struct {
	Layout paths.Layout
}

// Name implements controller.Controller.
func (c *StaticPods) Name() string { return "k8s.StaticPods" }

// Inputs implements controller.Controller.
func (c *StaticPods) Inputs() []controller.Input {
	return append(slices.Clone(nodeInputs),
		controller.Input{Namespace: resources.NamespaceEtcd, Type: resources.EtcdStateType},
		controller.Input{Namespace: resources.NamespaceK8s, Type: resources.KubeletSpecType})
}

// Outputs implements controller.Controller.
func (c *StaticPods) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.StaticPodsType}}
}

// Run implements controller.Controller.
func (c *StaticPods) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.EventCh():
		}
		cfg, node, ok, err := nodeFacts(rt)
		if err != nil {
			return err
		}
		etcd, okEtcd, err := get[resources.EtcdStateSpec](rt, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID)
		if err != nil {
			return err
		}
		// The PKI must be on disk first: the kubelet files controller writes it.
		_, okFiles, err := get[resources.KubeletSpecSpec](rt, resources.NamespaceK8s, resources.KubeletSpecType, resources.DefaultID)
		if err != nil {
			return err
		}
		if okEtcd && !etcd.Run {
			// etcd must not run here: its data is being replaced or moved aside, was lost, or
			// the node has yet to join. kubelet stops etcd once its manifest is gone, and the
			// rest of the control plane too, so that they start again afresh on the new data,
			// with no cache of the data before (as kubeadm's docs advise).
			removed := false
			for _, m := range []string{render.EtcdManifest, render.APIServerManifest, render.ControllerManagerManifest, render.SchedulerManifest} {
				err := os.Remove(c.Layout.Host(paths.ManifestsDir + "/" + m))
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove static pod %s: %w", m, err)
				}
				removed = removed || err == nil
			}
			if removed {
				log.Info("the control plane's static pods are removed: etcd must not run on this node now", "etcdRole", etcd.Role)
			}
			continue
		}
		if !ok || !okEtcd || !etcd.Run || !okFiles {
			continue
		}
		pods, err := render.StaticPods(cfg, node, render.EtcdJoin{InitialCluster: etcd.InitialCluster, State: etcd.ClusterState})
		if err != nil {
			return err
		}
		var names []string
		for name, data := range pods {
			if err := writeFile(c.Layout.Host(paths.ManifestsDir+"/"+name), data, 0o644); err != nil {
				return fmt.Errorf("write static pod %s: %w", name, err)
			}
			names = append(names, name)
		}
		slices.Sort(names)
		if err := set(ctx, rt, resources.NamespaceK8s, resources.StaticPodsType, resources.DefaultID, resources.StaticPodSetSpec{Pods: names}); err != nil {
			return err
		}
		log.Info("static pods written", "pods", names)
	}
}

package render

import (
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/k8s/certs"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/secrets"
)

var (
	genOnce sync.Once
	genCfgs *configgen.Configs
	genErr  error
)

// configs returns fresh copies of a generated cluster's control-plane and worker
// configurations (secrets are generated once: key generation is slow under -race).
func configs(t *testing.T) (cp, worker *config.MachineConfig) {
	t.Helper()
	genOnce.Do(func() {
		b, err := secrets.Generate(time.Now())
		if err != nil {
			genErr = err
			return
		}
		genCfgs, genErr = configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443"})
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	// A YAML round trip deep-copies, so that tests may change their copies freely.
	clone := func(c *config.MachineConfig) *config.MachineConfig {
		data, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var out config.MachineConfig
		if err := yaml.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		return &out
	}
	return clone(genCfgs.ControlPlane), clone(genCfgs.Worker)
}

var cpNode = Node{Name: "cp-1", IP: "10.5.0.2", IPs: []string{"10.5.0.2"}}

// parsePod decodes a manifest strictly into the Pod subset and, separately, into a generic
// map, to check it is one YAML document of a Pod.
func parsePod(t *testing.T, name string, data []byte) pod {
	t.Helper()
	var generic map[string]any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		t.Fatalf("%s: not YAML: %v\n%s", name, err, data)
	}
	if generic["apiVersion"] != "v1" || generic["kind"] != "Pod" {
		t.Errorf("%s: apiVersion/kind = %v/%v", name, generic["apiVersion"], generic["kind"])
	}
	var p pod
	if err := yamlx.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// flagsOf returns a command's --name=value flags by name, failing on duplicates.
func flagsOf(t *testing.T, args []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if _, dup := out[k]; dup {
			t.Errorf("flag --%s given twice in %q", k, args)
		}
		out[k] = v
	}
	return out
}

func wantFlags(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: no --%s", what, k)
		} else if g != v {
			t.Errorf("%s: --%s=%q, want %q", what, k, g, v)
		}
	}
}

func TestStaticPods(t *testing.T) {
	cfg, _ := configs(t)
	pods, err := StaticPods(cfg, cpNode, EtcdJoin{})
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(pods))
	if want := []string{"etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	images := config.ImagesFor(config.DefaultKubernetesVersion)
	pki := func(n string) string { return paths.PKIDir + "/" + n }

	type check struct {
		component, image string
		command          []string // before the flags
		flags            map[string]string
		mounts           map[string]bool // mount path → read-only
		liveness         httpGet
		readiness        *httpGet
	}
	checks := map[string]check{
		EtcdManifest: {
			component: "etcd", image: images.Etcd, command: []string{"/usr/bin/etcd"},
			flags: map[string]string{
				"name":                        "cp-1",
				"data-dir":                    "/var/lib/etcd",
				"listen-client-urls":          "https://127.0.0.1:2379,https://10.5.0.2:2379",
				"advertise-client-urls":       "https://10.5.0.2:2379",
				"listen-peer-urls":            "https://10.5.0.2:2380",
				"initial-advertise-peer-urls": "https://10.5.0.2:2380",
				"initial-cluster":             "cp-1=https://10.5.0.2:2380",
				"initial-cluster-state":       "new",
				"client-cert-auth":            "true",
				"peer-client-cert-auth":       "true",
				"trusted-ca-file":             pki("etcd-ca.crt"),
				"peer-trusted-ca-file":        pki("etcd-ca.crt"),
				"cert-file":                   pki("etcd-server.crt"),
				"key-file":                    pki("etcd-server.key"),
				"peer-cert-file":              pki("etcd-peer.crt"),
				"peer-key-file":               pki("etcd-peer.key"),
				"listen-metrics-urls":         "http://127.0.0.1:2381",
			},
			mounts:   map[string]bool{paths.PKIDir: true, "/var/lib/etcd": false},
			liveness: httpGet{Host: "127.0.0.1", Port: 2381, Path: "/health?exclude=NOSPACE&serializable=true", Scheme: "HTTP"},
		},
		APIServerManifest: {
			component: "kube-apiserver", image: images.APIServer, command: []string{"/usr/bin/kube", "kube-apiserver"},
			flags: map[string]string{
				"advertise-address":                  "10.5.0.2",
				"secure-port":                        "6443",
				"etcd-servers":                       "https://127.0.0.1:2379",
				"etcd-cafile":                        pki("etcd-ca.crt"),
				"etcd-certfile":                      pki("apiserver-etcd-client.crt"),
				"etcd-keyfile":                       pki("apiserver-etcd-client.key"),
				"client-ca-file":                     pki("ca.crt"),
				"tls-cert-file":                      pki("apiserver.crt"),
				"tls-private-key-file":               pki("apiserver.key"),
				"kubelet-client-certificate":         pki("apiserver-kubelet-client.crt"),
				"kubelet-client-key":                 pki("apiserver-kubelet-client.key"),
				"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
				"service-cluster-ip-range":           "10.96.0.0/12",
				"service-account-issuer":             "https://kubernetes.default.svc.cluster.local",
				"service-account-key-file":           pki("sa.pub"),
				"service-account-signing-key-file":   pki("sa.key"),
				"authorization-mode":                 "Node,RBAC",
				"enable-admission-plugins":           "NodeRestriction",
				"enable-bootstrap-token-auth":        "true",
				"allow-privileged":                   "true",
				"encryption-provider-config":         pki("encryption-config.yaml"),
				"requestheader-client-ca-file":       pki("front-proxy-ca.crt"),
				"requestheader-allowed-names":        "front-proxy-client",
				"requestheader-extra-headers-prefix": "X-Remote-Extra-",
				"requestheader-group-headers":        "X-Remote-Group",
				"requestheader-username-headers":     "X-Remote-User",
				"proxy-client-cert-file":             pki("front-proxy-client.crt"),
				"proxy-client-key-file":              pki("front-proxy-client.key"),
			},
			mounts:    map[string]bool{paths.PKIDir: true, "/etc/ssl/certs": true},
			liveness:  httpGet{Host: "127.0.0.1", Port: 6443, Path: "/livez", Scheme: "HTTPS"},
			readiness: &httpGet{Host: "127.0.0.1", Port: 6443, Path: "/readyz", Scheme: "HTTPS"},
		},
		ControllerManagerManifest: {
			component: "kube-controller-manager", image: images.ControllerManager, command: []string{"/usr/bin/kube", "kube-controller-manager"},
			flags: map[string]string{
				"kubeconfig":                       pki("controller-manager.conf"),
				"authentication-kubeconfig":        pki("controller-manager.conf"),
				"authorization-kubeconfig":         pki("controller-manager.conf"),
				"bind-address":                     "127.0.0.1",
				"client-ca-file":                   pki("ca.crt"),
				"cluster-name":                     "demo",
				"cluster-signing-cert-file":        pki("ca.crt"),
				"cluster-signing-key-file":         pki("ca.key"),
				"controllers":                      "*,bootstrapsigner,tokencleaner",
				"leader-elect":                     "true",
				"root-ca-file":                     pki("ca.crt"),
				"service-account-private-key-file": pki("sa.key"),
				"use-service-account-credentials":  "true",
				"kube-api-qps":                     "50",
				"kube-api-burst":                   "200",
				"allocate-node-cidrs":              "true",
				"cluster-cidr":                     "10.244.0.0/16",
				"service-cluster-ip-range":         "10.96.0.0/12",
				"requestheader-client-ca-file":     pki("front-proxy-ca.crt"),
			},
			mounts:   map[string]bool{paths.PKIDir: true, "/etc/ssl/certs": true},
			liveness: httpGet{Host: "127.0.0.1", Port: 10257, Path: "/healthz", Scheme: "HTTPS"},
		},
		SchedulerManifest: {
			component: "kube-scheduler", image: images.Scheduler, command: []string{"/usr/bin/kube", "kube-scheduler"},
			flags: map[string]string{
				"kubeconfig":                pki("scheduler.conf"),
				"authentication-kubeconfig": pki("scheduler.conf"),
				"authorization-kubeconfig":  pki("scheduler.conf"),
				"bind-address":              "127.0.0.1",
				"leader-elect":              "true",
			},
			mounts:   map[string]bool{paths.PKIDir: true},
			liveness: httpGet{Host: "127.0.0.1", Port: 10259, Path: "/healthz", Scheme: "HTTPS"},
		},
	}
	for file, want := range checks {
		p := parsePod(t, file, pods[file])
		m := p.Metadata
		if m.Name != want.component || m.Namespace != "kube-system" || m.Labels["component"] != want.component || m.Labels["tier"] != "control-plane" {
			t.Errorf("%s: metadata %+v", file, m)
		}
		if !p.Spec.HostNetwork || p.Spec.PriorityClassName != "system-node-critical" {
			t.Errorf("%s: hostNetwork %v, priorityClassName %q", file, p.Spec.HostNetwork, p.Spec.PriorityClassName)
		}
		if len(p.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", file, len(p.Spec.Containers))
		}
		c := p.Spec.Containers[0]
		if c.Image != want.image {
			t.Errorf("%s: image %q, want %q", file, c.Image, want.image)
		}
		if !slices.Equal(c.Command[:len(want.command)], want.command) {
			t.Errorf("%s: command starts %q, want %q", file, c.Command, want.command)
		}
		got := flagsOf(t, c.Command[len(want.command):])
		wantFlags(t, file, got, want.flags)
		if len(got) != len(want.flags) {
			t.Errorf("%s: %d flags, want %d: %q", file, len(got), len(want.flags), c.Command)
		}
		// Every mount is a hostPath volume at the same path.
		vols := map[string]hostPath{}
		for _, v := range p.Spec.Volumes {
			if v.HostPath == nil {
				t.Errorf("%s: volume %s is not a hostPath", file, v.Name)
				continue
			}
			vols[v.Name] = *v.HostPath
		}
		mounts := map[string]bool{}
		for _, vm := range c.VolumeMounts {
			hp, ok := vols[vm.Name]
			if !ok || hp.Path != vm.MountPath {
				t.Errorf("%s: mount %+v has volume %+v", file, vm, hp)
			}
			mounts[vm.MountPath] = vm.ReadOnly
		}
		if len(mounts) != len(want.mounts) {
			t.Errorf("%s: mounts %v, want %v", file, mounts, want.mounts)
		}
		for mp, ro := range want.mounts {
			if gotRO, ok := mounts[mp]; !ok || gotRO != ro {
				t.Errorf("%s: mount %s present %v read-only %v, want read-only %v", file, mp, ok, gotRO, ro)
			}
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet != want.liveness {
			t.Errorf("%s: liveness probe %+v, want %+v", file, c.LivenessProbe, want.liveness)
		}
		if c.StartupProbe == nil || c.StartupProbe.HTTPGet != want.liveness {
			t.Errorf("%s: startup probe %+v, want %+v", file, c.StartupProbe, want.liveness)
		}
		switch {
		case want.readiness == nil && c.ReadinessProbe != nil:
			t.Errorf("%s: unexpected readiness probe %+v", file, c.ReadinessProbe)
		case want.readiness != nil && (c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet != *want.readiness):
			t.Errorf("%s: readiness probe %+v, want %+v", file, c.ReadinessProbe, *want.readiness)
		}
	}
	// The literal query string reaches the manifest as written.
	if !strings.Contains(string(pods[EtcdManifest]), "path: /health?exclude=NOSPACE&serializable=true") {
		t.Errorf("etcd probe path mangled:\n%s", pods[EtcdManifest])
	}
}

func TestStaticPodsExtraArgsAndImages(t *testing.T) {
	cfg, _ := configs(t)
	cfg.Cluster.APIServer.Image = "registry.example.com/kube-apiserver:v1.37.9"
	cfg.Cluster.Scheduler.Image = "" // the bundled one
	cfg.Cluster.Network.ServiceSubnets = []string{"10.96.0.0/12", "fd00:96::/108"}
	cfg.Cluster.Network.PodSubnets = []string{"10.244.0.0/16", "fd00:244::/56"}
	cfg.Cluster.Network.DNSDomain = "example.internal"
	cfg.Cluster.APIServer.ExtraArgs = map[string]string{"authorization-mode": "Node,RBAC,Webhook", "audit-log-path": "-"}
	cfg.Cluster.Etcd.ExtraArgs = map[string]string{"quota-backend-bytes": "4294967296", "listen-metrics-urls": "http://127.0.0.1:2381,http://10.5.0.2:2381"}
	cfg.Cluster.ControllerManager.ExtraArgs = map[string]string{"controllers": "*", "--v": "2"}
	cfg.Cluster.Scheduler.ExtraArgs = map[string]string{"leader-elect": "false"}
	pods, err := StaticPods(cfg, cpNode, EtcdJoin{InitialCluster: "cp-0=https://10.5.0.3:2380,cp-1=https://10.5.0.2:2380", State: "existing"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := func(file string) (string, map[string]string) {
		c := parsePod(t, file, pods[file]).Spec.Containers[0]
		return c.Image, flagsOf(t, c.Command)
	}
	img, f := cmd(APIServerManifest)
	if img != "registry.example.com/kube-apiserver:v1.37.9" {
		t.Errorf("apiserver image %q", img)
	}
	wantFlags(t, "apiserver", f, map[string]string{
		"authorization-mode":       "Node,RBAC,Webhook",
		"audit-log-path":           "-",
		"secure-port":              "6443",
		"service-cluster-ip-range": "10.96.0.0/12,fd00:96::/108",
		"service-account-issuer":   "https://kubernetes.default.svc.example.internal",
	})
	_, f = cmd(EtcdManifest)
	wantFlags(t, "etcd", f, map[string]string{
		"quota-backend-bytes":   "4294967296",
		"listen-metrics-urls":   "http://127.0.0.1:2381,http://10.5.0.2:2381",
		"initial-cluster":       "cp-0=https://10.5.0.3:2380,cp-1=https://10.5.0.2:2380",
		"initial-cluster-state": "existing",
	})
	_, f = cmd(ControllerManagerManifest)
	wantFlags(t, "controller-manager", f, map[string]string{"controllers": "*", "v": "2", "cluster-cidr": "10.244.0.0/16,fd00:244::/56"})
	img, f = cmd(SchedulerManifest)
	wantFlags(t, "scheduler", f, map[string]string{"leader-elect": "false"})
	if want := config.ImagesFor(config.DefaultKubernetesVersion).Scheduler; img != want {
		t.Errorf("scheduler image %q, want the default %q", img, want)
	}
	if cfg.Cluster.Scheduler.Image != "" {
		t.Errorf("StaticPods changed the configuration: scheduler image %q", cfg.Cluster.Scheduler.Image)
	}
}

func TestStaticPodsIPv6AndErrors(t *testing.T) {
	cfg, _ := configs(t)
	pods, err := StaticPods(cfg, Node{Name: "cp-6", IP: "fd00::2"}, EtcdJoin{})
	if err != nil {
		t.Fatal(err)
	}
	f := flagsOf(t, parsePod(t, EtcdManifest, pods[EtcdManifest]).Spec.Containers[0].Command)
	wantFlags(t, "etcd", f, map[string]string{
		"advertise-client-urls": "https://[fd00::2]:2379",
		"initial-cluster":       "cp-6=https://[fd00::2]:2380",
	})
	for name, tc := range map[string]struct {
		node Node
		join EtcdJoin
	}{
		"no name":   {Node{IP: "10.5.0.2"}, EtcdJoin{}},
		"bad ip":    {Node{Name: "cp-1", IP: "cp-1.local"}, EtcdJoin{}},
		"bad state": {cpNode, EtcdJoin{State: "joining"}},
	} {
		if _, err := StaticPods(cfg, tc.node, tc.join); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestKubeletArgs(t *testing.T) {
	cp, worker := configs(t)
	pki := func(n string) string { return paths.PKIDir + "/" + n }

	cp.Machine.Kubelet.NodeLabels = map[string]string{"zone": "a", "node.kubernetes.io/exclude-from-external-load-balancers": "", "node-role.kubernetes.io/infra": ""}
	cp.Machine.Kubelet.NodeTaints = map[string]string{"dedicated": "db:NoExecute", "maintenance": ":PreferNoSchedule"}
	args := KubeletArgs(cp, Node{Name: "cp-1", IP: "10.5.0.2", IPs: []string{"10.5.0.2", "fd00::2"}}, true)
	f := flagsOf(t, args)
	wantFlags(t, "control plane", f, map[string]string{
		"config":                     "/var/lib/kubelet/config.yaml",
		"kubeconfig":                 pki("kubelet.conf"),
		"node-ip":                    "10.5.0.2,fd00::2",
		"hostname-override":          "cp-1",
		"container-runtime-endpoint": "unix:///run/containerd/containerd.sock",
		"node-labels":                "node.kubernetes.io/exclude-from-external-load-balancers=,zone=a",
		"register-with-taints":       "dedicated=db:NoExecute,maintenance:PreferNoSchedule,node-role.kubernetes.io/control-plane:NoSchedule",
	})
	if _, ok := f["bootstrap-kubeconfig"]; ok {
		t.Errorf("control plane has --bootstrap-kubeconfig: %q", args)
	}
	api := APINodeLabels(cp, true)
	if len(api) != 2 || api["node-role.kubernetes.io/control-plane"] != "" || api["node-role.kubernetes.io/infra"] != "" {
		t.Errorf("APINodeLabels = %v", api)
	}

	cp.Cluster.AllowSchedulingOnControlPlanes = true
	cp.Machine.Kubelet.NodeTaints = nil
	cp.Machine.Kubelet.ExtraArgs = map[string]string{"node-ip": "10.5.0.9", "max-pods": "150", "v": "2"}
	args = KubeletArgs(cp, cpNode, true)
	f = flagsOf(t, args)
	if v, ok := f["register-with-taints"]; ok {
		t.Errorf("control plane that allows scheduling is tainted: %s", v)
	}
	wantFlags(t, "extra args", f, map[string]string{"node-ip": "10.5.0.9", "max-pods": "150", "v": "2"})
	if tail := args[len(args)-3:]; !slices.Equal(tail, []string{"--max-pods=150", "--node-ip=10.5.0.9", "--v=2"}) {
		t.Errorf("extra args not last and sorted: %q", args)
	}

	args = KubeletArgs(worker, Node{Name: "w-1", IP: "10.5.0.3"}, false)
	f = flagsOf(t, args)
	wantFlags(t, "worker", f, map[string]string{
		"bootstrap-kubeconfig": pki("bootstrap-kubelet.conf"),
		"kubeconfig":           "/var/lib/kubelet/kubeconfig",
		"node-ip":              "10.5.0.3",
		"hostname-override":    "w-1",
	})
	for _, k := range []string{"register-with-taints", "node-labels"} {
		if v, ok := f[k]; ok {
			t.Errorf("worker has --%s=%s", k, v)
		}
	}
	if api := APINodeLabels(worker, false); len(api) != 0 {
		t.Errorf("worker APINodeLabels = %v", api)
	}
}

func TestKubeletMaySetLabel(t *testing.T) {
	for key, want := range map[string]bool{
		"zone":                                  true,
		"example.com/role":                      true,
		"kubernetes.io/hostname":                true,
		"topology.kubernetes.io/zone":           true,
		"node.kubernetes.io/instance-type":      true,
		"foo.node.kubernetes.io/bar":            true,
		"kubelet.kubernetes.io/x":               true,
		"node-role.kubernetes.io/control-plane": false,
		"kubernetes.io/role":                    false,
		"example.k8s.io/x":                      false,
		"notkubernetes.io/x":                    true,
	} {
		if got := kubeletMaySetLabel(key); got != want {
			t.Errorf("kubeletMaySetLabel(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestKubeletConfig(t *testing.T) {
	cp, worker := configs(t)
	parse := func(data []byte) map[string]any {
		t.Helper()
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		return m
	}
	data, err := KubeletConfig(cp, cpNode, KubeletOptions{CgroupV1: true, ControlPlane: true})
	if err != nil {
		t.Fatal(err)
	}
	m := parse(data)
	for k, want := range map[string]any{
		"apiVersion":                  "kubelet.config.k8s.io/v1beta1",
		"kind":                        "KubeletConfiguration",
		"cgroupDriver":                "cgroupfs",
		"failCgroupV1":                false,
		"clusterDomain":               "cluster.local",
		"staticPodPath":               "/etc/kubernetes/manifests",
		"containerRuntimeEndpoint":    "unix:///run/containerd/containerd.sock",
		"resolvConf":                  "/etc/resolv.conf",
		"rotateCertificates":          true,
		"serverTLSBootstrap":          true,
		"failSwapOn":                  false,
		"protectKernelDefaults":       false,
		"imageGCHighThresholdPercent": 100,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if dns, _ := m["clusterDNS"].([]any); len(dns) != 1 || dns[0] != "10.96.0.10" {
		t.Errorf("clusterDNS = %v", m["clusterDNS"])
	}
	authn, _ := m["authentication"].(map[string]any)
	x509, _ := authn["x509"].(map[string]any)
	webhook, _ := authn["webhook"].(map[string]any)
	anon, _ := authn["anonymous"].(map[string]any)
	if x509["clientCAFile"] != paths.PKIDir+"/ca.crt" || webhook["enabled"] != true || anon["enabled"] != false {
		t.Errorf("authentication = %v", authn)
	}
	if authz, _ := m["authorization"].(map[string]any); authz["mode"] != "Webhook" {
		t.Errorf("authorization = %v", m["authorization"])
	}
	eviction, _ := m["evictionHard"].(map[string]any)
	for _, sig := range []string{"memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available"} {
		if eviction[sig] == nil {
			t.Errorf("evictionHard lacks %s: %v", sig, eviction)
		}
	}
	for _, k := range []string{"podPidsLimit", "kubeReserved"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s is set", k)
		}
	}

	data, err = KubeletConfig(worker, Node{Name: "w-1", IP: "10.5.0.3"}, KubeletOptions{ClusterDNS: "10.96.0.53"})
	if err != nil {
		t.Fatal(err)
	}
	m = parse(data)
	for _, k := range []string{"failCgroupV1", "staticPodPath"} {
		if v, ok := m[k]; ok {
			t.Errorf("worker on cgroup v2: %s = %v", k, v)
		}
	}
	if dns, _ := m["clusterDNS"].([]any); len(dns) != 1 || dns[0] != "10.96.0.53" {
		t.Errorf("clusterDNS = %v", m["clusterDNS"])
	}
	if _, err := KubeletConfig(worker, Node{Name: "w-1", IP: "10.5.0.3"}, KubeletOptions{ClusterDNS: "dns"}); err == nil {
		t.Error("no error for a cluster DNS address that is not one")
	}
}

func TestContainerdConfig(t *testing.T) {
	cfg, _ := configs(t)
	for _, restrict := range []bool{true, false} {
		files, err := ContainerdConfig(cfg, restrict)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 1 {
			t.Errorf("files %v, want only %s", slices.Sorted(maps.Keys(files)), paths.ContainerdConfig)
		}
		s := string(files[paths.ContainerdConfig])
		for _, want := range []string{
			"version = 3\n",
			`root = "/var/lib/containerd"`,
			`state = "/run/containerd"`,
			`address = "/run/containerd/containerd.sock"`,
			`[plugins."io.containerd.cri.v1.images"]`,
			`snapshotter = "overlayfs"`,
			`[plugins."io.containerd.cri.v1.images".pinned_images]`,
			`sandbox = "plinth.local/pause:3.10"`,
			`config_path = "/etc/containerd/certs.d"`,
			`[plugins."io.containerd.cri.v1.runtime"]`,
			"restrict_oom_score_adj = " + strconv.FormatBool(restrict) + "\n",
			`stats_collect_period = "10s"`,
			`default_runtime_name = "runc"`,
			`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]`,
			`runtime_type = "io.containerd.runc.v2"`,
			`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]`,
			`BinaryName = "/usr/bin/runc"`,
			"SystemdCgroup = false\n",
			`bin_dirs = ["/opt/cni/bin"]`,
			`conf_dir = "/etc/cni/net.d"`,
		} {
			if !strings.Contains(s, want) {
				t.Errorf("restrict=%v: config lacks %s\n%s", restrict, want, s)
			}
		}
		// The images plugin has a stats_collect_period of its own, an integer: the CRI
		// runtime's, a duration, must be in the runtime's table, before the next one.
		var table []string
		_, after, _ := strings.Cut(s, `[plugins."io.containerd.cri.v1.runtime"]`+"\n")
		for _, line := range strings.Split(after, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "[") {
				break
			}
			table = append(table, strings.TrimSpace(line))
		}
		if !slices.Contains(table, `stats_collect_period = "10s"`) {
			t.Errorf("restrict=%v: stats_collect_period is not in the CRI runtime's own table: %q", restrict, table)
		}
		if strings.Count(s, "restrict_oom_score_adj") != 1 {
			t.Errorf("restrict_oom_score_adj set more than once:\n%s", s)
		}
	}
}

func TestContainerdRegistryMirrors(t *testing.T) {
	cfg, _ := configs(t)
	cfg.Machine.Registries.Mirrors = map[string]config.Mirror{
		"docker.io":           {Endpoints: []string{"https://mirror.example.com", "http://10.5.0.1:5000"}},
		"registry.local:5000": {Endpoints: []string{"http://10.5.0.1:5001"}, SkipFallback: true},
		"*":                   {Endpoints: []string{"https://a.example.com", "https://b.example.com/v2/proxy"}, SkipFallback: true},
	}
	files, err := ContainerdConfig(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		paths.ContainerdConfig,
		"/etc/containerd/certs.d/_default/hosts.toml",
		"/etc/containerd/certs.d/docker.io/hosts.toml",
		"/etc/containerd/certs.d/registry.local:5000/hosts.toml",
	}
	slices.Sort(want)
	if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	docker := string(files["/etc/containerd/certs.d/docker.io/hosts.toml"])
	if strings.Contains(docker, "server =") {
		t.Errorf("docker.io falls back to the registry, yet server is set:\n%s", docker)
	}
	first, second := strings.Index(docker, `[host."https://mirror.example.com"]`), strings.Index(docker, `[host."http://10.5.0.1:5000"]`)
	if first < 0 || second < first || strings.Count(docker, `capabilities = ["pull", "resolve"]`) != 2 {
		t.Errorf("docker.io mirrors not in order with pull and resolve:\n%s", docker)
	}
	local := string(files["/etc/containerd/certs.d/registry.local:5000/hosts.toml"])
	if !strings.Contains(local, `server = "http://10.5.0.1:5001"`) || strings.Contains(local, "[host.") {
		t.Errorf("registry.local:5000 without fallback:\n%s", local)
	}
	def := string(files["/etc/containerd/certs.d/_default/hosts.toml"])
	if !strings.Contains(def, `server = "https://b.example.com/v2/proxy"`) || !strings.Contains(def, `[host."https://a.example.com"]`) {
		t.Errorf("_default:\n%s", def)
	}
	// Top-level keys come before the first table, or TOML would put them in it.
	if i, j := strings.Index(def, "capabilities"), strings.Index(def, "[host."); i > j {
		t.Errorf("_default: top-level capabilities after a table:\n%s", def)
	}

	for name, m := range map[string]map[string]config.Mirror{
		"traversal":   {"../etc": {Endpoints: []string{"https://m"}}},
		"no endpoint": {"docker.io": {}},
		"bad url":     {"docker.io": {Endpoints: []string{"mirror.example.com"}}},
	} {
		cfg.Machine.Registries.Mirrors = m
		if _, err := ContainerdConfig(cfg, false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":  `"plain"`,
		`a"b\c`:  `"a\"b\\c"`,
		"x\ny\t": `"x\ny\t"`,
		"\x01":   `"\u0001"`,
	} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestClusterDNSIP(t *testing.T) {
	cfg, _ := configs(t)
	for subnet, want := range map[string]string{
		"10.96.0.0/12":  "10.96.0.10",
		"10.100.5.0/24": "10.100.5.10",
		"10.96.0.7/12":  "10.96.0.10", // host bits are ignored
		"fd00:96::/108": "fd00:96::a",
	} {
		cfg.Cluster.Network.ServiceSubnets = []string{subnet, "fd00::/108"}
		got, err := ClusterDNSIP(cfg)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %s", subnet, got, err, want)
		}
	}
	cfg.Cluster.Network.ServiceSubnets = nil
	if got, err := ClusterDNSIP(cfg); err != nil || got != "10.96.0.10" {
		t.Errorf("default subnet: %q, %v", got, err)
	}
	for _, subnet := range []string{"10.96.0.0/29", "nonsense"} {
		cfg.Cluster.Network.ServiceSubnets = []string{subnet}
		if got, err := ClusterDNSIP(cfg); err == nil {
			t.Errorf("%s: %q, no error", subnet, got)
		}
	}
}

func TestCanLowerOOMScoreAdj(t *testing.T) {
	before, err := os.ReadFile(oomScoreAdjFile)
	if err != nil {
		t.Skipf("no %s: %v", oomScoreAdjFile, err)
	}
	can := CanLowerOOMScoreAdj()
	t.Logf("CanLowerOOMScoreAdj() = %v (oom_score_adj %s)", can, strings.TrimSpace(string(before)))
	after, err := os.ReadFile(oomScoreAdjFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("oom_score_adj changed from %q to %q", before, after)
	}
}

// The locations here agree with the rest of the node.
func TestLocations(t *testing.T) {
	if path.Dir(RegistryHostsDir) != path.Dir(paths.ContainerdConfig) {
		t.Errorf("RegistryHostsDir %s is not next to %s", RegistryHostsDir, paths.ContainerdConfig)
	}
	if !strings.HasSuffix(certs.LocalAPIServer, ":"+strconv.Itoa(ports.KubeAPI)) {
		t.Errorf("components reach the API server at %s, it listens on %d", certs.LocalAPIServer, ports.KubeAPI)
	}
	if path.Dir(KubeletConfigFile) != paths.KubeletDir || path.Dir(WorkerKubeconfig) != paths.KubeletDir {
		t.Errorf("kubelet files outside %s", paths.KubeletDir)
	}
}

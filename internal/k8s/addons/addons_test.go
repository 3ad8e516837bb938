package addons

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/secrets"
)

const testToken = "abcdef.0123456789abcdef"

// testConfig is a minimal control-plane configuration, with no defaults filled in.
func testConfig() *config.MachineConfig {
	return &config.MachineConfig{
		APIVersion: config.APIVersion,
		Kind:       config.KindMachineConfig,
		Machine:    config.MachineSpec{Type: config.TypeControlPlane},
		Cluster: config.ClusterSpec{
			Name:         "demo",
			ControlPlane: config.ControlPlaneSpec{Endpoint: "https://10.5.0.2:6443"},
			Token:        testToken,
		},
	}
}

// doc is one decoded YAML document.
type doc = map[string]any

// parseDocs decodes a multi-document stream and checks that every document is a
// Kubernetes object: apiVersion, kind and metadata.name set, and a namespace exactly for
// the namespaced kinds used here.
func parseDocs(t *testing.T, file string, data []byte) []doc {
	t.Helper()
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "Namespace": true}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []doc
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v\n%s", file, len(out)+1, err, data)
		}
		if d == nil && strings.HasPrefix(file, InlinePrefix) { // "---" twice: allowed as given
			continue
		}
		kind, _ := d["kind"].(string)
		if api, _ := d["apiVersion"].(string); api == "" || kind == "" {
			t.Fatalf("%s: document %d has no apiVersion or kind:\n%v", file, len(out)+1, d)
		}
		meta, _ := d["metadata"].(doc)
		if name, _ := meta["name"].(string); name == "" {
			t.Fatalf("%s: %s has no metadata.name", file, kind)
		}
		if ns, _ := meta["namespace"].(string); !strings.HasPrefix(file, InlinePrefix) && (ns == "") != clusterScoped[kind] {
			t.Errorf("%s: %s %v: namespace %q", file, kind, meta["name"], ns)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no document", file)
	}
	return out
}

func manifests(t *testing.T, cfg *config.MachineConfig) map[string][]doc {
	t.Helper()
	files, err := Manifests(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]doc{}
	for name, data := range files {
		out[name] = parseDocs(t, name, data)
	}
	return out
}

// find returns the document of a kind and name in a file, failing when absent.
func find(t *testing.T, docs map[string][]doc, file, kind, name string) doc {
	t.Helper()
	for _, d := range docs[file] {
		if d["kind"] == kind && get(d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("%s: no %s %s", file, kind, name)
	return nil
}

// get walks a decoded document by map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(doc)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func kinds(ds []doc) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d["kind"].(string)+"/"+get(d, "metadata", "name").(string))
	}
	return out
}

func TestManifestsDefault(t *testing.T) {
	docs := manifests(t, testConfig())
	want := map[string][]string{
		RBACFile: {
			"ClusterRoleBinding/plinth:node-bootstrapper",
			"ClusterRoleBinding/plinth:node-autoapprove-bootstrap",
			"ClusterRoleBinding/plinth:node-autoapprove-certificate-rotation",
		},
		BootstrapTokenFile: {"Secret/bootstrap-token-abcdef"},
		KubeProxyFile: {
			"ServiceAccount/kube-proxy", "ClusterRoleBinding/plinth:kube-proxy", "ConfigMap/kube-proxy", "DaemonSet/kube-proxy",
		},
		PodNetworkFile: {"ClusterRole/plinth:pod-network", "ClusterRoleBinding/plinth:pod-network"},
		CoreDNSFile: {
			"ServiceAccount/coredns", "ClusterRole/plinth:coredns", "ClusterRoleBinding/plinth:coredns",
			"ConfigMap/coredns", "Deployment/coredns", "Service/kube-dns",
		},
	}
	if got := slices.Sorted(maps.Keys(docs)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("files = %v", got)
	}
	for file, w := range want {
		if got := kinds(docs[file]); !slices.Equal(got, w) {
			t.Errorf("%s holds %v, want %v", file, got, w)
		}
	}
}

func TestManifestsLeaveConfigAlone(t *testing.T) {
	cfg := testConfig()
	before, _ := yaml.Marshal(cfg)
	if _, err := Manifests(cfg); err != nil {
		t.Fatal(err)
	}
	if after, _ := yaml.Marshal(cfg); !bytes.Equal(before, after) {
		t.Errorf("Manifests changed the configuration:\n%s\n---\n%s", before, after)
	}
}

func TestBootstrapRBAC(t *testing.T) {
	docs := manifests(t, testConfig())
	for _, c := range []struct {
		binding, role string
		groups        []string
	}{
		{"plinth:node-bootstrapper", "system:node-bootstrapper", []string{"system:bootstrappers:plinth", "system:bootstrappers"}},
		{"plinth:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", []string{"system:bootstrappers:plinth", "system:bootstrappers"}},
		{"plinth:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", []string{"system:nodes"}},
	} {
		b := find(t, docs, RBACFile, "ClusterRoleBinding", c.binding)
		if got := get(b, "roleRef"); !reflect.DeepEqual(got, doc{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": c.role}) {
			t.Errorf("%s: roleRef %v", c.binding, got)
		}
		var groups []string
		for _, s := range get(b, "subjects").([]any) {
			if get(s, "kind") != "Group" || get(s, "apiGroup") != "rbac.authorization.k8s.io" {
				t.Errorf("%s: subject %v", c.binding, s)
			}
			groups = append(groups, get(s, "name").(string))
		}
		if !slices.Equal(groups, c.groups) {
			t.Errorf("%s: groups %v, want %v", c.binding, groups, c.groups)
		}
	}
}

func TestBootstrapToken(t *testing.T) {
	cfg := testConfig()
	cfg.Cluster.Token = "x1y2z3.a1b2c3d4e5f6g7h8"
	docs := manifests(t, cfg)
	s := find(t, docs, BootstrapTokenFile, "Secret", "bootstrap-token-x1y2z3")
	if s["type"] != "bootstrap.kubernetes.io/token" || get(s, "metadata", "namespace") != "kube-system" {
		t.Errorf("secret: type %v namespace %v", s["type"], get(s, "metadata", "namespace"))
	}
	data := get(s, "stringData").(doc)
	for k, v := range map[string]string{
		"token-id":                       "x1y2z3",
		"token-secret":                   "a1b2c3d4e5f6g7h8",
		"usage-bootstrap-authentication": "true",
		"usage-bootstrap-signing":        "true",
		"auth-extra-groups":              "system:bootstrappers:plinth",
	} {
		if data[k] != v {
			t.Errorf("stringData[%s] = %#v, want %q", k, data[k], v)
		}
	}
	if _, ok := data["expiration"]; ok {
		t.Error("the token expires")
	}

	for _, bad := range []string{"", "abcdef", "abcdef.0123", "ABCDEF.0123456789abcdef", "abcdef.0123456789abcdef.x"} {
		cfg.Cluster.Token = bad
		if _, err := Manifests(cfg); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}

func TestSplitToken(t *testing.T) {
	id, secret, err := SplitToken(testToken)
	if err != nil || id != "abcdef" || secret != "0123456789abcdef" {
		t.Errorf("SplitToken = %q, %q, %v", id, secret, err)
	}
}

func TestDisabled(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*config.MachineConfig)
		absent string
	}{
		{"proxy", func(c *config.MachineConfig) { c.Cluster.Proxy.Disabled = true }, KubeProxyFile},
		{"coredns", func(c *config.MachineConfig) { c.Cluster.CoreDNS.Disabled = true }, CoreDNSFile},
		{"cni none", func(c *config.MachineConfig) { c.Cluster.Network.CNI.Name = "none" }, FlannelFile},
		{"cni custom", func(c *config.MachineConfig) {
			c.Cluster.Network.CNI = config.CNISpec{Name: "custom", URLs: []string{"https://example.com/cni.yaml"}}
		}, FlannelFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.change(cfg)
			files, err := Manifests(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := files[c.absent]; ok {
				t.Errorf("%s is there", c.absent)
			}
			if len(files) != 4 {
				t.Errorf("files: %v", slices.Sorted(maps.Keys(files)))
			}
		})
	}
	cfg := testConfig()
	cfg.Cluster.Network.CNI.Name = "calico"
	if _, err := Manifests(cfg); err == nil {
		t.Error("unknown CNI accepted")
	}
}

func TestExtraManifestURLs(t *testing.T) {
	cfg := testConfig()
	cfg.Cluster.ExtraManifests = []string{"https://example.com/a.yaml", "https://example.com/b.yaml"}
	if got := ExtraManifestURLs(cfg); !slices.Equal(got, cfg.Cluster.ExtraManifests) {
		t.Errorf("flannel: %v", got)
	}
	cfg.Cluster.Network.CNI = config.CNISpec{Name: "custom", URLs: []string{"https://example.com/cni.yaml"}}
	want := []string{"https://example.com/cni.yaml", "https://example.com/a.yaml", "https://example.com/b.yaml"}
	if got := ExtraManifestURLs(cfg); !slices.Equal(got, want) {
		t.Errorf("custom CNI: %v, want %v", got, want)
	}
	if got := ExtraManifestURLs(testConfig()); len(got) != 0 {
		t.Errorf("none: %v", got)
	}
}

func TestClusterDNSIP(t *testing.T) {
	for _, c := range []struct {
		subnets []string
		want    string
	}{
		{nil, "10.96.0.10"},
		{[]string{"10.100.0.0/16"}, "10.100.0.10"},
		{[]string{"fd00:10::/108"}, "fd00:10::a"},
	} {
		cfg := testConfig()
		cfg.Cluster.Network.ServiceSubnets = c.subnets
		if len(c.subnets) > 0 && strings.Contains(c.subnets[0], ":") {
			cfg.Cluster.Network.PodSubnets = []string{"fd00:244::/56"}
		}
		want, err := render.ClusterDNSIP(cfg)
		if err != nil || want != c.want {
			t.Fatalf("render.ClusterDNSIP = %q, %v", want, err)
		}
		docs := manifests(t, cfg)
		svc := find(t, docs, CoreDNSFile, "Service", "kube-dns")
		if got := get(svc, "spec", "clusterIP"); got != want {
			t.Errorf("%v: clusterIP %v, want %s", c.subnets, got, want)
		}
		if got := get(svc, "spec", "selector", "k8s-app"); got != "kube-dns" {
			t.Errorf("selector %v", got)
		}
		if got := get(find(t, docs, CoreDNSFile, "Deployment", "coredns"), "spec", "template", "metadata", "labels", "k8s-app"); got != "kube-dns" {
			t.Errorf("pod label %v", got)
		}
	}
}

// podContainer returns the only container of a workload.
func podContainer(t *testing.T, d doc) doc {
	t.Helper()
	cs := get(d, "spec", "template", "spec", "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("%v: %d containers", get(d, "metadata", "name"), len(cs))
	}
	return cs[0].(doc)
}

func TestImagesAndPullPolicies(t *testing.T) {
	defaults := config.ImagesFor(config.DefaultKubernetesVersion)
	check := func(cfg *config.MachineConfig, proxy, coredns, policy string) {
		t.Helper()
		cfg.Cluster.Network.CNI.Name = CNIFlannel // the only CNI with an image
		docs := manifests(t, cfg)
		for _, c := range []struct {
			file, kind, name, image, policy string
		}{
			{KubeProxyFile, "DaemonSet", "kube-proxy", proxy, policy},
			{CoreDNSFile, "Deployment", "coredns", coredns, policy},
			{FlannelFile, "DaemonSet", "kube-flannel", FlannelImage, "Never"},
		} {
			ctr := podContainer(t, find(t, docs, c.file, c.kind, c.name))
			if ctr["image"] != c.image || ctr["imagePullPolicy"] != c.policy {
				t.Errorf("%s: image %v (%v), want %s (%s)", c.name, ctr["image"], ctr["imagePullPolicy"], c.image, c.policy)
			}
		}
	}
	check(testConfig(), defaults.Proxy, defaults.CoreDNS, "Never")

	cfg := testConfig()
	cfg.Cluster.Proxy.Image = "registry.example.com/kube-proxy:v1.37.2"
	cfg.Cluster.CoreDNS.Image = "registry.example.com/coredns:v1.15.0"
	check(cfg, cfg.Cluster.Proxy.Image, cfg.Cluster.CoreDNS.Image, "IfNotPresent")
}

// TestImagesBundled checks that the images the add-ons use by default are in the bundle.
func TestImagesBundled(t *testing.T) {
	lock, err := os.ReadFile("../../../payload/images.lock")
	if err != nil {
		t.Fatal(err)
	}
	bundled := map[string]bool{}
	for _, line := range strings.Split(string(lock), "\n") {
		if f := strings.Fields(line); len(f) > 1 && !strings.HasPrefix(line, "#") {
			for _, name := range f[1:] {
				bundled[name] = true
			}
		}
	}
	defaults := config.ImagesFor(config.DefaultKubernetesVersion)
	for _, image := range []string{FlannelImage, defaults.Proxy, defaults.CoreDNS} {
		if !bundled[image] {
			t.Errorf("%s is not in payload/images.lock", image)
		}
	}
}

func TestKubeProxy(t *testing.T) {
	cfg := testConfig()
	cfg.Cluster.Proxy.ExtraArgs = map[string]string{"v": "2"}
	docs := manifests(t, cfg)

	cm := find(t, docs, KubeProxyFile, "ConfigMap", "kube-proxy")
	var kpc doc
	if err := yaml.Unmarshal([]byte(get(cm, "data", "config.conf").(string)), &kpc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"apiVersion"}, "kubeproxy.config.k8s.io/v1alpha1"},
		{[]any{"kind"}, "KubeProxyConfiguration"},
		{[]any{"mode"}, "iptables"},
		{[]any{"clusterCIDR"}, "10.244.0.0/16"},
		{[]any{"conntrack", "maxPerCore"}, 0},
		{[]any{"clientConnection", "kubeconfig"}, "/var/lib/kube-proxy/kubeconfig.conf"},
	} {
		if got := get(kpc, c.path...); got != c.want {
			t.Errorf("config.conf %v = %#v, want %#v", c.path, got, c.want)
		}
	}
	checkKubeconfig(t, get(cm, "data", "kubeconfig.conf").(string), "https://10.5.0.2:6443")

	ds := find(t, docs, KubeProxyFile, "DaemonSet", "kube-proxy")
	pod := get(ds, "spec", "template", "spec").(doc)
	if pod["hostNetwork"] != true || pod["priorityClassName"] != "system-node-critical" || pod["serviceAccountName"] != "kube-proxy" {
		t.Errorf("pod spec: %v", pod)
	}
	if got := pod["tolerations"]; !reflect.DeepEqual(got, []any{doc{"operator": "Exists"}}) {
		t.Errorf("tolerations %v", got)
	}
	ctr := podContainer(t, ds)
	want := []string{"/usr/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)", "--v=2"}
	if got := strs(ctr["command"]); !slices.Equal(got, want) {
		t.Errorf("command %v, want %v", got, want)
	}
	if get(ctr, "securityContext", "privileged") != true {
		t.Error("kube-proxy is not privileged")
	}
	if get(ctr, "env", 0, "valueFrom", "fieldRef", "fieldPath") != "spec.nodeName" {
		t.Errorf("env %v", ctr["env"])
	}
	checkHostPaths(t, ds, map[string]string{"/run/xtables.lock": "FileOrCreate", "/lib/modules": ""})
	if get(find(t, docs, KubeProxyFile, "ClusterRoleBinding", "plinth:kube-proxy"), "roleRef", "name") != "system:node-proxier" {
		t.Error("kube-proxy is not bound to system:node-proxier")
	}

	cfg = testConfig()
	cfg.Cluster.Proxy.Mode = "ipvs"
	cfg.Cluster.Network.PodSubnets = []string{"10.32.0.0/12", "fd00:32::/56"}
	cfg.Cluster.Network.ServiceSubnets = []string{"10.96.0.0/12", "fd00:96::/108"}
	docs = manifests(t, cfg)
	if err := yaml.Unmarshal([]byte(get(find(t, docs, KubeProxyFile, "ConfigMap", "kube-proxy"), "data", "config.conf").(string)), &kpc); err != nil {
		t.Fatal(err)
	}
	if kpc["mode"] != "ipvs" || kpc["clusterCIDR"] != "10.32.0.0/12,fd00:32::/56" {
		t.Errorf("mode %v, clusterCIDR %v", kpc["mode"], kpc["clusterCIDR"])
	}
}

// checkKubeconfig checks an in-cluster kubeconfig: the given server, the service account's
// token and CA.
func checkKubeconfig(t *testing.T, data, server string) {
	t.Helper()
	var kc doc
	if err := yaml.Unmarshal([]byte(data), &kc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path []any
		want string
	}{
		{[]any{"clusters", 0, "cluster", "server"}, server},
		{[]any{"clusters", 0, "cluster", "certificate-authority"}, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"},
		{[]any{"users", 0, "user", "tokenFile"}, "/var/run/secrets/kubernetes.io/serviceaccount/token"},
		{[]any{"current-context"}, get(kc, "contexts", 0, "name").(string)},
	} {
		if got := get(kc, c.path...); got != c.want {
			t.Errorf("kubeconfig %v = %v, want %s", c.path, got, c.want)
		}
	}
}

// checkHostPaths checks a workload's hostPath volumes (path → type) and that each is
// mounted at the same path.
func checkHostPaths(t *testing.T, d doc, want map[string]string) {
	t.Helper()
	mounts := map[string]string{}
	for _, m := range get(podContainer(t, d), "volumeMounts").([]any) {
		mounts[get(m, "name").(string)] = get(m, "mountPath").(string)
	}
	got := map[string]string{}
	for _, v := range get(d, "spec", "template", "spec", "volumes").([]any) {
		p, ok := get(v, "hostPath", "path").(string)
		if !ok {
			continue
		}
		typ, _ := get(v, "hostPath", "type").(string)
		got[p] = typ
		if mounts[get(v, "name").(string)] != p {
			t.Errorf("%s is mounted at %q", p, mounts[get(v, "name").(string)])
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("host paths %v, want %v", got, want)
	}
}

func TestPodNetwork(t *testing.T) {
	cfg := testConfig()
	cfg.Cluster.Network.CNI.Name = CNIPlinth
	docs := manifests(t, cfg)
	if _, ok := docs[FlannelFile]; ok {
		t.Error("the built-in pod network has flannel's manifests")
	}
	role := find(t, docs, PodNetworkFile, "ClusterRole", "plinth:pod-network")
	want := []any{doc{"apiGroups": []any{""}, "resources": []any{"nodes"}, "verbs": []any{"get", "list", "watch"}}}
	if !reflect.DeepEqual(role["rules"], want) {
		t.Errorf("rules %v", role["rules"])
	}
	b := find(t, docs, PodNetworkFile, "ClusterRoleBinding", "plinth:pod-network")
	if get(b, "roleRef", "name") != "plinth:pod-network" || get(b, "subjects", 0, "kind") != "Group" || get(b, "subjects", 0, "name") != "system:nodes" {
		t.Errorf("binding %v", b)
	}
}

func TestFlannel(t *testing.T) {
	cfg := testConfig()
	cfg.Cluster.Network.CNI.Name = CNIFlannel
	docs := manifests(t, cfg)
	cm := find(t, docs, FlannelFile, "ConfigMap", "kube-flannel-cfg")
	var nc any
	if err := json.Unmarshal([]byte(get(cm, "data", "net-conf.json").(string)), &nc); err != nil {
		t.Fatal(err)
	}
	if want := (doc{"Network": "10.244.0.0/16", "Backend": doc{"Type": "host-gw"}}); !reflect.DeepEqual(jsonDoc(nc), want) {
		t.Errorf("net-conf.json %v, want %v", nc, want)
	}
	checkKubeconfig(t, get(cm, "data", "kubeconfig").(string), "https://10.5.0.2:6443")

	role := find(t, docs, FlannelFile, "ClusterRole", "plinth:flannel")
	wantRules := []any{
		doc{"apiGroups": []any{""}, "resources": []any{"nodes"}, "verbs": []any{"get", "list", "watch"}},
		doc{"apiGroups": []any{""}, "resources": []any{"nodes/status"}, "verbs": []any{"patch"}},
	}
	if !reflect.DeepEqual(role["rules"], wantRules) {
		t.Errorf("rules %v", role["rules"])
	}
	b := find(t, docs, FlannelFile, "ClusterRoleBinding", "plinth:flannel")
	if get(b, "roleRef", "name") != "plinth:flannel" || get(b, "subjects", 0, "name") != "flannel" || get(b, "subjects", 0, "namespace") != "kube-system" {
		t.Errorf("binding %v", b)
	}

	ds := find(t, docs, FlannelFile, "DaemonSet", "kube-flannel")
	pod := get(ds, "spec", "template", "spec").(doc)
	if pod["hostNetwork"] != true || pod["priorityClassName"] != "system-node-critical" || pod["serviceAccountName"] != "flannel" {
		t.Errorf("pod spec: %v", pod)
	}
	if got := pod["tolerations"]; !reflect.DeepEqual(got, []any{doc{"operator": "Exists"}}) {
		t.Errorf("tolerations %v", got)
	}
	ctr := podContainer(t, ds)
	cmd := strs(ctr["command"])
	if cmd[0] != "/usr/bin/flanneld" {
		t.Errorf("command %v", cmd)
	}
	for _, f := range []string{"--kube-subnet-mgr", "--ip-masq", "--kubeconfig-file=/etc/kube-flannel/kubeconfig",
		"--net-config-path=/etc/kube-flannel/net-conf.json", "--subnet-file=/run/flannel/subnet.env", "--iface=$(NODE_IP)"} {
		if !slices.Contains(cmd, f) {
			t.Errorf("command %v lacks %s", cmd, f)
		}
	}
	env := map[string]string{}
	for _, e := range ctr["env"].([]any) {
		env[get(e, "name").(string)] = get(e, "valueFrom", "fieldRef", "fieldPath").(string)
	}
	if want := map[string]string{"NODE_NAME": "spec.nodeName", "NODE_IP": "status.hostIP", "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}; !maps.Equal(env, want) {
		t.Errorf("env %v", env)
	}
	if caps := strs(get(ctr, "securityContext", "capabilities", "add")); !slices.Equal(caps, []string{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("capabilities %v", caps)
	}
	checkHostPaths(t, ds, map[string]string{"/run/flannel": "DirectoryOrCreate", "/run/xtables.lock": "FileOrCreate"})
	for _, m := range ctr["volumeMounts"].([]any) {
		if get(m, "mountPath") == "/etc/kube-flannel" && get(m, "readOnly") != true {
			t.Error("the flannel ConfigMap is mounted read-write")
		}
	}
}

// jsonDoc turns a JSON-decoded value's maps into docs, to compare them with DeepEqual.
func jsonDoc(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := doc{}
		for k, x := range t {
			out[k] = jsonDoc(x)
		}
		return out
	case []any:
		for i, x := range t {
			t[i] = jsonDoc(x)
		}
	}
	return v
}

func TestNetConf(t *testing.T) {
	for _, c := range []struct {
		subnets []string
		backend string
		want    string
	}{
		{[]string{"10.244.0.0/16"}, "", `{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}`},
		{[]string{"10.244.0.0/16", "fd00:244::/56"}, "host-gw", `{"Network":"10.244.0.0/16","IPv6Network":"fd00:244::/56","EnableIPv6":true,"Backend":{"Type":"host-gw"}}`},
		{[]string{"fd00:244::/56"}, "", `{"IPv6Network":"fd00:244::/56","EnableIPv4":false,"EnableIPv6":true,"Backend":{"Type":"host-gw"}}`},
		{[]string{"10.244.0.0/16"}, "vxlan", `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`},
	} {
		data, err := netConf(c.subnets, c.backend)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			t.Fatal(err)
		}
		if compact.String() != c.want {
			t.Errorf("%v: %s, want %s", c.subnets, compact.String(), c.want)
		}
	}
	if _, err := netConf([]string{"10.244.0.0"}, ""); err == nil {
		t.Error("a bad subnet was accepted")
	}
}

func TestCoreDNS(t *testing.T) {
	cfg := testConfig()
	cfg.Cluster.Network.DNSDomain = "example.internal"
	docs := manifests(t, cfg)
	corefile := get(find(t, docs, CoreDNSFile, "ConfigMap", "coredns"), "data", "Corefile").(string)
	for _, s := range []string{
		".:53 {", "kubernetes example.internal in-addr.arpa ip6.arpa {", "pods insecure", "fallthrough in-addr.arpa ip6.arpa",
		"prometheus :9153", "forward . /etc/resolv.conf", "cache 30", "loop", "reload", "loadbalance", "ready", "health",
	} {
		if !strings.Contains(corefile, s) {
			t.Errorf("Corefile lacks %q:\n%s", s, corefile)
		}
	}
	if strings.Count(corefile, "{") != strings.Count(corefile, "}") {
		t.Errorf("Corefile braces do not balance:\n%s", corefile)
	}

	d := find(t, docs, CoreDNSFile, "Deployment", "coredns")
	if get(d, "spec", "replicas") != 2 {
		t.Errorf("replicas %v", get(d, "spec", "replicas"))
	}
	pod := get(d, "spec", "template", "spec").(doc)
	if pod["dnsPolicy"] != "Default" || pod["serviceAccountName"] != "coredns" || pod["hostNetwork"] != nil {
		t.Errorf("pod spec %v", pod)
	}
	var cpToleration bool
	for _, tol := range pod["tolerations"].([]any) {
		if get(tol, "key") == "node-role.kubernetes.io/control-plane" && get(tol, "effect") == "NoSchedule" && get(tol, "operator") == "Exists" {
			cpToleration = true
		}
	}
	if !cpToleration {
		t.Errorf("no control-plane toleration: %v", pod["tolerations"])
	}
	ctr := podContainer(t, d)
	if got := strs(ctr["args"]); !slices.Equal(got, []string{"-conf", "/etc/coredns/Corefile"}) {
		t.Errorf("args %v", got)
	}
	if get(ctr, "readinessProbe", "httpGet", "path") != "/ready" || get(ctr, "readinessProbe", "httpGet", "port") != 8181 ||
		get(ctr, "livenessProbe", "httpGet", "path") != "/health" || get(ctr, "livenessProbe", "httpGet", "port") != 8080 {
		t.Errorf("probes %v %v", ctr["readinessProbe"], ctr["livenessProbe"])
	}
	ports := map[string]bool{}
	for _, p := range ctr["ports"].([]any) {
		ports[fmt.Sprintf("%v/%v", get(p, "protocol"), get(p, "containerPort"))] = true
	}
	for _, p := range []string{"UDP/53", "TCP/53", "TCP/9153"} {
		if !ports[p] {
			t.Errorf("no port %s: %v", p, ports)
		}
	}
	if get(ctr, "resources", "requests", "memory") == nil || get(ctr, "resources", "limits", "memory") == nil {
		t.Errorf("resources %v", ctr["resources"])
	}
}

func TestInlineManifests(t *testing.T) {
	cfg := testConfig()
	cfg.Cluster.InlineManifests = []config.InlineManifest{
		{Name: "namespace", Contents: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n"},
		{Name: "my app/v2", Contents: "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: apps\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: apps"},
	}
	files, err := Manifests(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(files["90-namespace.yaml"]); got != cfg.Cluster.InlineManifests[0].Contents {
		t.Errorf("90-namespace.yaml = %q", got)
	}
	got, ok := files["90-my-app-v2.yaml"]
	if !ok {
		t.Fatalf("files: %v", slices.Sorted(maps.Keys(files)))
	}
	if want := cfg.Cluster.InlineManifests[1].Contents + "\n"; string(got) != want {
		t.Errorf("90-my-app-v2.yaml = %q", got)
	}
	if ds := parseDocs(t, "90-my-app-v2.yaml", got); len(ds) != 2 {
		t.Errorf("%d documents", len(ds))
	}
	names := slices.Sorted(maps.Keys(files))
	if names[len(names)-1] != "90-namespace.yaml" || names[len(names)-2] != "90-my-app-v2.yaml" {
		t.Errorf("inline manifests do not come last: %v", names)
	}

	for _, bad := range []config.InlineManifest{
		{Name: "syntax", Contents: "apiVersion: v1\nkind: [\n"},
		{Name: "nokind", Contents: "apiVersion: v1\nmetadata:\n  name: x\n"},
		{Name: "empty", Contents: "---\n"},
		{Name: "///", Contents: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"},
	} {
		cfg.Cluster.InlineManifests = []config.InlineManifest{bad}
		if _, err := Manifests(cfg); err == nil {
			t.Errorf("inline manifest %q accepted", bad.Name)
		}
	}
	cfg.Cluster.InlineManifests = []config.InlineManifest{
		{Name: "a/b", Contents: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"},
		{Name: "a b", Contents: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: y\n"},
	}
	if _, err := Manifests(cfg); err == nil {
		t.Error("two inline manifests with one file name accepted")
	}
}

func TestEndpointRequired(t *testing.T) {
	for _, ep := range []string{"", "10.5.0.2:6443", "http://10.5.0.2:6443"} {
		cfg := testConfig()
		cfg.Cluster.ControlPlane.Endpoint = ep
		if _, err := Manifests(cfg); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}

// TestGeneratedConfigs renders the add-ons of the configurations `plinthctl gen config`
// writes.
func TestGeneratedConfigs(t *testing.T) {
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []*config.MachineConfig{cs.ControlPlane, cs.Worker} {
		docs := manifests(t, cfg)
		id, _, err := SplitToken(cfg.Cluster.Token)
		if err != nil {
			t.Fatal(err)
		}
		find(t, docs, BootstrapTokenFile, "Secret", "bootstrap-token-"+id)
		if len(docs) != 5 {
			t.Errorf("files: %v", slices.Sorted(maps.Keys(docs)))
		}
	}
}

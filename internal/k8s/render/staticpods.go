package render

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
)

// EtcdJoin says how this node's etcd member starts.
type EtcdJoin struct {
	// InitialCluster is etcd's --initial-cluster: "name=https://ip:2380,...", this member
	// included. Empty means a cluster of this node alone.
	InitialCluster string
	// State is "new" (bootstrap) or "existing" (join). Empty means "new".
	State string
}

// The binaries in the component images.
const (
	// KubeBinary is the multicall Kubernetes binary in the kube-* images.
	KubeBinary = "/usr/bin/kube"
	// EtcdBinary is etcd in the etcd image.
	EtcdBinary = "/usr/bin/etcd"
)

// Static pod manifest file names, in paths.ManifestsDir.
const (
	EtcdManifest              = "etcd.yaml"
	APIServerManifest         = "kube-apiserver.yaml"
	ControllerManagerManifest = "kube-controller-manager.yaml"
	SchedulerManifest         = "kube-scheduler.yaml"
)

// The Kubernetes objects the static pods are made of (see package objects).
type (
	pod         = objects.Pod
	objectMeta  = objects.ObjectMeta
	podSpec     = objects.PodSpec
	container   = objects.Container
	resources   = objects.Resources
	volumeMount = objects.VolumeMount
	volume      = objects.Volume
	hostPath    = objects.HostPathSource
	probe       = objects.Probe
	httpGet     = objects.HTTPGet
)

// hostMount is a host directory mounted at the same path in a container.
type hostMount struct {
	name, path, typ string
	readOnly        bool
}

// The host directories the components mount.
var (
	pkiMount  = hostMount{"pki", paths.PKIDir, "Directory", true}
	caMount   = hostMount{"ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true}
	etcdMount = hostMount{"etcd-data", paths.EtcdDataDir, "DirectoryOrCreate", false}
)

// localHost is where the components listen for local clients and probes.
const localHost = "127.0.0.1"

func pkiFile(name string) string { return paths.PKIFile(name) }

func httpsProbe(port int, path string) httpGet {
	return httpGet{Host: localHost, Port: port, Path: path, Scheme: "HTTPS"}
}

// PullPolicy is Never for the images bundled in the node image (their names are ours, no
// registry serves them: a missing one must fail, not send requests out), else IfNotPresent.
func PullPolicy(image string) string {
	if strings.HasPrefix(image, config.DefaultImageRepository+"/") {
		return "Never"
	}
	return "IfNotPresent"
}

// staticPod builds a control-plane pod of one container.
func staticPod(name, image string, command []string, cpu string, mounts []hostMount, startup, liveness, readiness *probe) pod {
	c := container{
		Name:            name,
		Image:           image,
		ImagePullPolicy: PullPolicy(image),
		Command:         command,
		Resources:       resources{Requests: map[string]string{"cpu": cpu}},
		StartupProbe:    startup,
		LivenessProbe:   liveness,
		ReadinessProbe:  readiness,
	}
	var vols []volume
	for _, m := range mounts {
		c.VolumeMounts = append(c.VolumeMounts, volumeMount{Name: m.name, MountPath: m.path, ReadOnly: m.readOnly})
		vols = append(vols, volume{Name: m.name, HostPath: &hostPath{Path: m.path, Type: m.typ}})
	}
	return pod{
		APIVersion: "v1",
		Kind:       "Pod",
		Metadata: objectMeta{
			Name:      name,
			Namespace: "kube-system",
			Labels:    map[string]string{"component": name, "tier": "control-plane"},
		},
		Spec: podSpec{
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			Containers:        []container{c},
			Volumes:           vols,
		},
	}
}

// probes returns a startup probe that gives a slow first start (a 2-core VM under TCG)
// about four minutes, and a liveness probe that restarts a wedged component after about
// 40 s.
//
// The startup probe begins 8 s after the start and then runs every second (kubeadm: 10 s
// and 10 s; kubelet waits a random part of the period before a probe's first run, so with
// 10 s a component that serves was seen started only 10-20 s after its start). The delay
// is for the mirror pods: kubelet creates a static pod's mirror pod in the API when it
// syncs the pod, and the API refuses it until the API server has created the
// system-node-critical PriorityClass, about 4 s after etcd's start here (a post-start hook,
// a second after it serves). A probe's success makes kubelet sync the pod; a success
// before that left the mirror pod to kubelet's one-minute resync (docs/performance.md).
func probes(get httpGet) (startup, liveness *probe) {
	return &probe{HTTPGet: get, InitialDelaySeconds: 8, PeriodSeconds: 1, TimeoutSeconds: 15, FailureThreshold: 240},
		&probe{HTTPGet: get, PeriodSeconds: 10, TimeoutSeconds: 15, FailureThreshold: 4}
}

// StaticPods returns the control-plane static pod manifests by file name (EtcdManifest,
// APIServerManifest, ControllerManagerManifest, SchedulerManifest), for kubelet to read
// from paths.ManifestsDir. Flags set by the configuration's extraArgs replace the defaults of
// the same name.
func StaticPods(cfg *config.MachineConfig, node Node, etcd EtcdJoin) (map[string][]byte, error) {
	ip, err := checkNode(node)
	if err != nil {
		return nil, err
	}
	cl := effective(cfg)
	if cl.Name == "" {
		return nil, fmt.Errorf("cluster name is empty")
	}
	for _, s := range append(append([]string{}, cl.Network.ServiceSubnets...), cl.Network.PodSubnets...) {
		if _, err := netip.ParsePrefix(s); err != nil {
			return nil, fmt.Errorf("subnet %q: %w", s, err)
		}
	}
	pods := map[string]pod{}

	e, err := etcdPod(cl, node.Name, ip, etcd)
	if err != nil {
		return nil, err
	}
	pods[EtcdManifest] = e
	pods[APIServerManifest] = apiServerPod(cl, ip)
	pods[ControllerManagerManifest] = controllerManagerPod(cl)
	pods[SchedulerManifest] = schedulerPod(cl)

	out := make(map[string][]byte, len(pods))
	for name, p := range pods {
		data, err := yamlx.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = data
	}
	return out, nil
}

func etcdPod(cl config.ClusterSpec, name string, ip netip.Addr, join EtcdJoin) (pod, error) {
	peerURL := ports.EtcdPeerURL(ip.String())
	clientURL := ports.EtcdClientURL(ip.String())
	initial := join.InitialCluster
	if initial == "" {
		initial = name + "=" + peerURL
	}
	state := join.State
	if state == "" {
		state = "new"
	}
	if state != "new" && state != "existing" {
		return pod{}, fmt.Errorf("etcd initial cluster state %q must be new or existing", state)
	}
	f := flags{
		"name":                        name,
		"data-dir":                    paths.EtcdDataDir,
		"listen-client-urls":          ports.EtcdClientURL(localHost) + "," + clientURL,
		"advertise-client-urls":       clientURL,
		"listen-peer-urls":            peerURL,
		"initial-advertise-peer-urls": peerURL,
		"initial-cluster":             initial,
		"initial-cluster-state":       state,
		"client-cert-auth":            "true",
		"peer-client-cert-auth":       "true",
		"trusted-ca-file":             pkiFile(paths.EtcdCACert),
		"peer-trusted-ca-file":        pkiFile(paths.EtcdCACert),
		"cert-file":                   pkiFile(paths.EtcdServerCert),
		"key-file":                    pkiFile(paths.EtcdServerKey),
		"peer-cert-file":              pkiFile(paths.EtcdPeerCert),
		"peer-key-file":               pkiFile(paths.EtcdPeerKey),
		"listen-metrics-urls":         "http://" + ports.HostPort(localHost, ports.EtcdMetrics),
	}.with(cl.Etcd.ExtraArgs)
	get := httpGet{Host: localHost, Port: ports.EtcdMetrics, Path: "/health?exclude=NOSPACE&serializable=true", Scheme: "HTTP"}
	startup, liveness := probes(get)
	return staticPod("etcd", cl.Etcd.Image, append([]string{EtcdBinary}, f.args()...), "100m",
		[]hostMount{etcdMount, pkiMount}, startup, liveness, nil), nil
}

func apiServerPod(cl config.ClusterSpec, ip netip.Addr) pod {
	f := flags{
		"advertise-address":                  ip.String(),
		"secure-port":                        fmt.Sprint(ports.KubeAPI),
		"etcd-servers":                       ports.EtcdClientURL(localHost),
		"etcd-cafile":                        pkiFile(paths.EtcdCACert),
		"etcd-certfile":                      pkiFile(paths.APIServerEtcdCert),
		"etcd-keyfile":                       pkiFile(paths.APIServerEtcdKey),
		"client-ca-file":                     pkiFile(paths.CACert),
		"tls-cert-file":                      pkiFile(paths.APIServerCert),
		"tls-private-key-file":               pkiFile(paths.APIServerKey),
		"kubelet-client-certificate":         pkiFile(paths.APIServerKubeletCert),
		"kubelet-client-key":                 pkiFile(paths.APIServerKubeletKey),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"service-cluster-ip-range":           strings.Join(cl.Network.ServiceSubnets, ","),
		"service-account-issuer":             "https://kubernetes.default.svc." + cl.Network.DNSDomain,
		"service-account-key-file":           pkiFile(paths.ServiceAccountPub),
		"service-account-signing-key-file":   pkiFile(paths.ServiceAccountKey),
		"authorization-mode":                 "Node,RBAC",
		"enable-admission-plugins":           "NodeRestriction",
		"enable-bootstrap-token-auth":        "true",
		"allow-privileged":                   "true",
		"encryption-provider-config":         pkiFile(paths.EncryptionConfig),
		"requestheader-client-ca-file":       pkiFile(paths.FrontProxyCACert),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"proxy-client-cert-file":             pkiFile(paths.FrontProxyClientCert),
		"proxy-client-key-file":              pkiFile(paths.FrontProxyClientKey),
	}.with(cl.APIServer.ExtraArgs)
	startup, liveness := probes(httpsProbe(ports.KubeAPI, "/livez"))
	readiness := &probe{HTTPGet: httpsProbe(ports.KubeAPI, "/readyz"), PeriodSeconds: 1, TimeoutSeconds: 15, FailureThreshold: 3}
	return staticPod("kube-apiserver", cl.APIServer.Image, append([]string{KubeBinary, "kube-apiserver"}, f.args()...), "250m",
		[]hostMount{pkiMount, caMount}, startup, liveness, readiness)
}

// controllerManagerPod is kube-controller-manager's static pod. Its client may send 50
// requests a second in bursts of 200 (upstream: 20 and 30): at start it gets each
// controller's service account and token from the API one after the other, and with
// upstream's limits that took 5.5 s before any controller ran, 0.5 s with these
// (docs/performance.md). The API server's priority and fairness still applies.
func controllerManagerPod(cl config.ClusterSpec) pod {
	kubeconfig := pkiFile(paths.ControllerManagerKubec)
	f := flags{
		"kubeconfig":                       kubeconfig,
		"authentication-kubeconfig":        kubeconfig,
		"authorization-kubeconfig":         kubeconfig,
		"bind-address":                     localHost,
		"client-ca-file":                   pkiFile(paths.CACert),
		"cluster-name":                     cl.Name,
		"cluster-signing-cert-file":        pkiFile(paths.CACert),
		"cluster-signing-key-file":         pkiFile(paths.CAKey),
		"controllers":                      "*,bootstrapsigner,tokencleaner",
		"leader-elect":                     "true",
		"root-ca-file":                     pkiFile(paths.CACert),
		"service-account-private-key-file": pkiFile(paths.ServiceAccountKey),
		"use-service-account-credentials":  "true",
		"kube-api-qps":                     "50",
		"kube-api-burst":                   "200",
		"allocate-node-cidrs":              "true",
		"cluster-cidr":                     strings.Join(cl.Network.PodSubnets, ","),
		"service-cluster-ip-range":         strings.Join(cl.Network.ServiceSubnets, ","),
		"requestheader-client-ca-file":     pkiFile(paths.FrontProxyCACert),
	}.with(cl.ControllerManager.ExtraArgs)
	startup, liveness := probes(httpsProbe(ports.ControllerManager, "/healthz"))
	return staticPod("kube-controller-manager", cl.ControllerManager.Image, append([]string{KubeBinary, "kube-controller-manager"}, f.args()...), "200m",
		[]hostMount{pkiMount, caMount}, startup, liveness, nil)
}

func schedulerPod(cl config.ClusterSpec) pod {
	kubeconfig := pkiFile(paths.SchedulerKubeconfig)
	f := flags{
		"kubeconfig":                kubeconfig,
		"authentication-kubeconfig": kubeconfig,
		"authorization-kubeconfig":  kubeconfig,
		"bind-address":              localHost,
		"leader-elect":              "true",
	}.with(cl.Scheduler.ExtraArgs)
	startup, liveness := probes(httpsProbe(ports.Scheduler, "/healthz"))
	return staticPod("kube-scheduler", cl.Scheduler.Image, append([]string{KubeBinary, "kube-scheduler"}, f.args()...), "100m",
		[]hostMount{pkiMount}, startup, liveness, nil)
}

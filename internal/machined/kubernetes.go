package machined

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/controllers"
	"github.com/plinthos/plinth/internal/etcdgw"
	"github.com/plinthos/plinth/internal/k8s/addons"
	"github.com/plinthos/plinth/internal/k8s/bundle"
	"github.com/plinthos/plinth/internal/k8s/kubeletbin"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/k8s/tlsboot"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/reaper"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/pkg/config"
)

// kubernetesControllers are the controllers of a Kubernetes node (machine.sysctls are the
// platform's: the metal one adds hardening defaults).
func (n *node) kubernetesControllers() []controller.Controller {
	layout := paths.Layout{Root: "/"}
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return []controller.Controller{
		&controllers.KubeletFiles{Layout: layout, CgroupV1: err != nil, RestrictOOMScoreAdj: !render.CanLowerOOMScoreAdj()},
		&controllers.EtcdState{Intent: n.etcd},
		&controllers.StaticPods{Layout: layout},
	}
}

// addKubernetesServices registers containerd, the image import and kubelet.
func (n *node) addKubernetesServices() error {
	svcs := []service.Service{
		{
			ID:        "containerd",
			Condition: func(ctx context.Context) error { return waitFiles(ctx, paths.ContainerdConfig) },
			Runner:    service.GoroutineRunner{Name: "containerd, run again when its configuration changes", Func: n.runContainerd},
			Health:    &service.HealthCheck{InitialDelay: 100 * time.Millisecond, StartPeriod: 200 * time.Millisecond, Period: 5 * time.Second, Timeout: 2 * time.Second, Check: unixCheck(render.ContainerdSocket)},
			Restart:   service.RestartForever,
		},
		{
			ID:        "images",
			DependsOn: []string{"containerd"},
			Runner:    service.GoroutineRunner{Name: "import the image bundle", Func: n.importBundle},
			Restart:   service.RestartUntilSuccess,
		},
		{
			ID:        "kubelet",
			DependsOn: []string{"containerd", "images"},
			Condition: n.staticPodsSettled,
			Runner:    service.GoroutineRunner{Name: "kubelet", Func: n.runKubelet},
			Restart:   service.RestartForever,
			Health: &service.HealthCheck{InitialDelay: 500 * time.Millisecond, StartPeriod: 500 * time.Millisecond, Period: 5 * time.Second, Timeout: 2 * time.Second,
				Check: tcpCheck(ports.HostPort("127.0.0.1", ports.KubeletHealthz))},
		},
		{
			ID:        "node-labels",
			DependsOn: []string{"kubelet"},
			Runner:    service.GoroutineRunner{Name: "keep the Node's labels those of machine.kubelet.nodeLabels", Func: n.runNodeLabels},
			Restart:   service.RestartForever,
		},
	}
	cfg, _ := n.cfg.Current()
	switch cfg.Cluster.Network.CNI.Name {
	case addons.CNIFlannel, "":
		svcs = append(svcs, service.Service{
			ID:      "cni",
			Runner:  service.GoroutineRunner{Name: "write the CNI configuration from flannel's subnet", Func: n.runCNIConfig},
			Restart: service.RestartForever,
		})
	case addons.CNIPlinth:
		svcs = append(svcs, service.Service{
			ID:      "cni",
			Runner:  service.GoroutineRunner{Name: "the built-in pod network: routes to the other nodes' pod subnets, masquerading, the CNI configuration", Func: n.runPodNetwork},
			Restart: service.RestartForever,
		})
	}
	if cfg.Machine.Type == config.TypeControlPlane {
		svcs = append(svcs, service.Service{
			ID: "etcd-join",
			Condition: func(ctx context.Context) error {
				return waitFiles(ctx, paths.PKIFile(paths.AdminKubeconfig), paths.PKIFile(paths.EtcdHealthcheckKey))
			},
			Runner:  service.GoroutineRunner{Name: "join the cluster's etcd as a learner, promote it to a voter, and join again after etcd's data was lost or recovered elsewhere", Func: n.runEtcdJoin},
			Restart: service.RestartForever,
		}, service.Service{
			ID:        "members",
			Condition: func(ctx context.Context) error { return waitFiles(ctx, paths.PKIFile(paths.AdminKubeconfig)) },
			Runner:    service.GoroutineRunner{Name: "keep the cluster members apid may forward to from Kubernetes' nodes", Func: n.runMembers},
			Restart:   service.RestartForever,
		}, service.Service{
			ID:        "addons",
			DependsOn: []string{"kubelet"},
			// Only the nodes that run etcd keep the cluster's manifests.
			Condition: func(ctx context.Context) error {
				for !n.runsEtcd() {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(time.Second):
					}
				}
				return nil
			},
			Runner:  service.GoroutineRunner{Name: "apply the cluster's manifests, approve kubelet serving certificates", Func: n.runAddons},
			Restart: service.RestartForever,
		}, service.Service{
			ID:      "etcd-snapshots",
			Runner:  service.GoroutineRunner{Name: "take etcd snapshots as cluster.etcd.snapshots says", Func: n.runEtcdSnapshots},
			Restart: service.RestartForever,
		})
	}
	for _, s := range svcs {
		if err := n.sup.Add(s); err != nil {
			return err
		}
	}
	return nil
}

// staticPodsSettled waits, on a control plane, until the node has decided whether etcd
// runs here and, when it must not (its data was lost, is being replaced, or the node has
// yet to join), until etcd's static pod is gone: kubelet must not start a manifest left
// from before, as etcd on an empty data directory would start a new, empty cluster.
func (n *node) staticPodsSettled(ctx context.Context) error {
	if cfg, _ := n.cfg.Current(); cfg == nil || cfg.Machine.Type != config.TypeControlPlane {
		return nil
	}
	manifest := filepath.Join(paths.ManifestsDir, render.EtcdManifest)
	for {
		if r, err := n.store.Get(resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID); err == nil {
			if r.(*resource.Typed[resources.EtcdStateSpec]).TypedSpec().Run {
				return nil
			}
			if _, err := os.Stat(manifest); errors.Is(err, fs.ErrNotExist) {
				return nil
			}
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// importBundle loads the image archives shipped in the node image into containerd's
// Kubernetes namespace, so that no registry is needed: once per volume. It records what it
// imported, and on a later boot imports nothing when that record names the same archives
// and containerd still lists every one of their images.
func (n *node) importBundle(ctx context.Context, logs io.Writer) error {
	archives, err := filepath.Glob(filepath.Join(paths.ImageBundleDir, "*.tar"))
	if err != nil {
		return err
	}
	b, err := bundle.Identify(archives)
	if err != nil {
		return err
	}
	record := n.path(bundleRecord)
	if out, err := ctr(ctx, "k8s.io", "images", "ls", "-q"); err != nil {
		fmt.Fprintf(logs, "list containerd's images: %v; importing the bundle\n", err)
	} else if done, err := bundle.Imported(record, b, strings.Fields(string(out))); err != nil {
		fmt.Fprintf(logs, "read the record of the last import: %v; importing the bundle\n", err)
	} else if done {
		fmt.Fprintf(logs, "the %d images of the bundle are in containerd's store already (%s); not imported again\n", len(b.Tags), b.Key)
		return nil
	}
	for _, a := range archives {
		cmd := reaper.Command(ctx, "/usr/bin/ctr", "--address", render.ContainerdSocket, "--namespace", "k8s.io", "images", "import", "--no-unpack=false", a) // environment: reaper.MinimalEnv
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("import %s: %w", a, err)
		}
	}
	if err := bundle.Record(record, b); err != nil {
		return fmt.Errorf("record the import: %w", err)
	}
	fmt.Fprintf(logs, "imported %d image archives (%d images, %s)\n", len(archives), len(b.Tags), b.Key)
	if err := collectContainerdGarbage(ctx, render.ContainerdDebugSocket); err != nil {
		// Only memory held longer: the images are in.
		fmt.Fprintf(logs, "%v\n", err)
	}
	return nil
}

// bundleRecord is the file, in the state directory, naming the image bundle last imported.
const bundleRecord = "images-imported"

// watchKubeletSpec watches the node's KubeletSpec.
func (n *node) watchKubeletSpec(ctx context.Context) (<-chan resource.Event, error) {
	return n.store.WatchID(ctx, resources.NamespaceK8s, resources.KubeletSpecType, resources.DefaultID)
}

// runKubelet runs kubelet with the arguments of the current KubeletSpec, and again with
// the new ones whenever what kubelet reads changes (a no-reboot apply of kubelet settings).
func (n *node) runKubelet(ctx context.Context, logs io.Writer) error {
	return follower[resources.KubeletSpecSpec]{
		name:  "kubelet",
		watch: n.watchKubeletSpec,
		key:   func(s resources.KubeletSpecSpec) string { return s.Generation },
		run: func(ctx context.Context, s resources.KubeletSpecSpec) error {
			if err := bootstrapKubelet(ctx, s.Args, n.nodeName(), logs); err != nil {
				return err
			}
			prog, err := kubeletFinder.Path(ctx, s.Image, logs)
			if err != nil {
				return err
			}
			return service.ProcessRunner{Path: prog, Args: s.Args, Env: n.serviceEnv(), GracePeriod: 10 * time.Second}.Run(ctx, logs)
		},
	}.Run(ctx, logs)
}

// bootstrapKubelet does the TLS bootstrap of a kubelet started with a bootstrap kubeconfig
// (a worker's) before it starts, unless its kubeconfig holds a valid certificate already;
// it retries, half a second apart at first and 2 s apart at most, until it succeeds or ctx
// ends (then kubelet is not started, and nil is returned, as a kubelet stopped by ctx
// returns).
func bootstrapKubelet(ctx context.Context, args []string, nodeName string, logs io.Writer) error {
	bootstrap, kubeconfig := flagValue(args, "bootstrap-kubeconfig"), flagValue(args, "kubeconfig")
	if bootstrap == "" || kubeconfig == "" {
		return nil
	}
	// Often at first: a worker starts before the control plane has applied the bootstrap
	// token, and the token is what lets it in; with waits doubling to 10 s it was let in
	// up to 4 s after the token existed (docs/performance.md).
	retry, last := backoff.New(500*time.Millisecond, 2*time.Second), ""
	for {
		// Bounded, so that a request that was lost (say, the API restarted) is made again.
		attempt, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := tlsboot.Bootstrap(attempt, bootstrap, kubeconfig, nodeName, time.Now, 500*time.Millisecond, logs)
		cancel()
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if msg := err.Error(); msg != last {
			fmt.Fprintf(logs, "kubelet's TLS bootstrap: %v; retrying\n", err)
			last = msg
		}
		t := time.NewTimer(retry.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// flagValue is the value of --name=VALUE in args, "" if absent.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// kubeletFinder finds the kubelet program of machine.kubelet.image: the node's own for the
// bundled image, else a copy taken out of the image in containerd's store.
var kubeletFinder = kubeletbin.Finder{
	Bundled: config.ImagesFor(config.DefaultKubernetesVersion).Kubelet,
	Own:     "/usr/bin/kubelet",
	Dir:     "/var/lib/plinth/kubelet",
	Store:   ctrStore{},
}

// ctrStore is containerd's image store of the Kubernetes namespace, through ctr.
type ctrStore struct{}

func (ctrStore) Digest(ctx context.Context, image string) (string, error) {
	out, err := ctr(ctx, "k8s.io", "images", "ls", "name=="+image)
	if err != nil {
		return "", err
	}
	return kubeletbin.ParseImageList(out, image)
}

func (ctrStore) Mount(ctx context.Context, image, dir string) (func(context.Context) error, error) {
	if _, err := ctr(ctx, "k8s.io", "images", "mount", image, dir); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		_, err := ctr(ctx, "k8s.io", "images", "unmount", "--rm", dir)
		return err
	}, nil
}

// runContainerd runs containerd, and again whenever its configuration changes; the
// containers it runs keep running meanwhile (their shims outlive it).
func (n *node) runContainerd(ctx context.Context, logs io.Writer) error {
	return follower[resources.KubeletSpecSpec]{
		name:  "containerd",
		watch: n.watchKubeletSpec,
		key:   func(s resources.KubeletSpecSpec) string { return s.ContainerdGeneration },
		run: func(ctx context.Context, _ resources.KubeletSpecSpec) error {
			return service.ProcessRunner{Path: "/usr/bin/containerd", Args: []string{"--config", paths.ContainerdConfig}, Env: n.serviceEnv(),
				GracePeriod: 10 * time.Second}.Run(ctx, logs)
		},
	}.Run(ctx, logs)
}

// serviceEnv is the environment of containerd and kubelet: the minimal one and
// machine.env of the active configuration.
func (n *node) serviceEnv() []string {
	cfg, _ := n.cfg.Active()
	return append(service.MinimalEnv(), render.ServiceEnv(cfg)...)
}

// Bootstrap starts etcd as a new cluster on this control-plane node, once.
func (n *node) Bootstrap(ctx context.Context) (string, error) {
	if !n.platform.Kubernetes() {
		return "", fmt.Errorf("%w: a node on the %s platform runs no etcd", machineapi.ErrCannotBootstrap, n.platform.Name())
	}
	cfg, _ := n.cfg.Current()
	if cfg.Machine.Type != config.TypeControlPlane {
		return "", fmt.Errorf("%w: this is a worker; bootstrap one control-plane node", machineapi.ErrCannotBootstrap)
	}
	if err := n.etcd.Bootstrap(ctx, clusterAbsent(cfg)); err != nil {
		return "", err
	}
	return "etcd is starting as a new cluster; the Kubernetes control plane follows", nil
}

// unixCheck is a health check that a unix socket accepts connections.
func unixCheck(path string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// etcdClient returns the machine API's client of the node's etcd member (a static pod on
// control planes): its JSON gateway on the local client port, with the healthcheck client
// certificate. The files are read per connection, so the client works once the PKI exists.
func etcdClient() machineapi.EtcdClient { return etcdClientAt("127.0.0.1") }

// etcdClientAt returns a client of the etcd member at host's client port, with the node's
// healthcheck client certificate.
func etcdClientAt(host string) *etcdgw.Client {
	return etcdgw.New(ports.EtcdClientURL(host),
		paths.PKIFile(paths.EtcdCACert), paths.PKIFile(paths.EtcdHealthcheckCert), paths.PKIFile(paths.EtcdHealthcheckKey))
}

// clusterAbsent returns the bootstrap's check that no cluster exists yet: a cluster whose
// API already answers was bootstrapped elsewhere, and a second etcd cluster would split it
// in two. It passes only when nothing is there for sure.
func clusterAbsent(cfg *config.MachineConfig) func(context.Context) error {
	return func(ctx context.Context) error {
		switch err := apiServerAnswers(ctx, cfg); {
		case err == nil:
			return fmt.Errorf("%w: the cluster's Kubernetes API at %s already answers; this node joins that cluster's etcd by itself", machineapi.ErrAlreadyBootstrapped, cfg.Cluster.ControlPlane.Endpoint)
		case !nothingListens(err):
			return fmt.Errorf("%w: the cluster's endpoint %s: %v", machineapi.ErrBootstrapUnsure, cfg.Cluster.ControlPlane.Endpoint, err)
		}
		return nil
	}
}

// apiServerAnswers reports (nil) whether a Kubernetes API server answers at the cluster's
// endpoint with a certificate of the cluster's CA, within two seconds. Any HTTP answer
// counts, an authorization refusal included.
func apiServerAnswers(ctx context.Context, cfg *config.MachineConfig) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.Cluster.CA.Crt) {
		return errors.New("cluster.ca.crt is not a PEM certificate")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Cluster.ControlPlane.Endpoint, "/")+"/version", nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// nothingListens reports whether err from apiServerAnswers means that no API server is
// there: the connection refused, closed without an answer (the load balancer with no
// ready upstream), no route to the host, or a name that does not resolve yet. A timeout
// or a TLS error says nothing for sure.
func nothingListens(err error) bool {
	var dnsErr *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		(errors.As(err, &dnsErr) && dnsErr.IsNotFound)
}

package cli_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

var outputFiles = []string{"controlplane.yaml", "plinthconfig", "worker.yaml"}

func TestGenConfigWritesFilesAndRefusesToOverwrite(t *testing.T) {
	isolate(t)
	dir := filepath.Join(t.TempDir(), "out", "nested")
	out := genConfig(t, dir)

	if got := dirNames(t, dir); !slices.Equal(got, outputFiles) {
		t.Fatalf("output directory holds %q, want %q", got, outputFiles)
	}
	for _, name := range outputFiles {
		path := filepath.Join(dir, name)
		checkMode(t, path, 0o600)
		if !strings.Contains(out, "created "+path) {
			t.Errorf("output does not report %s:\n%s", path, out)
		}
	}
	cp := loadMC(t, filepath.Join(dir, "controlplane.yaml"))
	w := loadMC(t, filepath.Join(dir, "worker.yaml"))
	if cp.Machine.Type != config.TypeControlPlane || w.Machine.Type != config.TypeWorker {
		t.Errorf("machine types: %q and %q", cp.Machine.Type, w.Machine.Type)
	}
	if cp.Cluster.Name != clusterName || cp.Cluster.ControlPlane.Endpoint != endpoint {
		t.Errorf("cluster name %q, endpoint %q", cp.Cluster.Name, cp.Cluster.ControlPlane.Endpoint)
	}
	cc, err := clientconfig.Load(filepath.Join(dir, "plinthconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if name, ctx, err := cc.Current(); err != nil || name != clusterName || !slices.Equal(ctx.Endpoints, []string{"10.5.0.2"}) {
		t.Errorf("plinthconfig current context: %q %+v %v", name, ctx, err)
	}

	before := map[string][]byte{}
	for _, name := range outputFiles {
		before[name] = readFile(t, filepath.Join(dir, name))
	}
	err = mustFail(t, []string{"refusing to overwrite", "--force"}, "gen", "config", clusterName, endpoint, "--output-dir", dir)
	for _, name := range outputFiles {
		if !strings.Contains(err.Error(), filepath.Join(dir, name)) {
			t.Errorf("refusal %q does not name %s", err, name)
		}
		if !bytes.Equal(readFile(t, filepath.Join(dir, name)), before[name]) {
			t.Errorf("%s changed although gen config refused to overwrite it", name)
		}
	}
	if got := dirNames(t, dir); !slices.Equal(got, outputFiles) {
		t.Errorf("after the refusal the directory holds %q (temporary files left?)", got)
	}

	// One existing file is enough to refuse, and nothing else is written.
	dir2 := t.TempDir()
	writeFile(t, filepath.Join(dir2, "worker.yaml"), []byte("mine\n"))
	mustFail(t, []string{"refusing to overwrite", "worker.yaml"}, "gen", "config", clusterName, endpoint, "-o", dir2)
	if got := dirNames(t, dir2); !slices.Equal(got, []string{"worker.yaml"}) {
		t.Errorf("after a refusal the directory holds %q, want only worker.yaml", got)
	}

	genConfig(t, dir, "--force")
	for _, name := range outputFiles {
		path := filepath.Join(dir, name)
		checkMode(t, path, 0o600)
		if bytes.Equal(readFile(t, path), before[name]) {
			t.Errorf("%s was not replaced with --force", name)
		}
	}
	if got := dirNames(t, dir); !slices.Equal(got, outputFiles) {
		t.Errorf("after --force the directory holds %q", got)
	}
}

func TestGenConfigOpenSSLVerifiesAdminCertificate(t *testing.T) {
	isolate(t)
	requireOpenSSL(t)
	dir := t.TempDir()
	genConfig(t, dir)

	cc, err := clientconfig.Decode(readFile(t, filepath.Join(dir, "plinthconfig")))
	if err != nil {
		t.Fatal(err)
	}
	_, ctx, err := cc.Current()
	if err != nil {
		t.Fatal(err)
	}
	pemDir := t.TempDir()
	writeFile(t, filepath.Join(pemDir, "ca.pem"), ctx.CA)
	writeFile(t, filepath.Join(pemDir, "crt.pem"), ctx.Crt)
	writeFile(t, filepath.Join(pemDir, "key.pem"), ctx.Key)

	out, err := openssl(t, pemDir, "verify", "-CAfile", "ca.pem", "crt.pem")
	if err != nil {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "crt.pem: OK") {
		t.Errorf("openssl verify printed %q, want OK", out)
	}
	out, err = openssl(t, pemDir, "verify", "-purpose", "sslclient", "-CAfile", "ca.pem", "crt.pem")
	if err != nil || !strings.Contains(out, "OK") {
		t.Errorf("openssl verify -purpose sslclient: %v\n%s", err, out)
	}
	out, err = openssl(t, pemDir, "x509", "-in", "crt.pem", "-noout", "-subject")
	if err != nil || !strings.Contains(out, "O = os:admin") {
		t.Errorf("openssl x509 -subject: %v\n%s", err, out)
	}
	// The key matches the certificate: both give the same public key.
	pubCrt, err1 := openssl(t, pemDir, "x509", "-in", "crt.pem", "-noout", "-pubkey")
	pubKey, err2 := openssl(t, pemDir, "pkey", "-in", "key.pem", "-pubout")
	if err1 != nil || err2 != nil || pubCrt != pubKey {
		t.Errorf("the client key does not match the certificate (%v, %v):\n%s\n%s", err1, err2, pubCrt, pubKey)
	}
	// The CA is the machine (node API) CA of the control-plane config.
	cp := loadMC(t, filepath.Join(dir, "controlplane.yaml"))
	if !bytes.Equal(ctx.CA, cp.Machine.CA.Crt) {
		t.Error("the plinthconfig CA is not the machine CA of controlplane.yaml")
	}

	block, _ := pem.Decode(ctx.Crt)
	if block == nil {
		t.Fatal("the client certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.Subject.Organization, []string{role.Admin}) {
		t.Errorf("Subject Organization = %q, want [os:admin]", cert.Subject.Organization)
	}
	days := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24
	if days < 364 || days > 366 {
		t.Errorf("the client certificate is valid %.2f days (%s to %s), want about a year", days, cert.NotBefore, cert.NotAfter)
	}
}

func TestGenConfigWithSecretsIsDeterministic(t *testing.T) {
	isolate(t)
	tmp := t.TempDir()
	bundlePath := filepath.Join(tmp, "secrets.yaml")
	out := mustRun(t, "gen", "secrets", "-o", bundlePath)
	if !strings.Contains(out, "created "+bundlePath) {
		t.Errorf("gen secrets output: %q", out)
	}
	checkMode(t, bundlePath, 0o600)
	bundle, err := secrets.LoadFile(bundlePath)
	if err != nil {
		t.Fatalf("the generated bundle does not load: %v", err)
	}
	bundleData := readFile(t, bundlePath)
	mustFail(t, []string{"refusing to overwrite"}, "gen", "secrets", "-o", bundlePath)
	if !bytes.Equal(readFile(t, bundlePath), bundleData) {
		t.Error("gen secrets changed the bundle although it refused")
	}

	d1, d2 := filepath.Join(tmp, "d1"), filepath.Join(tmp, "d2")
	genConfig(t, d1, "--with-secrets", bundlePath)
	genConfig(t, d2, "--with-secrets", bundlePath)

	type secretsOf struct {
		name string
		get  func(c *config.MachineConfig) string
	}
	fields := []secretsOf{
		{"machine.ca.crt", func(c *config.MachineConfig) string { return string(c.Machine.CA.Crt) }},
		{"machine.ca.key", func(c *config.MachineConfig) string { return string(c.Machine.CA.Key) }},
		{"cluster.ca.crt", func(c *config.MachineConfig) string { return string(c.Cluster.CA.Crt) }},
		{"cluster.ca.key", func(c *config.MachineConfig) string { return string(c.Cluster.CA.Key) }},
		{"cluster.aggregatorCA.crt", func(c *config.MachineConfig) string { return string(c.Cluster.AggregatorCA.Crt) }},
		{"cluster.aggregatorCA.key", func(c *config.MachineConfig) string { return string(c.Cluster.AggregatorCA.Key) }},
		{"cluster.etcd.ca.crt", func(c *config.MachineConfig) string { return string(c.Cluster.Etcd.CA.Crt) }},
		{"cluster.etcd.ca.key", func(c *config.MachineConfig) string { return string(c.Cluster.Etcd.CA.Key) }},
		{"machine.token", func(c *config.MachineConfig) string { return c.Machine.Token }},
		{"cluster.token", func(c *config.MachineConfig) string { return c.Cluster.Token }},
		{"cluster.id", func(c *config.MachineConfig) string { return c.Cluster.ID }},
		{"cluster.secret", func(c *config.MachineConfig) string { return c.Cluster.Secret }},
		{"cluster.serviceAccount.key", func(c *config.MachineConfig) string { return string(c.Cluster.ServiceAccount.Key) }},
		{"cluster.secretboxEncryptionSecret", func(c *config.MachineConfig) string { return c.Cluster.SecretboxEncryptionSecret }},
	}
	cp1, cp2 := loadMC(t, filepath.Join(d1, "controlplane.yaml")), loadMC(t, filepath.Join(d2, "controlplane.yaml"))
	for _, f := range fields {
		v1, v2 := f.get(cp1), f.get(cp2)
		if v1 == "" {
			t.Errorf("%s is empty", f.name)
		}
		if v1 != v2 {
			t.Errorf("%s differs between two configs generated from one bundle", f.name)
		}
	}
	// ... and they are the bundle's.
	want := map[string]string{
		"machine.ca.crt": string(bundle.CAs.OS.Crt), "cluster.ca.crt": string(bundle.CAs.Kubernetes.Crt),
		"cluster.aggregatorCA.crt": string(bundle.CAs.Aggregator.Crt), "cluster.etcd.ca.crt": string(bundle.CAs.Etcd.Crt),
		"machine.token": bundle.Tokens.Join, "cluster.token": bundle.Tokens.Bootstrap,
		"cluster.id": bundle.Cluster.ID, "cluster.secret": bundle.Cluster.Secret,
		"cluster.serviceAccount.key": string(bundle.ServiceAccountKey),
	}
	for _, f := range fields {
		if w, ok := want[f.name]; ok && f.get(cp1) != w {
			t.Errorf("%s is not the bundle's", f.name)
		}
	}
	w1, w2 := loadMC(t, filepath.Join(d1, "worker.yaml")), loadMC(t, filepath.Join(d2, "worker.yaml"))
	if !bytes.Equal(w1.Machine.CA.Crt, w2.Machine.CA.Crt) || w1.Machine.Token != w2.Machine.Token || w1.Cluster.ID != w2.Cluster.ID {
		t.Error("worker configs from one bundle differ")
	}
	// The whole control-plane config is identical (nothing else is random).
	if !bytes.Equal(readFile(t, filepath.Join(d1, "controlplane.yaml")), readFile(t, filepath.Join(d2, "controlplane.yaml"))) {
		t.Error("controlplane.yaml differs between two runs with one bundle")
	}
	// The client configs trust the same CA.
	c1, err1 := clientconfig.Load(filepath.Join(d1, "plinthconfig"))
	c2, err2 := clientconfig.Load(filepath.Join(d2, "plinthconfig"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !bytes.Equal(c1.Contexts[clusterName].CA, c2.Contexts[clusterName].CA) || !bytes.Equal(c1.Contexts[clusterName].CA, bundle.CAs.OS.Crt) {
		t.Error("the plinthconfig CAs differ from the bundle's node API CA")
	}

	// Without a bundle every run has new secrets.
	r1, r2 := filepath.Join(tmp, "r1"), filepath.Join(tmp, "r2")
	genConfig(t, r1)
	genConfig(t, r2)
	a, b := loadMC(t, filepath.Join(r1, "controlplane.yaml")), loadMC(t, filepath.Join(r2, "controlplane.yaml"))
	for _, f := range fields {
		if f.get(a) == f.get(b) {
			t.Errorf("%s is the same in two runs without --with-secrets", f.name)
		}
	}
	if bytes.Equal(a.Machine.CA.Crt, bundle.CAs.OS.Crt) {
		t.Error("a run without --with-secrets used the bundle")
	}
}

func TestGenConfigWithBadSecrets(t *testing.T) {
	isolate(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	mustFail(t, []string{"missing.yaml"}, "gen", "config", clusterName, endpoint, "-o", out, "--with-secrets", filepath.Join(tmp, "missing.yaml"))
	bad := filepath.Join(tmp, "bad.yaml")
	writeFile(t, bad, []byte("apiVersion: plinth.dev/v1alpha1\nkind: SecretsBundle\n"))
	mustFail(t, []string{"bad.yaml"}, "gen", "config", clusterName, endpoint, "-o", out, "--with-secrets", bad)
	if got := dirNames(t, out); len(got) != 0 {
		t.Errorf("files written despite bad secrets: %q", got)
	}
}

func TestWorkerConfigCarriesNoCAKeys(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir)
	cp := loadMC(t, filepath.Join(dir, "controlplane.yaml"))
	w := loadMC(t, filepath.Join(dir, "worker.yaml"))

	if len(w.Machine.CA.Key) != 0 {
		t.Error("worker machine.ca.key is set")
	}
	if len(w.Cluster.CA.Key) != 0 {
		t.Error("worker cluster.ca.key is set")
	}
	if len(w.Cluster.AggregatorCA.Crt)+len(w.Cluster.AggregatorCA.Key) != 0 {
		t.Error("worker has an aggregator CA")
	}
	if len(w.Cluster.Etcd.CA.Crt)+len(w.Cluster.Etcd.CA.Key) != 0 {
		t.Error("worker has an etcd CA")
	}
	if len(w.Cluster.ServiceAccount.Key) != 0 {
		t.Error("worker has the service account key")
	}
	if w.Cluster.SecretboxEncryptionSecret != "" {
		t.Error("worker has the secretbox encryption secret")
	}
	// The worker still trusts the same CAs and joins with the same tokens.
	if !bytes.Equal(w.Machine.CA.Crt, cp.Machine.CA.Crt) || !bytes.Equal(w.Cluster.CA.Crt, cp.Cluster.CA.Crt) {
		t.Error("worker CA certificates differ from the control plane's")
	}
	if w.Machine.Token != cp.Machine.Token || w.Cluster.Token != cp.Cluster.Token || w.Cluster.ID != cp.Cluster.ID || w.Cluster.Secret != cp.Cluster.Secret {
		t.Error("worker tokens or cluster identity differ from the control plane's")
	}
	// No control-plane secret appears anywhere in the worker file, in any encoding.
	raw := string(readFile(t, filepath.Join(dir, "worker.yaml")))
	cpRaw := string(readFile(t, filepath.Join(dir, "controlplane.yaml")))
	for name, secret := range map[string]string{
		"machine CA key": b64(cp.Machine.CA.Key), "cluster CA key": b64(cp.Cluster.CA.Key),
		"aggregator CA key": b64(cp.Cluster.AggregatorCA.Key), "etcd CA key": b64(cp.Cluster.Etcd.CA.Key),
		"service account key": b64(cp.Cluster.ServiceAccount.Key), "secretbox": cp.Cluster.SecretboxEncryptionSecret,
	} {
		if secret == "" {
			t.Fatalf("control plane lacks the %s", name)
		}
		if !strings.Contains(cpRaw, secret) {
			t.Fatalf("controlplane.yaml does not contain the %s as encoded here; the search below would prove nothing", name)
		}
		if strings.Contains(raw, secret) {
			t.Errorf("worker.yaml contains the %s", name)
		}
	}
	for _, key := range []string{"aggregatorCA", "serviceAccount", "secretboxEncryptionSecret", "key"} {
		if regexp.MustCompile(`(?m)^\s*` + key + `:`).MatchString(raw) {
			t.Errorf("worker.yaml has a %s: field", key)
		}
	}
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

func TestGenConfigFlags(t *testing.T) {
	isolate(t)
	gen := func(t *testing.T, extra ...string) (string, *config.MachineConfig, *config.MachineConfig) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "out")
		genConfig(t, dir, extra...)
		return dir, loadMC(t, filepath.Join(dir, "controlplane.yaml")), loadMC(t, filepath.Join(dir, "worker.yaml"))
	}
	// genFails runs gen config with the given name, endpoint and flags, expects an error
	// containing wants and checks that nothing was written.
	genFails := func(t *testing.T, name, ep string, wants []string, extra ...string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "out")
		mustFail(t, wants, append([]string{"gen", "config", name, ep, "-o", dir}, extra...)...)
		if got := dirNames(t, dir); len(got) != 0 {
			t.Errorf("files written despite the error: %q", got)
		}
	}

	t.Run("defaults", func(t *testing.T) {
		_, cp, w := gen(t)
		if want := "plinth.local/kube-apiserver:" + config.DefaultKubernetesVersion; cp.Cluster.APIServer.Image != want {
			t.Errorf("apiserver image %q, want %q", cp.Cluster.APIServer.Image, want)
		}
		if cp.Machine.Install.Disk != "/dev/sda" || w.Machine.Install.Disk != "/dev/sda" {
			t.Errorf("install disks %q, %q", cp.Machine.Install.Disk, w.Machine.Install.Disk)
		}
		if cp.Cluster.Network.DNSDomain != "cluster.local" {
			t.Errorf("dns domain %q", cp.Cluster.Network.DNSDomain)
		}
		if len(cp.Machine.CertSANs) != 0 || len(cp.Cluster.APIServer.CertSANs) != 0 {
			t.Errorf("SANs without --additional-sans: %q %q", cp.Machine.CertSANs, cp.Cluster.APIServer.CertSANs)
		}
	})

	t.Run("kubernetes version", func(t *testing.T) {
		for _, v := range []string{"1.37.1", "v1.37.1"} {
			_, cp, w := gen(t, "--kubernetes-version", v)
			for _, img := range []string{cp.Cluster.APIServer.Image, cp.Cluster.ControllerManager.Image, cp.Cluster.Scheduler.Image, cp.Cluster.Proxy.Image, cp.Machine.Kubelet.Image, w.Machine.Kubelet.Image} {
				if !strings.HasSuffix(img, ":v1.37.1") {
					t.Errorf("--kubernetes-version %s: image %q, want tag v1.37.1", v, img)
				}
			}
			if !strings.Contains(cp.Cluster.APIServer.Image, "kube-apiserver:v1.37.1") {
				t.Errorf("apiserver image %q", cp.Cluster.APIServer.Image)
			}
		}
		for _, bad := range []string{"1.37", "latest", "v1.37.x"} {
			genFails(t, clusterName, endpoint, []string{bad, "MAJOR.MINOR.PATCH"}, "--kubernetes-version", bad)
		}
	})

	t.Run("install disk", func(t *testing.T) {
		_, cp, w := gen(t, "--install-disk", "/dev/nvme0n1")
		if cp.Machine.Install.Disk != "/dev/nvme0n1" || w.Machine.Install.Disk != "/dev/nvme0n1" {
			t.Errorf("install disks %q, %q", cp.Machine.Install.Disk, w.Machine.Install.Disk)
		}
		genFails(t, clusterName, endpoint, []string{"machine.install.disk"}, "--install-disk", "sda")
	})

	t.Run("dns domain", func(t *testing.T) {
		_, cp, w := gen(t, "--dns-domain", "k8s.example.internal")
		if cp.Cluster.Network.DNSDomain != "k8s.example.internal" || w.Cluster.Network.DNSDomain != "k8s.example.internal" {
			t.Errorf("dns domains %q, %q", cp.Cluster.Network.DNSDomain, w.Cluster.Network.DNSDomain)
		}
		genFails(t, clusterName, endpoint, []string{"cluster.network.dnsDomain"}, "--dns-domain", "bad_domain!")
	})

	t.Run("additional SANs", func(t *testing.T) {
		want := []string{"lb.example.com", "10.0.0.9", "fd00::9"}
		_, cp, w := gen(t, "--additional-sans", "lb.example.com,10.0.0.9", "--additional-sans", "fd00::9")
		for name, c := range map[string]*config.MachineConfig{"controlplane": cp, "worker": w} {
			if !slices.Equal(c.Machine.CertSANs, want) {
				t.Errorf("%s machine.certSANs = %q, want %q", name, c.Machine.CertSANs, want)
			}
			if !slices.Equal(c.Cluster.APIServer.CertSANs, want) {
				t.Errorf("%s cluster.apiServer.certSANs = %q, want %q", name, c.Cluster.APIServer.CertSANs, want)
			}
		}
		genFails(t, clusterName, endpoint, []string{"certSANs"}, "--additional-sans", "not a name")
	})

	t.Run("output types", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		genConfig(t, dir, "--output-types", "worker")
		if got := dirNames(t, dir); !slices.Equal(got, []string{"worker.yaml"}) {
			t.Errorf("--output-types worker wrote %q", got)
		}
		loadMC(t, filepath.Join(dir, "worker.yaml"))

		dir = filepath.Join(t.TempDir(), "out")
		genConfig(t, dir, "--output-types", "controlplane,plinthconfig")
		if got := dirNames(t, dir); !slices.Equal(got, []string{"controlplane.yaml", "plinthconfig"}) {
			t.Errorf("--output-types controlplane,plinthconfig wrote %q", got)
		}

		// An existing file that is not to be written is no obstacle.
		dir = t.TempDir()
		writeFile(t, filepath.Join(dir, "controlplane.yaml"), []byte("mine\n"))
		genConfig(t, dir, "--output-types", "worker")
		if string(readFile(t, filepath.Join(dir, "controlplane.yaml"))) != "mine\n" {
			t.Error("controlplane.yaml was touched with --output-types worker")
		}

		genFails(t, clusterName, endpoint, []string{`unknown output type "talosconfig"`}, "--output-types", "worker,talosconfig")
	})

	t.Run("docs", func(t *testing.T) {
		commentRE := regexp.MustCompile(`(?m)^\s*#`)
		withDocs := filepath.Join(t.TempDir(), "a")
		genConfig(t, withDocs)
		without := filepath.Join(t.TempDir(), "b")
		genConfig(t, without, "--with-docs=false")
		for _, name := range []string{"controlplane.yaml", "worker.yaml"} {
			if !commentRE.Match(readFile(t, filepath.Join(withDocs, name))) {
				t.Errorf("%s has no comment by default", name)
			}
			data := readFile(t, filepath.Join(without, name))
			if commentRE.Match(data) || bytes.Contains(data, []byte("#")) {
				t.Errorf("%s has comments with --with-docs=false", name)
			}
			// Both decode to the same kind of config.
			loadMC(t, filepath.Join(without, name))
		}
	})

	t.Run("patches", func(t *testing.T) {
		patchDir := t.TempDir()
		fileP := filepath.Join(patchDir, "time.yaml")
		writeFile(t, fileP, []byte("machine:\n  time:\n    servers:\n      - time.example.com\n"))
		cpFileP := filepath.Join(patchDir, "cp.json")
		writeFile(t, cpFileP, []byte(`[{"op": "add", "path": "/cluster/proxy/mode", "value": "ipvs"}]`))

		_, cp, w := gen(t,
			"--config-patch", `{"machine": {"kubelet": {"nodeLabels": {"pool": "blue", "zone": "a"}}}}`,
			"--config-patch", "@"+fileP,
			"--config-patch", `[{"op": "add", "path": "/machine/install/wipe", "value": true}]`,
			"--config-patch-control-plane", `{"cluster": {"allowSchedulingOnControlPlanes": true}}`,
			"--config-patch-control-plane", "@"+cpFileP,
			"--config-patch-worker", `{"machine": {"kubelet": {"nodeLabels": {"pool": "green"}}}}`,
		)
		if cp.Machine.Kubelet.NodeLabels["pool"] != "blue" || cp.Machine.Kubelet.NodeLabels["zone"] != "a" {
			t.Errorf("controlplane node labels %v", cp.Machine.Kubelet.NodeLabels)
		}
		// Worker patches are applied after the common ones.
		if w.Machine.Kubelet.NodeLabels["pool"] != "green" || w.Machine.Kubelet.NodeLabels["zone"] != "a" {
			t.Errorf("worker node labels %v", w.Machine.Kubelet.NodeLabels)
		}
		for name, c := range map[string]*config.MachineConfig{"controlplane": cp, "worker": w} {
			if !slices.Equal(c.Machine.Time.Servers, []string{"time.example.com"}) {
				t.Errorf("%s: @file patch not applied: time servers %q", name, c.Machine.Time.Servers)
			}
			if !c.Machine.Install.Wipe {
				t.Errorf("%s: JSON patch not applied: wipe is false", name)
			}
		}
		if !cp.Cluster.AllowSchedulingOnControlPlanes || w.Cluster.AllowSchedulingOnControlPlanes {
			t.Errorf("control-plane patch: cp %v, worker %v", cp.Cluster.AllowSchedulingOnControlPlanes, w.Cluster.AllowSchedulingOnControlPlanes)
		}
		if cp.Cluster.Proxy.Mode != "ipvs" || w.Cluster.Proxy.Mode != "" {
			t.Errorf("control-plane @file JSON patch: cp proxy mode %q, worker %q", cp.Cluster.Proxy.Mode, w.Cluster.Proxy.Mode)
		}
		// Patching keeps the secrets and the worker's lack of them.
		if len(cp.Machine.CA.Key) == 0 || len(w.Machine.CA.Key) != 0 || len(w.Cluster.ServiceAccount.Key) != 0 {
			t.Error("patching changed which config holds the CA keys")
		}

		// The example of gen config --help works.
		_, _, w = gen(t, "--config-patch-worker", `{"machine": {"kubelet": {"nodeLabels": {"pool": "blue"}}}}`)
		if w.Machine.Kubelet.NodeLabels["pool"] != "blue" {
			t.Errorf("worker labels %v", w.Machine.Kubelet.NodeLabels)
		}
	})

	t.Run("bad patches write nothing", func(t *testing.T) {
		genFails(t, clusterName, endpoint, []string{"instal"}, "--config-patch", `{"machine": {"instal": {"disk": "/dev/sdb"}}}`)
		genFails(t, clusterName, endpoint, []string{"nodeLabel"}, "--config-patch-worker", `{"machine": {"kubelet": {"nodeLabel": {"a": "b"}}}}`)
		genFails(t, clusterName, endpoint, []string{"wipe"}, "--config-patch-control-plane", `{"machine": {"install": {"wipe": "yes"}}}`)
		genFails(t, clusterName, endpoint, []string{"missing.yaml"}, "--config-patch", "@"+filepath.Join(t.TempDir(), "missing.yaml"))
		genFails(t, clusterName, endpoint, nil, "--config-patch", `[{"op": "remove", "path": "/machine/nope"}]`)
		genFails(t, clusterName, endpoint, nil, "--config-patch", `just a string`)
		// A patch that decodes but makes the config invalid.
		genFails(t, clusterName, endpoint, []string{"machine.token"}, "--config-patch", `{"machine": {"token": "not-a-token"}}`)
	})

	t.Run("bad endpoint", func(t *testing.T) {
		for _, ep := range []string{"http://10.5.0.2:6443", "foo", "https://10.5.0.2:6443/api", "https://10.5.0.2:99999"} {
			genFails(t, clusterName, ep, []string{"cluster.controlPlane.endpoint"})
		}
	})

	t.Run("bad cluster name", func(t *testing.T) {
		for _, name := range []string{"Demo", "my_cluster", "demo-", "a.b", strings.Repeat("a", 64)} {
			genFails(t, name, endpoint, []string{"cluster.name"})
		}
	})

	t.Run("wrong number of arguments", func(t *testing.T) {
		genFails(t, clusterName, endpoint, []string{"accepts 2 arg"}, "extra")
	})
}

// TestGenConfigPlinthconfigOnlyValidatesArguments: the cluster name and endpoint are
// arguments of gen config, so a bad one must be refused whatever --output-types says.
func TestGenConfigPlinthconfigOnlyValidatesArguments(t *testing.T) {
	isolate(t)
	for _, tc := range []struct{ name, ep string }{
		{"Bad Name", endpoint},
		{clusterName, "http://10.5.0.2:6443"},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		out, err := run(t, "gen", "config", tc.name, tc.ep, "-o", dir, "--output-types", "plinthconfig")
		if err == nil {
			t.Errorf("gen config %q %q --output-types plinthconfig succeeded (%s); it must refuse bad arguments",
				tc.name, tc.ep, strings.TrimSpace(out))
		}
		if got := dirNames(t, dir); len(got) != 0 {
			t.Errorf("files written despite the error: %q", got)
		}
	}
}

// TestGenConfigAdminCertificateChain checks the plinthconfig client certificate with the
// Go verifier as well (the openssl test may be skipped).
func TestGenConfigAdminCertificateChain(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir, "--output-types", "plinthconfig")
	cc, err := clientconfig.Load(filepath.Join(dir, "plinthconfig"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := cc.Contexts[clusterName]
	if ctx == nil {
		t.Fatalf("no %s context: %v", clusterName, cc.Names())
	}
	ca, err := pki.ParseCertPEM(ctx.CA)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pki.LoadKeyPair(ctx.Crt, ctx.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Verify(ca, kp.Cert, pki.UsageClient, kp.Cert.NotBefore.Add(time.Hour)); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
	if info, err := os.Stat(filepath.Join(dir, "plinthconfig")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("plinthconfig mode: %v %v", info, err)
	}
}

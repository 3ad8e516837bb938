package certs

import (
	"encoding/base64"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/secrets"
)

func TestControlPlaneAndWorker(t *testing.T) {
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443", AdditionalSANs: []string{"api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	node := Node{Name: "cp-1", IPs: []net.IP{net.ParseIP("10.5.0.2")}}
	files, err := ControlPlane(cs.ControlPlane, node, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k8sCA, _ := pki.ParseCertPEM(cs.ControlPlane.Cluster.CA.Crt)
	etcdCA, _ := pki.ParseCertPEM(cs.ControlPlane.Cluster.Etcd.CA.Crt)
	api, err := pki.ParseCertPEM(files[paths.APIServerCert])
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Verify(k8sCA, api, pki.UsageServer, time.Time{}); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"kubernetes.default.svc.cluster.local", "api.example.com", "cp-1", "localhost"} {
		if !slices.Contains(api.DNSNames, name) {
			t.Errorf("apiserver certificate lacks %s: %v", name, api.DNSNames)
		}
	}
	for _, ip := range []string{"10.96.0.1", "10.5.0.2", "127.0.0.1"} {
		if !slices.ContainsFunc(api.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("apiserver certificate lacks %s: %v", ip, api.IPAddresses)
		}
	}
	for _, f := range []string{paths.EtcdServerCert, paths.EtcdPeerCert} {
		c, err := pki.ParseCertPEM(files[f])
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.Verify(etcdCA, c, pki.UsageServer|pki.UsageClient, time.Time{}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `yaml:"server"`
				CA     string `yaml:"certificate-authority-data"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
		Users []struct {
			User struct {
				Cert  string `yaml:"client-certificate-data"`
				Token string `yaml:"token"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(files[paths.AdminKubeconfig], &kc); err != nil {
		t.Fatal(err)
	}
	certPEM, err := base64.StdEncoding.DecodeString(kc.Users[0].User.Cert)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if kc.Clusters[0].Cluster.Server != LocalAPIServer || !slices.Contains(admin.Subject.Organization, "system:masters") {
		t.Errorf("admin kubeconfig: server %s, organization %v", kc.Clusters[0].Cluster.Server, admin.Subject.Organization)
	}
	if !strings.Contains(string(files[paths.ServiceAccountPub]), "PUBLIC KEY") || !strings.Contains(string(files[paths.EncryptionConfig]), "secretbox") {
		t.Error("service account public key or encryption config missing")
	}

	wfiles, err := Worker(cs.Worker)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(wfiles[paths.BootstrapKubeconfig], &kc); err != nil {
		t.Fatal(err)
	}
	if kc.Users[0].User.Token != cs.Worker.Cluster.Token || kc.Clusters[0].Cluster.Server != "https://10.5.0.2:6443" {
		t.Errorf("bootstrap kubeconfig: token %q server %q", kc.Users[0].User.Token, kc.Clusters[0].Cluster.Server)
	}
	if len(wfiles) != 2 {
		t.Errorf("a worker got %d files, want the CA certificate and the bootstrap kubeconfig", len(wfiles))
	}
}

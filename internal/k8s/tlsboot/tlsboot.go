// Package tlsboot does a worker kubelet's TLS bootstrap for it, before kubelet starts: with
// the bootstrap token it asks the API for a kubelet client certificate (the request that
// kubelet itself would make, approved and signed the same way by kube-controller-manager)
// and writes a kubeconfig holding it. kubelet then starts with credentials that work: it
// registers its Node at once, where its own bootstrap in the background would leave its
// clients, registration and watches backing off while it waits for the certificate.
package tlsboot

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/pkg/pki"
)

// The request, as kubelet makes it for an ECDSA key.
const (
	Signer       = "kubernetes.io/kube-apiserver-client-kubelet"
	generateName = "node-csr-"
	nodesGroup   = "system:nodes"
)

var usages = []string{"digital signature", "client auth"}

// Bootstrap gets a client certificate for the Node nodeName through the API with the
// bootstrap kubeconfig at bootstrapPath, and writes a kubeconfig holding it at
// kubeconfigPath (mode 0600, replaced atomically), unless that file already holds a
// certificate valid at now(), which kubelet would use as it is. It waits for the
// certificate, polling every poll, until ctx ends; logs is told what it did.
func Bootstrap(ctx context.Context, bootstrapPath, kubeconfigPath, nodeName string, now func() time.Time, poll time.Duration, logs io.Writer) error {
	if ok, err := stillValid(kubeconfigPath, now()); err != nil || ok {
		return err
	}
	boot, err := kubeconfig.Load(bootstrapPath)
	if err != nil {
		return fmt.Errorf("the bootstrap kubeconfig: %w", err)
	}
	cluster, _, err := boot.Selected()
	if err != nil {
		return fmt.Errorf("the bootstrap kubeconfig: %w", err)
	}
	kube, err := kubeclient.FromConfig(boot, "")
	if err != nil {
		return fmt.Errorf("the bootstrap kubeconfig: %w", err)
	}
	defer kube.Close()
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return err
	}
	user := "system:node:" + nodeName
	csr, err := pki.NewCSR(key, user, []string{nodesGroup}, nil, nil)
	if err != nil {
		return err
	}
	name, err := kube.CreateCSR(ctx, generateName, csr, Signer, usages)
	if err != nil {
		return fmt.Errorf("ask for kubelet's client certificate: %w", err)
	}
	fmt.Fprintf(logs, "asked for kubelet's client certificate as %s (certificate signing request %s)\n", user, name)
	certPEM, err := waitSigned(ctx, kube, name, poll)
	if err != nil {
		return err
	}
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("the certificate of %s: %w", name, err)
	}
	if err := pki.KeyMatchesCert(cert, key); err != nil {
		return fmt.Errorf("the certificate of %s: %w", name, err)
	}
	data, err := kubeconfig.New(boot.Clusters[0].Name, *cluster, user, kubeconfig.User{
		ClientCertificateData: certPEM, ClientKeyData: keyPEM,
	}).Marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(kubeconfigPath, data, 0o600); err != nil {
		return fmt.Errorf("write kubelet's kubeconfig: %w", err)
	}
	fmt.Fprintf(logs, "kubelet's client certificate is signed (valid until %s); kubelet starts with it\n", cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// waitSigned polls the request name until it holds a certificate, or was denied or failed.
func waitSigned(ctx context.Context, kube *kubeclient.Client, name string, poll time.Duration) ([]byte, error) {
	for {
		csr, err := kube.GetCSR(ctx, name)
		if err != nil && ctx.Err() != nil {
			// The wait ended during a read: say so, as when it ends between two reads.
			return nil, fmt.Errorf("wait for certificate signing request %s to be signed: %w", name, ctx.Err())
		}
		if err != nil {
			return nil, fmt.Errorf("read certificate signing request %s: %w", name, err)
		}
		for _, c := range csr.Status.Conditions {
			if (c.Type == "Denied" || c.Type == "Failed") && c.Status == "True" {
				return nil, fmt.Errorf("certificate signing request %s: %s: %s %s", name, c.Type, c.Reason, c.Message)
			}
		}
		if csr.Status.Certificate != "" {
			pem, err := base64.StdEncoding.DecodeString(csr.Status.Certificate)
			if err != nil {
				return nil, fmt.Errorf("the certificate of %s: %w", name, err)
			}
			return pem, nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for certificate signing request %s to be signed: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// stillValid says whether the kubeconfig at path holds a client certificate valid at now,
// as kubelet checks before it bootstraps. A missing, unreadable or broken one is not
// (kubelet bootstraps over it too); only a failure to look for it is an error.
func stillValid(path string, now time.Time) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("kubelet's kubeconfig: %w", err)
	}
	kc, err := kubeconfig.Load(path)
	if err != nil {
		return false, nil // kubelet bootstraps over a broken one too
	}
	_, u, err := kc.Selected()
	if err != nil {
		return false, nil
	}
	certPEM := []byte(u.ClientCertificateData)
	if len(certPEM) == 0 && u.ClientCertificate != "" {
		if certPEM, err = os.ReadFile(u.ClientCertificate); err != nil {
			return false, nil
		}
	}
	certs, err := pki.ParseCertsPEM(certPEM)
	if err != nil || len(certs) == 0 {
		return false, nil
	}
	return validAt(certs[0], now), nil
}

func validAt(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && now.Before(c.NotAfter)
}

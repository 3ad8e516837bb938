package addons

import (
	"fmt"
	"strings"

	"github.com/plinthos/plinth/pkg/config"
)

// Groups and roles of kubelet TLS bootstrap. The API server puts a bootstrap token's user
// (system:bootstrap:<token id>) in system:bootstrappers and in the token's extra groups;
// kubelets that hold a client certificate are in system:nodes. The cluster roles are the
// API server's own (bootstrapped with it).
const (
	// BootstrapGroup is the extra group of Plinth's bootstrap token.
	BootstrapGroup = "system:bootstrappers:plinth"
	// AllBootstrappersGroup holds the users of every bootstrap token.
	AllBootstrappersGroup = "system:bootstrappers"
	// NodesGroup holds the kubelets' client certificates.
	NodesGroup = "system:nodes"

	nodeBootstrapperRole = "system:node-bootstrapper"
	nodeClientRole       = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	selfNodeClientRole   = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
)

// bootstrapRBAC lets bootstrap token users ask for a kubelet client certificate and has
// kube-controller-manager's CSR approver approve those requests, and kubelets' requests to
// renew their own client certificates. Kubelet serving certificates
// (serverTLSBootstrap) are not approved here: the built-in approver never approves them.
func bootstrapRBAC() []object {
	bootstrappers := []subject{group(BootstrapGroup), group(AllBootstrappersGroup)}
	return []object{
		// Create and read CertificateSigningRequests.
		clusterRoleBinding("plinth:node-bootstrapper", nodeBootstrapperRole, bootstrappers...),
		// Approve a bootstrapping kubelet's first client certificate.
		clusterRoleBinding("plinth:node-autoapprove-bootstrap", nodeClientRole, bootstrappers...),
		// Approve a kubelet's renewal of its own client certificate.
		clusterRoleBinding("plinth:node-autoapprove-certificate-rotation", selfNodeClientRole, group(NodesGroup)),
	}
}

// podNetworkRBAC lets the nodes read every Node, which the built-in pod network (machined
// on each node, with kubelet's credentials on a worker) watches for the other nodes' pod
// subnets and addresses. The Node authorizer lets a node read only its own Node; what the
// others hold (addresses, pod subnets, labels, conditions) is what any CNI's daemon reads.
func podNetworkRBAC() []object {
	return []object{
		clusterRole("plinth:pod-network",
			policyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}}),
		clusterRoleBinding("plinth:pod-network", "plinth:pod-network", group(NodesGroup)),
	}
}

// SplitToken splits a bootstrap token "ID.SECRET" (six and sixteen characters of [a-z0-9]).
func SplitToken(token string) (id, secret string, err error) {
	if !config.TokenPattern.MatchString(token) {
		return "", "", fmt.Errorf("cluster.token is not a bootstrap token (six and sixteen characters of [a-z0-9] joined by a dot)")
	}
	id, secret, _ = strings.Cut(token, ".")
	return id, secret, nil
}

// bootstrapTokenSecret is the Secret that makes cluster.token a bootstrap token, with no
// expiration: workers join with it whenever they boot for the first time.
func bootstrapTokenSecret(token string) (object, error) {
	id, secret, err := SplitToken(token)
	if err != nil {
		return object{}, err
	}
	return object{
		APIVersion: "v1",
		Kind:       "Secret",
		Metadata:   objectMeta{Name: "bootstrap-token-" + id, Namespace: namespace},
		Type:       "bootstrap.kubernetes.io/token",
		StringData: map[string]string{
			"description":                    "Plinth's bootstrap token (cluster.token): kubelets join the cluster with it.",
			"token-id":                       id,
			"token-secret":                   secret,
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              BootstrapGroup,
		},
	}, nil
}

package addons

import (
	"fmt"

	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/pkg/config"
)

const (
	coreDNSName = "coredns"
	// DNSServiceName is the cluster DNS Service and the k8s-app label of its pods: the
	// names every cluster has used since kube-dns, which tools expect.
	DNSServiceName = "kube-dns"
	coreDNSConfDir = "/etc/coredns"
	coreDNSBinary  = "/usr/bin/coredns"

	coreDNSHealthPort  = 8080
	coreDNSReadyPort   = 8181
	coreDNSMetricsPort = 9153
)

// corefile is CoreDNS's configuration: the cluster domain and reverse zones answered from
// the API, everything else forwarded to the name servers of the node CoreDNS runs on.
//
//   - health answers /health (liveness) and, on shutdown, keeps answering for 5 s so that
//     clients move to the other replica first; ready answers /ready once every plugin is.
//   - kubernetes: "pods insecure" answers A records for pod IPs (a-b-c-d.NS.pod.DOMAIN)
//     without checking the pod exists, as kube-dns did; reverse lookups that are not
//     about a Service or pod fall through to forward.
//   - forward uses /etc/resolv.conf, the node's: the pods run with dnsPolicy Default.
//   - loop stops CoreDNS if the node's resolver points back at it; reload picks up ConfigMap
//     changes; loadbalance shuffles A/AAAA records.
func corefile(domain string) string {
	return fmt.Sprintf(`.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes %s in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :%d
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`, domain, coreDNSMetricsPort)
}

// coreDNS returns CoreDNS's ServiceAccount, ClusterRole and binding, ConfigMap, Deployment
// and the kube-dns Service at the cluster DNS address kubelet gives pods
// (render.ClusterDNSIP).
func coreDNS(cfg *config.MachineConfig, cl config.ClusterSpec) ([]object, error) {
	dnsIP, err := render.ClusterDNSIP(cfg)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"k8s-app": DNSServiceName}
	get := func(path string, port int) httpGet { return httpGet{Path: path, Port: port, Scheme: "HTTP"} }

	deployment := object{
		APIVersion: "apps/v1",
		Kind:       "Deployment",
		Metadata:   objectMeta{Name: coreDNSName, Namespace: namespace, Labels: labels},
		Spec: workloadSpec{
			Replicas: ptr(2),
			Selector: labelSelector{MatchLabels: labels},
			// One replica at a time, so that one always answers.
			Strategy: &updateStrategy{Type: "RollingUpdate", RollingUpdate: &rollingUpdate{MaxUnavailable: 1}},
			Template: podTemplate{
				Metadata: objectMeta{Labels: labels},
				Spec: podSpec{
					ServiceAccountName: coreDNSName,
					PriorityClassName:  "system-cluster-critical",
					// The node's resolv.conf, not the cluster DNS (CoreDNS itself).
					DNSPolicy:    "Default",
					NodeSelector: map[string]string{osLabel: "linux"},
					Tolerations: []toleration{
						// A single-node cluster has only a tainted control plane.
						{Key: render.ControlPlaneRoleLabel, Operator: "Exists", Effect: "NoSchedule"},
						{Key: "CriticalAddonsOnly", Operator: "Exists"},
					},
					// Spread the replicas over the nodes when there are several.
					Affinity: &affinity{PodAntiAffinity: podAntiAffinity{Preferred: []weightedAffinityTerm{{
						Weight: 100,
						Term:   affinityTerm{LabelSelector: labelSelector{MatchLabels: labels}, TopologyKey: "kubernetes.io/hostname"},
					}}}},
					Containers: []container{{
						Name:            coreDNSName,
						Image:           cl.CoreDNS.Image,
						ImagePullPolicy: render.PullPolicy(cl.CoreDNS.Image),
						Command:         []string{coreDNSBinary},
						Args:            []string{"-conf", coreDNSConfDir + "/Corefile"},
						Ports: []containerPort{
							{Name: "dns", ContainerPort: 53, Protocol: "UDP"},
							{Name: "dns-tcp", ContainerPort: 53, Protocol: "TCP"},
							{Name: "metrics", ContainerPort: coreDNSMetricsPort, Protocol: "TCP"},
						},
						Resources: resources{
							Requests: map[string]string{"cpu": "50m", "memory": "64Mi"},
							Limits:   map[string]string{"memory": "192Mi"},
						},
						// Root, but with only the capability to bind port 53.
						SecurityContext: &securityContext{
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   true,
							Capabilities:             &capabilities{Add: []string{"NET_BIND_SERVICE"}, Drop: []string{"ALL"}},
						},
						LivenessProbe: &probe{HTTPGet: get("/health", coreDNSHealthPort), InitialDelaySeconds: 60, PeriodSeconds: 10, TimeoutSeconds: 5, SuccessThreshold: 1, FailureThreshold: 5},
						// Every 2 s (unready after 10 s of failures): kubelet waits a random part of
						// the period before the first probe, and a new cluster waits for CoreDNS.
						ReadinessProbe: &probe{HTTPGet: get("/ready", coreDNSReadyPort), PeriodSeconds: 2, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: 5},
						VolumeMounts:   []volumeMount{{Name: "config", MountPath: coreDNSConfDir, ReadOnly: true}},
					}},
					Volumes: []volume{{Name: "config", ConfigMap: &configMapSource{
						Name: coreDNSName, Items: []keyToPath{{Key: "Corefile", Path: "Corefile"}},
					}}},
				},
			},
		},
	}
	service := object{
		APIVersion: "v1",
		Kind:       "Service",
		// kubernetes.io/cluster-service makes kubectl cluster-info list it.
		Metadata: objectMeta{Name: DNSServiceName, Namespace: namespace, Labels: map[string]string{
			"k8s-app": DNSServiceName, "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true",
		}},
		Spec: serviceSpec{
			Selector:  labels,
			ClusterIP: dnsIP,
			Ports: []servicePort{
				{Name: "dns", Port: 53, TargetPort: 53, Protocol: "UDP"},
				{Name: "dns-tcp", Port: 53, TargetPort: 53, Protocol: "TCP"},
				{Name: "metrics", Port: coreDNSMetricsPort, TargetPort: coreDNSMetricsPort, Protocol: "TCP"},
			},
		},
	}
	return []object{
		serviceAccount(coreDNSName),
		clusterRole("plinth:coredns",
			policyRule{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			policyRule{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		),
		clusterRoleBinding("plinth:coredns", "plinth:coredns", serviceAccountSubject(coreDNSName)),
		configMap(coreDNSName, map[string]string{"Corefile": corefile(cl.Network.DNSDomain)}),
		deployment,
		service,
	}, nil
}

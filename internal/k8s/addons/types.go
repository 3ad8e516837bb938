package addons

import "github.com/plinthos/plinth/internal/k8s/objects"

// The Kubernetes objects the add-on manifests are made of (see package objects).
type (
	object               = objects.Object
	objectMeta           = objects.ObjectMeta
	policyRule           = objects.PolicyRule
	roleRef              = objects.RoleRef
	subject              = objects.Subject
	workloadSpec         = objects.WorkloadSpec
	labelSelector        = objects.LabelSelector
	updateStrategy       = objects.UpdateStrategy
	rollingUpdate        = objects.RollingUpdate
	podTemplate          = objects.PodTemplate
	podSpec              = objects.PodSpec
	toleration           = objects.Toleration
	affinity             = objects.Affinity
	podAntiAffinity      = objects.PodAntiAffinity
	weightedAffinityTerm = objects.WeightedAffinityTerm
	affinityTerm         = objects.AffinityTerm
	container            = objects.Container
	envVar               = objects.EnvVar
	envSource            = objects.EnvSource
	fieldRef             = objects.FieldRef
	containerPort        = objects.ContainerPort
	resources            = objects.Resources
	securityContext      = objects.SecurityContext
	capabilities         = objects.Capabilities
	probe                = objects.Probe
	httpGet              = objects.HTTPGet
	volumeMount          = objects.VolumeMount
	volume               = objects.Volume
	hostPathSource       = objects.HostPathSource
	configMapSource      = objects.ConfigMapSource
	keyToPath            = objects.KeyToPath
	serviceSpec          = objects.ServiceSpec
	servicePort          = objects.ServicePort
)

// Helpers shared by the add-ons.

const (
	namespace      = "kube-system"
	rbacGroup      = "rbac.authorization.k8s.io"
	rbacAPIVersion = rbacGroup + "/v1"
	// osLabel selects Linux nodes: every Plinth node is one, but a cluster may have nodes
	// of another OS joined by hand, where these images cannot run.
	osLabel = "kubernetes.io/os"
)

// tolerateAll tolerates every taint: the node-level add-ons (kube-proxy, flannel) must run
// on every node, including not-ready, cordoned, control-plane and tainted ones, or the node
// never gets a pod network and never becomes ready.
var tolerateAll = []toleration{{Operator: "Exists"}}

func ptr[T any](v T) *T { return &v }

func serviceAccount(name string) object {
	return object{APIVersion: "v1", Kind: "ServiceAccount", Metadata: objectMeta{Name: name, Namespace: namespace}}
}

func clusterRole(name string, rules ...policyRule) object {
	return object{APIVersion: rbacAPIVersion, Kind: "ClusterRole", Metadata: objectMeta{Name: name}, Rules: rules}
}

func clusterRoleBinding(name, role string, subjects ...subject) object {
	return object{
		APIVersion: rbacAPIVersion,
		Kind:       "ClusterRoleBinding",
		Metadata:   objectMeta{Name: name},
		RoleRef:    &roleRef{APIGroup: rbacGroup, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

func group(name string) subject { return subject{Kind: "Group", APIGroup: rbacGroup, Name: name} }

func serviceAccountSubject(name string) subject {
	return subject{Kind: "ServiceAccount", Name: name, Namespace: namespace}
}

func configMap(name string, data map[string]string) object {
	return object{APIVersion: "v1", Kind: "ConfigMap", Metadata: objectMeta{Name: name, Namespace: namespace}, Data: data}
}

// fieldEnv is an environment variable set from the downward API.
func fieldEnv(name, path string) envVar {
	return envVar{Name: name, ValueFrom: &envSource{FieldRef: fieldRef{FieldPath: path}}}
}

// hostVolume mounts a host path at the same place in the container.
func hostVolume(name, path, typ string, readOnly bool) (volume, volumeMount) {
	return volume{Name: name, HostPath: &hostPathSource{Path: path, Type: typ}},
		volumeMount{Name: name, MountPath: path, ReadOnly: readOnly}
}

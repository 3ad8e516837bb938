package addons

// The subset of the Kubernetes API the add-on manifests use, in the order kubectl shows
// the fields. Optional fields are omitted when empty so that the documents hold only what
// is set here.
type (
	// object is any top-level document: its kind decides which of the fields are set.
	object struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   objectMeta        `yaml:"metadata"`
		Type       string            `yaml:"type,omitempty"`       // Secret
		StringData map[string]string `yaml:"stringData,omitempty"` // Secret
		Data       map[string]string `yaml:"data,omitempty"`       // ConfigMap
		Rules      []policyRule      `yaml:"rules,omitempty"`      // ClusterRole
		RoleRef    *roleRef          `yaml:"roleRef,omitempty"`    // ClusterRoleBinding
		Subjects   []subject         `yaml:"subjects,omitempty"`   // ClusterRoleBinding
		Spec       any               `yaml:"spec,omitempty"`       // DaemonSet, Deployment, Service
	}
	objectMeta struct {
		Name        string            `yaml:"name,omitempty"`
		Namespace   string            `yaml:"namespace,omitempty"`
		Labels      map[string]string `yaml:"labels,omitempty"`
		Annotations map[string]string `yaml:"annotations,omitempty"`
	}

	policyRule struct {
		APIGroups []string `yaml:"apiGroups"`
		Resources []string `yaml:"resources"`
		Verbs     []string `yaml:"verbs"`
	}
	roleRef struct {
		APIGroup string `yaml:"apiGroup"`
		Kind     string `yaml:"kind"`
		Name     string `yaml:"name"`
	}
	subject struct {
		Kind      string `yaml:"kind"`
		APIGroup  string `yaml:"apiGroup,omitempty"`
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace,omitempty"`
	}

	// workloadSpec is the spec of a DaemonSet (no replicas) or a Deployment.
	workloadSpec struct {
		Replicas       *int            `yaml:"replicas,omitempty"`
		Selector       labelSelector   `yaml:"selector"`
		UpdateStrategy *updateStrategy `yaml:"updateStrategy,omitempty"` // DaemonSet
		Strategy       *updateStrategy `yaml:"strategy,omitempty"`       // Deployment
		Template       podTemplate     `yaml:"template"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	updateStrategy struct {
		Type          string         `yaml:"type"`
		RollingUpdate *rollingUpdate `yaml:"rollingUpdate,omitempty"`
	}
	rollingUpdate struct {
		MaxUnavailable int `yaml:"maxUnavailable"`
	}
	podTemplate struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     podSpec    `yaml:"spec"`
	}
	podSpec struct {
		ServiceAccountName            string            `yaml:"serviceAccountName,omitempty"`
		PriorityClassName             string            `yaml:"priorityClassName,omitempty"`
		HostNetwork                   bool              `yaml:"hostNetwork,omitempty"`
		DNSPolicy                     string            `yaml:"dnsPolicy,omitempty"`
		NodeSelector                  map[string]string `yaml:"nodeSelector,omitempty"`
		Tolerations                   []toleration      `yaml:"tolerations,omitempty"`
		Affinity                      *affinity         `yaml:"affinity,omitempty"`
		TerminationGracePeriodSeconds *int              `yaml:"terminationGracePeriodSeconds,omitempty"`
		Containers                    []container       `yaml:"containers"`
		Volumes                       []volume          `yaml:"volumes,omitempty"`
	}
	toleration struct {
		Key      string `yaml:"key,omitempty"`
		Operator string `yaml:"operator"`
		Effect   string `yaml:"effect,omitempty"`
	}
	affinity struct {
		PodAntiAffinity podAntiAffinity `yaml:"podAntiAffinity"`
	}
	podAntiAffinity struct {
		Preferred []weightedAffinityTerm `yaml:"preferredDuringSchedulingIgnoredDuringExecution"`
	}
	weightedAffinityTerm struct {
		Weight int          `yaml:"weight"`
		Term   affinityTerm `yaml:"podAffinityTerm"`
	}
	affinityTerm struct {
		LabelSelector labelSelector `yaml:"labelSelector"`
		TopologyKey   string        `yaml:"topologyKey"`
	}

	container struct {
		Name            string           `yaml:"name"`
		Image           string           `yaml:"image"`
		ImagePullPolicy string           `yaml:"imagePullPolicy"`
		Command         []string         `yaml:"command,omitempty"`
		Args            []string         `yaml:"args,omitempty"`
		Env             []envVar         `yaml:"env,omitempty"`
		Ports           []containerPort  `yaml:"ports,omitempty"`
		Resources       resources        `yaml:"resources"`
		SecurityContext *securityContext `yaml:"securityContext,omitempty"`
		LivenessProbe   *probe           `yaml:"livenessProbe,omitempty"`
		ReadinessProbe  *probe           `yaml:"readinessProbe,omitempty"`
		VolumeMounts    []volumeMount    `yaml:"volumeMounts,omitempty"`
	}
	envVar struct {
		Name      string     `yaml:"name"`
		Value     string     `yaml:"value,omitempty"`
		ValueFrom *envSource `yaml:"valueFrom,omitempty"`
	}
	envSource struct {
		FieldRef fieldRef `yaml:"fieldRef"`
	}
	fieldRef struct {
		FieldPath string `yaml:"fieldPath"`
	}
	containerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	}
	resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits,omitempty"`
	}
	securityContext struct {
		Privileged               *bool         `yaml:"privileged,omitempty"`
		AllowPrivilegeEscalation *bool         `yaml:"allowPrivilegeEscalation,omitempty"`
		ReadOnlyRootFilesystem   bool          `yaml:"readOnlyRootFilesystem,omitempty"`
		Capabilities             *capabilities `yaml:"capabilities,omitempty"`
	}
	capabilities struct {
		Add  []string `yaml:"add,omitempty"`
		Drop []string `yaml:"drop,omitempty"`
	}
	probe struct {
		HTTPGet             httpGet `yaml:"httpGet"`
		InitialDelaySeconds int     `yaml:"initialDelaySeconds,omitempty"`
		PeriodSeconds       int     `yaml:"periodSeconds"`
		TimeoutSeconds      int     `yaml:"timeoutSeconds"`
		SuccessThreshold    int     `yaml:"successThreshold"`
		FailureThreshold    int     `yaml:"failureThreshold"`
	}
	httpGet struct {
		Path   string `yaml:"path"`
		Port   int    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly,omitempty"`
	}
	volume struct {
		Name      string           `yaml:"name"`
		HostPath  *hostPathSource  `yaml:"hostPath,omitempty"`
		ConfigMap *configMapSource `yaml:"configMap,omitempty"`
	}
	hostPathSource struct {
		Path string `yaml:"path"`
		// Type is empty for "no check": the path is mounted if it exists, and created by
		// the container runtime if not.
		Type string `yaml:"type,omitempty"`
	}
	configMapSource struct {
		Name  string      `yaml:"name"`
		Items []keyToPath `yaml:"items,omitempty"`
	}
	keyToPath struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	}

	serviceSpec struct {
		Selector  map[string]string `yaml:"selector"`
		ClusterIP string            `yaml:"clusterIP"`
		Ports     []servicePort     `yaml:"ports"`
	}
	servicePort struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort int    `yaml:"targetPort"`
		Protocol   string `yaml:"protocol"`
	}
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

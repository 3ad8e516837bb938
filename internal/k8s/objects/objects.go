// Package objects is the subset of the Kubernetes API that Plinth writes itself: the
// control plane's static pods and the cluster's add-on manifests; and, read from the API
// as JSON, the few fields of Nodes, CertificateSigningRequests and EndpointSlices it uses. The fields are in the
// order kubectl shows them; optional ones are left out when empty, so that a document
// holds only what is set. It avoids a dependency on k8s.io/api for a few dozen fields.
package objects

type (
	// Object is any top-level document: its kind decides which of the fields are set.
	Object struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   ObjectMeta        `yaml:"metadata"`
		Type       string            `yaml:"type,omitempty"`       // Secret
		StringData map[string]string `yaml:"stringData,omitempty"` // Secret
		Data       map[string]string `yaml:"data,omitempty"`       // ConfigMap
		Rules      []PolicyRule      `yaml:"rules,omitempty"`      // ClusterRole
		RoleRef    *RoleRef          `yaml:"roleRef,omitempty"`    // ClusterRoleBinding
		Subjects   []Subject         `yaml:"subjects,omitempty"`   // ClusterRoleBinding
		Spec       any               `yaml:"spec,omitempty"`       // DaemonSet, Deployment, Service, Pod
	}
	// Pod is a pod document, such as a static pod's manifest.
	Pod struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   ObjectMeta `yaml:"metadata"`
		Spec       PodSpec    `yaml:"spec"`
	}
	ObjectMeta struct {
		Name        string            `yaml:"name,omitempty" json:"name,omitempty"`
		Namespace   string            `yaml:"namespace,omitempty" json:"namespace,omitempty"`
		Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
		Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
		// CreationTimestamp is set by the API (RFC 3339); never rendered into a manifest.
		CreationTimestamp string `yaml:"-" json:"creationTimestamp,omitempty"`
	}

	PolicyRule struct {
		APIGroups []string `yaml:"apiGroups"`
		Resources []string `yaml:"resources"`
		Verbs     []string `yaml:"verbs"`
	}
	RoleRef struct {
		APIGroup string `yaml:"apiGroup"`
		Kind     string `yaml:"kind"`
		Name     string `yaml:"name"`
	}
	Subject struct {
		Kind      string `yaml:"kind"`
		APIGroup  string `yaml:"apiGroup,omitempty"`
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace,omitempty"`
	}

	// WorkloadSpec is the spec of a DaemonSet (no replicas) or a Deployment.
	WorkloadSpec struct {
		Replicas       *int            `yaml:"replicas,omitempty"`
		Selector       LabelSelector   `yaml:"selector"`
		UpdateStrategy *UpdateStrategy `yaml:"updateStrategy,omitempty"` // DaemonSet
		Strategy       *UpdateStrategy `yaml:"strategy,omitempty"`       // Deployment
		Template       PodTemplate     `yaml:"template"`
	}
	LabelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	UpdateStrategy struct {
		Type          string         `yaml:"type"`
		RollingUpdate *RollingUpdate `yaml:"rollingUpdate,omitempty"`
	}
	RollingUpdate struct {
		MaxUnavailable int `yaml:"maxUnavailable"`
	}
	PodTemplate struct {
		Metadata ObjectMeta `yaml:"metadata"`
		Spec     PodSpec    `yaml:"spec"`
	}
	PodSpec struct {
		ServiceAccountName            string            `yaml:"serviceAccountName,omitempty"`
		PriorityClassName             string            `yaml:"priorityClassName,omitempty"`
		HostNetwork                   bool              `yaml:"hostNetwork,omitempty"`
		DNSPolicy                     string            `yaml:"dnsPolicy,omitempty"`
		NodeSelector                  map[string]string `yaml:"nodeSelector,omitempty"`
		Tolerations                   []Toleration      `yaml:"tolerations,omitempty"`
		Affinity                      *Affinity         `yaml:"affinity,omitempty"`
		TerminationGracePeriodSeconds *int              `yaml:"terminationGracePeriodSeconds,omitempty"`
		Containers                    []Container       `yaml:"containers"`
		Volumes                       []Volume          `yaml:"volumes,omitempty"`
	}
	Toleration struct {
		Key      string `yaml:"key,omitempty"`
		Operator string `yaml:"operator"`
		Effect   string `yaml:"effect,omitempty"`
	}
	Affinity struct {
		PodAntiAffinity PodAntiAffinity `yaml:"podAntiAffinity"`
	}
	PodAntiAffinity struct {
		Preferred []WeightedAffinityTerm `yaml:"preferredDuringSchedulingIgnoredDuringExecution"`
	}
	WeightedAffinityTerm struct {
		Weight int          `yaml:"weight"`
		Term   AffinityTerm `yaml:"podAffinityTerm"`
	}
	AffinityTerm struct {
		LabelSelector LabelSelector `yaml:"labelSelector"`
		TopologyKey   string        `yaml:"topologyKey"`
	}

	Container struct {
		Name            string           `yaml:"name"`
		Image           string           `yaml:"image"`
		ImagePullPolicy string           `yaml:"imagePullPolicy"`
		Command         []string         `yaml:"command,omitempty"`
		Args            []string         `yaml:"args,omitempty"`
		Env             []EnvVar         `yaml:"env,omitempty"`
		Ports           []ContainerPort  `yaml:"ports,omitempty"`
		Resources       Resources        `yaml:"resources"`
		SecurityContext *SecurityContext `yaml:"securityContext,omitempty"`
		StartupProbe    *Probe           `yaml:"startupProbe,omitempty"`
		LivenessProbe   *Probe           `yaml:"livenessProbe,omitempty"`
		ReadinessProbe  *Probe           `yaml:"readinessProbe,omitempty"`
		VolumeMounts    []VolumeMount    `yaml:"volumeMounts,omitempty"`
	}
	EnvVar struct {
		Name      string     `yaml:"name"`
		Value     string     `yaml:"value,omitempty"`
		ValueFrom *EnvSource `yaml:"valueFrom,omitempty"`
	}
	EnvSource struct {
		FieldRef FieldRef `yaml:"fieldRef"`
	}
	FieldRef struct {
		FieldPath string `yaml:"fieldPath"`
	}
	ContainerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	}
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits,omitempty"`
	}
	SecurityContext struct {
		Privileged               *bool         `yaml:"privileged,omitempty"`
		AllowPrivilegeEscalation *bool         `yaml:"allowPrivilegeEscalation,omitempty"`
		ReadOnlyRootFilesystem   bool          `yaml:"readOnlyRootFilesystem,omitempty"`
		Capabilities             *Capabilities `yaml:"capabilities,omitempty"`
	}
	Capabilities struct {
		Add  []string `yaml:"add,omitempty"`
		Drop []string `yaml:"drop,omitempty"`
	}
	Probe struct {
		HTTPGet             HTTPGet `yaml:"httpGet"`
		InitialDelaySeconds int     `yaml:"initialDelaySeconds,omitempty"`
		PeriodSeconds       int     `yaml:"periodSeconds"`
		TimeoutSeconds      int     `yaml:"timeoutSeconds"`
		SuccessThreshold    int     `yaml:"successThreshold,omitempty"`
		FailureThreshold    int     `yaml:"failureThreshold"`
	}
	HTTPGet struct {
		// Host is empty for the pod's IP.
		Host   string `yaml:"host,omitempty"`
		Path   string `yaml:"path"`
		Port   int    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	}
	VolumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly,omitempty"`
	}
	Volume struct {
		Name      string           `yaml:"name"`
		HostPath  *HostPathSource  `yaml:"hostPath,omitempty"`
		ConfigMap *ConfigMapSource `yaml:"configMap,omitempty"`
	}
	HostPathSource struct {
		Path string `yaml:"path"`
		// Type is empty for "no check": the path is mounted if it exists, and created by
		// the container runtime if not.
		Type string `yaml:"type,omitempty"`
	}
	ConfigMapSource struct {
		Name  string      `yaml:"name"`
		Items []KeyToPath `yaml:"items,omitempty"`
	}
	KeyToPath struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	}

	ServiceSpec struct {
		Selector  map[string]string `yaml:"selector"`
		ClusterIP string            `yaml:"clusterIP"`
		Ports     []ServicePort     `yaml:"ports"`
	}
	ServicePort struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort int    `yaml:"targetPort"`
		Protocol   string `yaml:"protocol"`
	}
)

// The objects Plinth reads from the API (JSON), with only the fields it uses.
type (
	Node struct {
		Metadata ObjectMeta `json:"metadata"`
		Spec     NodeSpec   `json:"spec"`
		Status   NodeStatus `json:"status"`
	}
	NodeSpec struct {
		// PodCIDRs are the node's pod subnets, one per IP family, as
		// kube-controller-manager allocates them.
		PodCIDRs []string `json:"podCIDRs,omitempty"`
	}
	NodeStatus struct {
		Addresses  []NodeAddress   `json:"addresses,omitempty"`
		Conditions []NodeCondition `json:"conditions,omitempty"`
		NodeInfo   NodeSystemInfo  `json:"nodeInfo"`
	}
	NodeSystemInfo struct {
		KubeletVersion string `json:"kubeletVersion"`
	}
	NodeAddress struct {
		Type    string `json:"type"` // InternalIP, ExternalIP, Hostname...
		Address string `json:"address"`
	}
	NodeCondition struct {
		Type               string `json:"type"`   // Ready...
		Status             string `json:"status"` // True, False, Unknown
		LastTransitionTime string `json:"lastTransitionTime,omitempty"`
	}

	CertificateSigningRequest struct {
		Metadata ObjectMeta                      `json:"metadata"`
		Spec     CertificateSigningRequestSpec   `json:"spec"`
		Status   CertificateSigningRequestStatus `json:"status"`
	}
	CertificateSigningRequestSpec struct {
		SignerName string   `json:"signerName"`
		Username   string   `json:"username"`
		Groups     []string `json:"groups,omitempty"`
		Usages     []string `json:"usages,omitempty"`
		// Request is the PEM certificate request in base64, as the API serves it (left
		// to decode so that one bad request does not hide the others).
		Request string `json:"request"`
	}
	CertificateSigningRequestStatus struct {
		Conditions []CertificateSigningRequestCondition `json:"conditions,omitempty"`
		// Certificate is the issued PEM certificate in base64, once signed.
		Certificate string `json:"certificate,omitempty"`
	}
	CertificateSigningRequestCondition struct {
		Type    string `json:"type"` // Approved, Denied, Failed
		Status  string `json:"status"`
		Reason  string `json:"reason,omitempty"`
		Message string `json:"message,omitempty"`
	}

	EndpointSlice struct {
		Metadata  ObjectMeta `json:"metadata"`
		Endpoints []Endpoint `json:"endpoints"`
	}

	// RunningPod is a pod as the API serves it, with what a drain and an upgrade's wait
	// need.
	RunningPod struct {
		Metadata RunningPodMeta `json:"metadata"`
		Spec     struct {
			Containers []ContainerRef `json:"containers"`
		} `json:"spec"`
		Status struct {
			Phase             string            `json:"phase"` // Pending, Running, Succeeded, Failed
			Conditions        []NodeCondition   `json:"conditions,omitempty"`
			ContainerStatuses []ContainerStatus `json:"containerStatuses,omitempty"`
		} `json:"status"`
	}
	ContainerRef struct {
		Name  string `json:"name"`
		Image string `json:"image"`
	}
	ContainerStatus struct {
		Name         string `json:"name"`
		Ready        bool   `json:"ready"`
		RestartCount int    `json:"restartCount"`
		State        struct {
			Running *struct {
				StartedAt string `json:"startedAt"`
			} `json:"running,omitempty"`
		} `json:"state"`
	}

	// DaemonSet is a DaemonSet as the API serves it, with what a rollout's wait needs.
	DaemonSet struct {
		Metadata struct {
			ObjectMeta
			Generation int64 `json:"generation"`
		} `json:"metadata"`
		Spec struct {
			Template struct {
				Spec struct {
					Containers []ContainerRef `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
		Status struct {
			ObservedGeneration     int64 `json:"observedGeneration"`
			DesiredNumberScheduled int   `json:"desiredNumberScheduled"`
			UpdatedNumberScheduled int   `json:"updatedNumberScheduled"`
			NumberAvailable        int   `json:"numberAvailable"`
			NumberReady            int   `json:"numberReady"`
		} `json:"status"`
	}
	RunningPodMeta struct {
		ObjectMeta
		UID               string           `json:"uid"`
		DeletionTimestamp string           `json:"deletionTimestamp,omitempty"`
		OwnerReferences   []OwnerReference `json:"ownerReferences,omitempty"`
	}
	OwnerReference struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	}
	Endpoint struct {
		Addresses []string `json:"addresses"`
	}
)

// Ready says whether conditions (a Node's or a Pod's) hold Ready=True.
func Ready(conditions []NodeCondition) bool {
	for _, c := range conditions {
		if c.Type == "Ready" && c.Status == "True" {
			return true
		}
	}
	return false
}

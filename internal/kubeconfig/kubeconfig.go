// Package kubeconfig is Plinth's kubeconfig type: it parses and writes kubeconfig files,
// builds the one-cluster ones Plinth hands out, turns one into what a client needs to reach
// the API server, and merges kubeconfigs the way users expect from plinthctl kubeconfig and
// cluster create: the cluster, user and context of a new kubeconfig replace the entries of
// the same names, and its context becomes the current one. It takes such a merge back
// (Unmerge) and a cluster's entries out (Remove) as cluster create and destroy need.
//
// Only the fields Plinth reads are typed; every other field (extensions, preferences, exec
// credentials, proxy settings...) is kept in the Extra map next to them, so that a file
// read and written again keeps it.
package kubeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
)

type (
	// Config is a kubeconfig file.
	Config struct {
		APIVersion     string         `yaml:"apiVersion,omitempty"`
		Kind           string         `yaml:"kind,omitempty"`
		Clusters       []NamedCluster `yaml:"clusters"`
		Users          []NamedUser    `yaml:"users"`
		Contexts       []NamedContext `yaml:"contexts"`
		CurrentContext string         `yaml:"current-context"`
		// Extra holds the fields not listed above (preferences, extensions...).
		Extra map[string]any `yaml:",inline"`
	}
	NamedCluster struct {
		Name    string         `yaml:"name"`
		Cluster Cluster        `yaml:"cluster"`
		Extra   map[string]any `yaml:",inline"`
	}
	// Cluster is how to reach and trust an API server. Certificate authority data wins
	// over the file.
	Cluster struct {
		Server                   string         `yaml:"server"`
		CertificateAuthorityData config.Base64  `yaml:"certificate-authority-data,omitempty"`
		CertificateAuthority     string         `yaml:"certificate-authority,omitempty"`
		TLSServerName            string         `yaml:"tls-server-name,omitempty"`
		Extra                    map[string]any `yaml:",inline"`
	}
	NamedUser struct {
		Name  string         `yaml:"name"`
		User  User           `yaml:"user"`
		Extra map[string]any `yaml:",inline"`
	}
	// User is a client's credentials: a client certificate and key (data, or files as
	// kubelet writes them after its TLS bootstrap), or a bearer token.
	User struct {
		ClientCertificateData config.Base64  `yaml:"client-certificate-data,omitempty"`
		ClientKeyData         config.Base64  `yaml:"client-key-data,omitempty"`
		ClientCertificate     string         `yaml:"client-certificate,omitempty"`
		ClientKey             string         `yaml:"client-key,omitempty"`
		Token                 string         `yaml:"token,omitempty"`
		Extra                 map[string]any `yaml:",inline"`
	}
	NamedContext struct {
		Name    string         `yaml:"name"`
		Context Context        `yaml:"context"`
		Extra   map[string]any `yaml:",inline"`
	}
	Context struct {
		Cluster   string         `yaml:"cluster"`
		User      string         `yaml:"user"`
		Namespace string         `yaml:"namespace,omitempty"`
		Extra     map[string]any `yaml:",inline"`
	}
)

// New returns a kubeconfig with one cluster, one user and one context, named
// userName@clusterName and current.
func New(clusterName string, cluster Cluster, userName string, user User) *Config {
	ctxName := userName + "@" + clusterName
	return &Config{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []NamedCluster{{Name: clusterName, Cluster: cluster}},
		Users:          []NamedUser{{Name: userName, User: user}},
		Contexts:       []NamedContext{{Name: ctxName, Context: Context{Cluster: clusterName, User: userName}}},
		CurrentContext: ctxName,
	}
}

// Parse reads a kubeconfig. Empty data is an empty kubeconfig.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	if err := yaml.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", err)
	}
	return c, nil
}

// Load reads the kubeconfig at path. Relative certificate and key file names in it are
// made relative to the file's directory, as kubectl reads them.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.Clusters {
		abs(&c.Clusters[i].Cluster.CertificateAuthority)
	}
	for i := range c.Users {
		abs(&c.Users[i].User.ClientCertificate)
		abs(&c.Users[i].User.ClientKey)
	}
	return c, nil
}

// Marshal writes the kubeconfig as YAML, the *-data fields in base64.
func (c *Config) Marshal() ([]byte, error) {
	return yamlx.Marshal(c)
}

// Selected returns the current context's cluster and user, or, without a current context,
// those of the first context, or, without any context, the first cluster and user.
func (c *Config) Selected() (*Cluster, *User, error) {
	if len(c.Contexts) == 0 && c.CurrentContext == "" {
		if len(c.Clusters) == 0 || len(c.Users) == 0 {
			return nil, nil, errors.New("kubeconfig has no cluster or no user")
		}
		return &c.Clusters[0].Cluster, &c.Users[0].User, nil
	}
	i := slices.IndexFunc(c.Contexts, func(e NamedContext) bool { return c.CurrentContext == "" || e.Name == c.CurrentContext })
	if i < 0 {
		return nil, nil, fmt.Errorf("kubeconfig: current context %q not found", c.CurrentContext)
	}
	ctx := c.Contexts[i].Context
	i = slices.IndexFunc(c.Clusters, func(e NamedCluster) bool { return e.Name == ctx.Cluster })
	if i < 0 {
		return nil, nil, fmt.Errorf("kubeconfig: cluster %q not found", ctx.Cluster)
	}
	cl := &c.Clusters[i].Cluster
	u := &User{} // a context without a user is anonymous
	if ctx.User != "" {
		i = slices.IndexFunc(c.Users, func(e NamedUser) bool { return e.Name == ctx.User })
		if i < 0 {
			return nil, nil, fmt.Errorf("kubeconfig: user %q not found", ctx.User)
		}
		u = &c.Users[i].User
	}
	return cl, u, nil
}

// DefaultPath is the first entry of $KUBECONFIG, or ~/.kube/config.
func DefaultPath() (string, error) {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0], nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// Rename renames the (single) context of a kubeconfig, makes it current and points its
// clusters at server when server is not empty.
func Rename(data []byte, context, server string) ([]byte, error) {
	c, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if len(c.Contexts) != 1 {
		return nil, fmt.Errorf("expected one context, found %d", len(c.Contexts))
	}
	c.Contexts[0].Name = context
	c.CurrentContext = context
	if server != "" {
		for i := range c.Clusters {
			c.Clusters[i].Cluster.Server = server
		}
	}
	return c.Marshal()
}

// ReadFile reads the kubeconfig at path to change it and write it back: unlike Load, it
// leaves relative file names as they are. A file that does not exist is nil, and no error.
func ReadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteFile writes the kubeconfig to path atomically, with mode 0600, creating the
// directory (mode 0700) if missing.
func (c *Config) WriteFile(path string) error {
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

func clusterName(e NamedCluster) string { return e.Name }
func userName(e NamedUser) string       { return e.Name }
func contextName(e NamedContext) string { return e.Name }

// upsert replaces the entry of list with the name of e, or appends e.
func upsert[T any](list []T, e T, name func(T) string) []T {
	for i := range list {
		if name(list[i]) == name(e) {
			list[i] = e
			return list
		}
	}
	return append(list, e)
}

// Merge merges the kubeconfig data into the file at path (created if missing), atomically,
// and makes data's current context current. Everything else in the file stays, fields
// this package does not know included.
func Merge(path string, data []byte) error {
	add, err := Parse(data)
	if err != nil {
		return err
	}
	existing, err := ReadFile(path)
	if err != nil {
		return err
	}
	if existing == nil {
		existing = &Config{APIVersion: "v1", Kind: "Config"}
	}
	for _, e := range add.Clusters {
		existing.Clusters = upsert(existing.Clusters, e, clusterName)
	}
	for _, e := range add.Users {
		existing.Users = upsert(existing.Users, e, userName)
	}
	for _, e := range add.Contexts {
		existing.Contexts = upsert(existing.Contexts, e, contextName)
	}
	existing.CurrentContext = add.CurrentContext
	return existing.WriteFile(path)
}

// unmerge takes out of list the entries named as one of added, and puts in their place the
// entry of the same name in before, if any.
func unmerge[T any](list, added, before []T, name func(T) string) []T {
	kept := []T{}
	for _, e := range list {
		n := name(e)
		if !slices.ContainsFunc(added, func(a T) bool { return name(a) == n }) {
			kept = append(kept, e)
		} else if i := slices.IndexFunc(before, func(b T) bool { return name(b) == n }); i >= 0 {
			kept = append(kept, before[i])
		}
	}
	return kept
}

// Unmerge undoes in c a Merge of added into before (nil when there was no file): the
// clusters, users and contexts named as those of added go, the entries of the same names
// in before come back in their place, and if added's current context is still current,
// before's is current again. Everything else in c (entries added since, fields this package
// does not know) stays as it is.
func (c *Config) Unmerge(added, before *Config) {
	if before == nil {
		before = &Config{}
	}
	c.Clusters = unmerge(c.Clusters, added.Clusters, before.Clusters, clusterName)
	c.Users = unmerge(c.Users, added.Users, before.Users, userName)
	c.Contexts = unmerge(c.Contexts, added.Contexts, before.Contexts, contextName)
	if c.CurrentContext == added.CurrentContext {
		c.CurrentContext = before.CurrentContext
	}
}

// Remove takes out of c the context named context, and the cluster named cluster and the
// user named user unless a context that stays refers to them; if context was current, none
// is. Every other entry stays. It returns what it removed, as `context "NAME"`,
// `cluster "NAME"` and `user "NAME"`, in that order; nothing when c holds none of them.
func (c *Config) Remove(context, cluster, user string) []string {
	var removed []string
	var ok bool
	if c.Contexts, ok = without(c.Contexts, context, contextName); ok {
		removed = append(removed, fmt.Sprintf("context %q", context))
	}
	if !slices.ContainsFunc(c.Contexts, func(e NamedContext) bool { return e.Context.Cluster == cluster }) {
		if c.Clusters, ok = without(c.Clusters, cluster, clusterName); ok {
			removed = append(removed, fmt.Sprintf("cluster %q", cluster))
		}
	}
	if !slices.ContainsFunc(c.Contexts, func(e NamedContext) bool { return e.Context.User == user }) {
		if c.Users, ok = without(c.Users, user, userName); ok {
			removed = append(removed, fmt.Sprintf("user %q", user))
		}
	}
	if c.CurrentContext == context {
		c.CurrentContext = ""
	}
	return removed
}

// without returns list without the entries named n, and whether there were any.
func without[T any](list []T, n string, name func(T) string) ([]T, bool) {
	kept := slices.DeleteFunc(slices.Clone(list), func(e T) bool { return name(e) == n })
	return kept, len(kept) < len(list)
}

// Package clientconfig reads and writes plinthconfig, the client configuration of plinthctl:
// named contexts, each with the node API endpoints, the default nodes, the CA that signs the
// nodes' API certificates, and a client certificate whose Subject Organization carries the
// client's role.
package clientconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
)

// EnvVar names the environment variable that overrides the default path.
const EnvVar = "PLINTHCONFIG"

// Config is a plinthconfig file.
type Config struct {
	// Context is the name of the current context.
	Context string `yaml:"context"`
	// Contexts maps context names to contexts.
	Contexts map[string]*Context `yaml:"contexts"`
}

// Context is how to reach and authenticate to the nodes of one cluster.
type Context struct {
	// Endpoints are the node API addresses (host or host:port; the port defaults to 50000).
	Endpoints []string `yaml:"endpoints"`
	// Nodes are the nodes commands act on by default.
	Nodes []string `yaml:"nodes,omitempty"`
	// CA is the PEM certificate of the node API CA.
	CA config.Base64 `yaml:"ca"`
	// Crt is the PEM client certificate.
	Crt config.Base64 `yaml:"crt"`
	// Key is the PEM client key.
	Key config.Base64 `yaml:"key"`
}

// DefaultPath is $PLINTHCONFIG, or ~/.plinth/config.
func DefaultPath() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory for the default plinthconfig (set %s instead): %w", EnvVar, err)
	}
	return filepath.Join(home, ".plinth", "config"), nil
}

// Decode parses a plinthconfig; unknown fields are errors.
func Decode(data []byte) (*Config, error) {
	c := &Config{}
	if err := yamlx.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("decode plinthconfig: %w", err)
	}
	if c.Contexts == nil {
		c.Contexts = map[string]*Context{}
	}
	for name, ctx := range c.Contexts {
		if ctx == nil {
			return nil, fmt.Errorf("decode plinthconfig: context %q is empty", name)
		}
	}
	if c.Context != "" && c.Contexts[c.Context] == nil {
		return nil, fmt.Errorf("plinthconfig: current context %q is not defined; pick one with `plinthctl config context NAME`", c.Context)
	}
	return c, nil
}

// Load reads a plinthconfig. A missing file is an empty config, not an error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Contexts: map[string]*Context{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read plinthconfig: %w", err)
	}
	c, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Encode serialises the config.
func (c *Config) Encode() ([]byte, error) {
	out, err := yamlx.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode plinthconfig: %w", err)
	}
	return out, nil
}

// Save writes the config atomically with mode 0600, creating the directory.
func (c *Config) Save(path string) error {
	data, err := c.Encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create plinthconfig directory: %w", err)
	}
	return atomicfile.Write(path, data, 0o600)
}

// Current returns the current context, or an error saying how to choose one.
func (c *Config) Current() (string, *Context, error) {
	if c.Context == "" {
		return "", nil, errors.New("no current context: generate one with `plinthctl gen config` and merge it with `plinthctl config merge`, or pick one with `plinthctl config context NAME`")
	}
	ctx, ok := c.Contexts[c.Context]
	if !ok {
		return "", nil, fmt.Errorf("current context %q is not defined; pick one with `plinthctl config context NAME`", c.Context)
	}
	return c.Context, ctx, nil
}

// Names lists the context names, sorted.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Contexts))
	for n := range c.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Merge adds every context of other. A context whose name is taken is renamed NAME-1,
// NAME-2, ...; the renames are returned (old name to new name). The current context becomes
// other's current context (under its possibly new name).
func (c *Config) Merge(other *Config) map[string]string {
	if c.Contexts == nil {
		c.Contexts = map[string]*Context{}
	}
	renamed := map[string]string{}
	for _, name := range other.Names() {
		newName := name
		for i := 1; c.Contexts[newName] != nil; i++ {
			newName = name + "-" + strconv.Itoa(i)
		}
		if newName != name {
			renamed[name] = newName
		}
		c.Contexts[newName] = other.Contexts[name]
	}
	if other.Context != "" {
		c.Context = other.Context
		if n, ok := renamed[other.Context]; ok {
			c.Context = n
		}
	}
	return renamed
}

package resource

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Column is one extra column that `plinthctl get` prints for a type.
type Column struct {
	// Name is the column header.
	Name string `json:"name" yaml:"name"`
	// JSONPath selects the value within the resource, for example "{.spec.address}".
	JSONPath string `json:"jsonPath" yaml:"jsonPath"`
}

// Definition describes a resource type to clients.
type Definition struct {
	// Type is the canonical type name, for example "Addresses.net.plinth.dev".
	Type string `json:"type" yaml:"type"`
	// Aliases are other names accepted by Registry.Lookup, typically the short, singular,
	// plural and lowercase forms ("address", "addresses", "addr").
	Aliases []string `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	// DefaultNamespace is the namespace clients use when none is given.
	DefaultNamespace string `json:"defaultNamespace" yaml:"defaultNamespace"`
	// PrintColumns are the extra columns of the table output.
	PrintColumns []Column `json:"printColumns,omitempty" yaml:"printColumns,omitempty"`
	// Sensitive marks types whose specs hold secrets and are shown only to privileged roles.
	Sensitive bool `json:"sensitive,omitempty" yaml:"sensitive,omitempty"`
}

// clone returns a copy of d that shares no slices with it.
func (d Definition) clone() Definition {
	d.Aliases = slices.Clone(d.Aliases)
	d.PrintColumns = slices.Clone(d.PrintColumns)
	return d
}

// Registry holds the resource definitions, indexed by type and aliases, case-insensitively. It
// is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	byName map[string]string // lowercased type or alias -> canonical type
	defs   map[string]Definition
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]string{}, defs: map[string]Definition{}}
}

// Register adds a definition. It fails with ErrInvalid when the type or an alias is empty, and
// with ErrAlreadyExists when the type or one of its aliases is already taken (compared
// case-insensitively) by this or another definition.
func (r *Registry) Register(def Definition) error {
	if strings.TrimSpace(def.Type) == "" {
		return fmt.Errorf("register resource definition: %w: empty type", ErrInvalid)
	}
	names := append([]string{def.Type}, def.Aliases...)
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range names {
		k := strings.ToLower(strings.TrimSpace(n))
		if k == "" {
			return fmt.Errorf("register resource definition %s: %w: empty alias", def.Type, ErrInvalid)
		}
		if owner, ok := r.byName[k]; ok {
			return fmt.Errorf("register resource definition %s: name %q: %w (used by %s)", def.Type, n, ErrAlreadyExists, owner)
		}
		if seen[k] && !strings.EqualFold(n, def.Type) {
			return fmt.Errorf("register resource definition %s: alias %q: %w (given twice)", def.Type, n, ErrAlreadyExists)
		}
		seen[k] = true
	}
	for k := range seen {
		r.byName[k] = def.Type
	}
	r.defs[def.Type] = def.clone()
	return nil
}

// Lookup finds a definition by its type or one of its aliases, ignoring case. It fails with
// ErrNotFound.
func (r *Registry) Lookup(nameOrAlias string) (Definition, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	typ, ok := r.byName[strings.ToLower(strings.TrimSpace(nameOrAlias))]
	if !ok {
		return Definition{}, fmt.Errorf("resource type %q: %w", nameOrAlias, ErrNotFound)
	}
	return r.defs[typ].clone(), nil
}

// List returns every definition, sorted by type.
func (r *Registry) List() []Definition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Definition, 0, len(r.defs))
	for _, d := range r.defs {
		out = append(out, d.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

package resource

import "encoding/json"

// Resource is one typed object in the store: metadata plus a spec.
type Resource interface {
	// Metadata returns a pointer to the resource's metadata; changes through it change the
	// resource (not the store).
	Metadata() *Metadata
	// Spec returns the spec, as a pointer to the spec value, for marshalling and generic
	// display.
	Spec() any
	// DeepCopy returns a copy that shares no mutable memory with the resource.
	DeepCopy() Resource
}

// Typed is the generic Resource implementation for a spec type S. S must be plain data (see
// the package documentation on deep copies).
type Typed[S any] struct {
	md   Metadata
	spec S
}

// New returns a running resource with the given identity and spec.
func New[S any](namespace, typ, id string, spec S) *Typed[S] {
	return &Typed[S]{
		md:   Metadata{Namespace: namespace, Type: typ, ID: id, Phase: PhaseRunning},
		spec: spec,
	}
}

// Metadata returns a mutable pointer to the metadata.
func (t *Typed[S]) Metadata() *Metadata { return &t.md }

// Spec returns a *S pointing at the spec.
func (t *Typed[S]) Spec() any { return &t.spec }

// TypedSpec returns a mutable pointer to the spec.
func (t *Typed[S]) TypedSpec() *S { return &t.spec }

// DeepCopy returns a deep copy of the metadata and the spec.
func (t *Typed[S]) DeepCopy() Resource {
	return &Typed[S]{md: t.md.Copy(), spec: deepCopy(t.spec)}
}

// envelope is the marshalled form of a resource.
type envelope struct {
	Metadata *Metadata `json:"metadata" yaml:"metadata"`
	Spec     any       `json:"spec" yaml:"spec"`
}

// MarshalJSON encodes the resource as {"metadata": ..., "spec": ...}.
func (t *Typed[S]) MarshalJSON() ([]byte, error) {
	return json.Marshal(envelope{Metadata: &t.md, Spec: &t.spec})
}

// MarshalYAML encodes the resource as a mapping with the keys metadata and spec; it
// implements the Marshaler interface of the YAML encoder.
func (t *Typed[S]) MarshalYAML() (any, error) {
	return envelope{Metadata: &t.md, Spec: &t.spec}, nil
}

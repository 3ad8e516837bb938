package resource

import (
	"maps"
	"time"
)

// Phase is the lifecycle phase of a resource.
type Phase string

const (
	// PhaseRunning is the normal phase of a resource.
	PhaseRunning Phase = "running"
	// PhaseTearingDown marks a resource that its owner is about to destroy; it cannot become
	// running again.
	PhaseTearingDown Phase = "tearingDown"
)

// Metadata identifies a resource and records its version, phase, owner, labels and times.
type Metadata struct {
	// Namespace groups resources, for example "network" or "config".
	Namespace string `json:"namespace" yaml:"namespace"`
	// Type is the resource type, as registered in a Registry.
	Type string `json:"type" yaml:"type"`
	// ID identifies the resource within its namespace and type.
	ID string `json:"id" yaml:"id"`
	// Version is set by the store: 1 on creation, incremented on every update.
	Version uint64 `json:"version" yaml:"version"`
	// Phase is the lifecycle phase; the store sets PhaseRunning on creation when empty.
	Phase Phase `json:"phase" yaml:"phase"`
	// Owner is the name of the controller that manages the resource; empty for resources
	// written by users through the API.
	Owner string `json:"owner,omitempty" yaml:"owner,omitempty"`
	// Labels are free key/value pairs for selection and display.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Created is when the store created the resource.
	Created time.Time `json:"created" yaml:"created"`
	// Updated is when the store last wrote the resource.
	Updated time.Time `json:"updated" yaml:"updated"`
}

// Copy returns a copy of m that shares nothing with it.
func (m *Metadata) Copy() Metadata {
	c := *m
	if m.Labels != nil {
		c.Labels = maps.Clone(m.Labels)
	}
	return c
}

// String returns "type namespace/id", the form used in error messages.
func (m *Metadata) String() string {
	return key(m.Namespace, m.Type, m.ID)
}

func key(ns, typ, id string) string {
	return typ + " " + ns + "/" + id
}

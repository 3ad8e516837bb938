package resource

// EventType tells what happened to a resource.
type EventType string

const (
	// Created: Event.Resource was created (or, during bootstrap, exists).
	Created EventType = "created"
	// Updated: Event.Resource is the new state, Event.Old the previous one.
	Updated EventType = "updated"
	// Destroyed: Event.Resource is the last state of the destroyed resource.
	Destroyed EventType = "destroyed"
	// Bootstrapped: the Created events of the initial state have all been sent; the events
	// that follow are changes. Resource is nil.
	Bootstrapped EventType = "bootstrapped"
	// Overflow: the watcher fell so far behind that events were lost; the channel is closed
	// right after. Resource is nil. Watch again with Bootstrap to resynchronise.
	Overflow EventType = "overflow"
)

// Event is one change delivered to a watcher. Resources in events are the watcher's own deep
// copies.
type Event struct {
	// Type is what happened.
	Type EventType
	// Resource is the resource after the change (the last state for Destroyed).
	Resource Resource
	// Old is the resource before the change, for Updated only.
	Old Resource
}

// WatchOptions tune a watch.
type WatchOptions struct {
	// Bootstrap first delivers a Created event for every existing resource, sorted by ID, then
	// one Bootstrapped event, then the changes, with nothing missed in between.
	Bootstrap bool
}

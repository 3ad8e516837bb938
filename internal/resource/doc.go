// Package resource holds machined's typed resources and the in-memory store that keeps them.
//
// A resource is identified by namespace, type and ID and carries Metadata (version, phase,
// owner, labels, timestamps) next to a typed spec. Typed[S] implements Resource for any plain
// spec struct; Definition and Registry describe the types to clients such as `plinthctl get`.
//
// # Store
//
// The Store is safe for concurrent use. It never hands out the values it keeps: Get, List and
// watch events return deep copies, and Create and Update store deep copies of their
// arguments. Stored values are immutable once stored (an update replaces them), which lets
// events refer to them without copying under the lock.
//
// Update uses optimistic concurrency: the caller passes the version it read, and the store
// refuses the write with ErrConflict when another write came first. Ownership is fixed at
// creation: Update and Destroy with another owner fail with ErrOwnerMismatch. A resource that is
// tearing down (see Store.Teardown) cannot be moved back to running (ErrPhaseConflict).
//
// # Watches and slow watchers
//
// Every (namespace, type) pair has a bounded event log: a ring of the last N changes
// (WithEventLogSize, default DefaultEventLogSize), shared by all watchers of that pair. A write
// appends to the ring and wakes the waiting watchers; it never waits for any of them, so a
// watcher cannot block the store. Each watch is served by its own goroutine that reads the ring
// at the watcher's pace and delivers deep copies on the watch channel.
//
// A watcher that keeps up — that is never more than N changes of its (namespace, type) behind —
// receives every event, in order. A watcher that falls further behind has lost events it can no
// longer receive: it gets the events still available in order, then one Event of type
// Overflow, and its channel is closed. To recover it watches again with Bootstrap, which
// replays the current state. Loss is therefore never silent. The ring is per (namespace, type),
// so writes to other types never push a watcher into overflow; a WatchID watcher does count the
// changes of other IDs of its type.
//
// Watches end, and their channels close, when their context is cancelled; no goroutine
// outlives them.
//
// # Deep copies
//
// Typed[S].DeepCopy copies specs by reflection. Specs must be plain data: structs, strings,
// numbers, bools, slices, arrays, maps, pointers and interfaces holding such values, and
// time.Time. Only exported struct fields are copied deeply; unexported fields are copied
// shallowly (so time.Time, whose fields are unexported and immutable, copies correctly).
// Channels and funcs are shared, not copied. Pointer cycles are not supported.
package resource

// Package controller runs machined's controllers: small reconcile loops that read resources
// from the store and write the resource types they own.
//
// A Controller declares its inputs (namespace and type, optionally one ID) and its outputs
// (types). The Engine checks that exactly one controller owns each output type, subscribes to
// every controller's inputs through store watches, and wakes the controller through its
// Runtime's EventCh, a coalesced signal: any number of changes between two reads of the
// channel give one wake-up, and one wake-up is sent at every (re)start so that the controller
// reconciles at least once. The controller then reads what it needs (Get, List, WatchFor on any
// type) and writes its outputs (Create, Modify, Destroy, Cleanup); writes to other types, or
// to resources it does not own, are refused.
//
// When Run returns an error or panics, the Engine restarts it after an exponential backoff
// (InitialBackoff doubling up to MaxBackoff, back to InitialBackoff once a run lasted
// BackoffResetAfter), measured with the engine's clock so that tests drive it with a fake
// clock. A Run that returns nil is finished and not restarted. Run must return when its
// context is cancelled.
package controller

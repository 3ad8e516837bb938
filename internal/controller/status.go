package controller

import "sync"

// ControllerStatus is a snapshot of one controller's state, for metrics and diagnostics.
type ControllerStatus struct {
	// Name of the controller.
	Name string
	// Running is true while its Run is executing (false while waiting to restart, and after
	// it finished).
	Running bool
	// Restarts counts the restarts after failures.
	Restarts int
	// Runs counts the starts of its Run, the first one included.
	Runs int
	// Failures counts the runs that failed (an error or a panic).
	Failures int
	// LastError is the last failure (error or panic), empty if none.
	LastError string
}

// status is the mutable state behind ControllerStatus.
type status struct {
	mu sync.Mutex
	s  ControllerStatus
}

func (st *status) update(f func(*ControllerStatus)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
}

func (st *status) get() ControllerStatus {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

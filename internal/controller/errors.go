package controller

import "errors"

// Sentinel errors of the engine and the runtime, wrapped with context; test with errors.Is.
var (
	// ErrUndeclaredOutput reports that a controller wrote a type it did not declare in Outputs.
	ErrUndeclaredOutput = errors.New("type is not an output of the controller")
	// ErrInvalidController reports a controller whose name, inputs or outputs are malformed.
	ErrInvalidController = errors.New("invalid controller")
	// ErrOutputTaken reports a controller declaring an output type that another one owns.
	ErrOutputTaken = errors.New("output type already owned")
	// ErrDuplicateName reports two controllers with the same name.
	ErrDuplicateName = errors.New("duplicate controller name")
	// ErrEngineRunning reports Register or Run on an engine that was already started.
	ErrEngineRunning = errors.New("engine already running")
)

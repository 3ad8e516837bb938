// Package service is machined's service supervisor. A service (containerd, etcd, kubelet,
// apid, trustd, ...) has an ID, dependencies, an optional start condition, a runner (a
// process or an in-process goroutine), an optional health check and a restart policy.
//
// Life of a service started with Start:
//
//	Preparing -> Waiting (dependencies Running and healthy, then the Condition)
//	          -> Running -> Finished | Failed
//	                     -> (restart policy) Waiting "restarting in 2s" -> Running ...
//	Stop:     ... -> Stopping -> Finished ("stopped") | Failed ("did not stop within 10s")
//	Condition returning ErrSkip: Waiting -> Skipped
//
// A service that was added and never started is Initialized.
//
// Every state change is kept in the service's history (the last HistoryLen transitions),
// published on the event stream (type "service") and delivered to Subscribe channels.
// Each service's runner output goes to the log store under the service's ID.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// State is the state of a service.
type State string

// States of a service.
const (
	// Initialized: added, never started.
	Initialized State = "Initialized"
	// Preparing: started, getting ready to wait for its dependencies.
	Preparing State = "Preparing"
	// Waiting: waiting for dependencies, for the start condition, or for the restart
	// backoff to pass.
	Waiting State = "Waiting"
	// Running: the runner is running.
	Running State = "Running"
	// Stopping: a stop was requested and the runner is being stopped.
	Stopping State = "Stopping"
	// Finished: the runner exited successfully, or was stopped on request.
	Finished State = "Finished"
	// Failed: the runner (or the start condition) failed, or the runner did not stop.
	Failed State = "Failed"
	// Skipped: the start condition decided that the service is not needed (ErrSkip).
	Skipped State = "Skipped"
)

// ErrSkip is returned (possibly wrapped) by a Condition to skip the service: it then
// goes to Skipped instead of Failed.
var ErrSkip = errors.New("service skipped")

// RestartPolicy says what happens when a service's runner exits on its own.
type RestartPolicy int

const (
	// RestartForever restarts the runner whenever it exits, after a backoff that starts at
	// BackoffMin, doubles up to BackoffMax, and resets after BackoffReset of uptime. It is
	// the zero value.
	RestartForever RestartPolicy = iota
	// RestartOnce never restarts: the service ends Finished (exit without error) or Failed.
	RestartOnce
	// RestartUntilSuccess restarts (with the same backoff) only after a failure.
	RestartUntilSuccess
)

// String returns the policy's name.
func (p RestartPolicy) String() string {
	switch p {
	case RestartForever:
		return "forever"
	case RestartOnce:
		return "once"
	case RestartUntilSuccess:
		return "until-success"
	}
	return fmt.Sprintf("RestartPolicy(%d)", int(p))
}

// Restart backoff.
const (
	// BackoffMin is the wait before the first restart.
	BackoffMin = time.Second
	// BackoffMax is the longest wait between restarts.
	BackoffMax = 30 * time.Second
	// BackoffReset is how long a run must last for the backoff to start over at BackoffMin.
	BackoffReset = time.Minute
)

// DefaultStopTimeout is the StopTimeout of a service that sets none.
const DefaultStopTimeout = 10 * time.Second

// stopTimeoutMargin is what the default StopTimeout of a ProcessRunner adds to its grace
// period.
const stopTimeoutMargin = 5 * time.Second

// HistoryLen is how many state transitions each service keeps.
const HistoryLen = 16

// Service describes one supervised service.
type Service struct {
	// ID names the service; it is also the name of its log, so it must be a valid
	// logstore name ([a-z0-9][a-z0-9._-]*).
	ID string
	// DependsOn lists services that must be Running (and healthy, if they have a health
	// check) before this one starts. A dependency that is a one-shot service
	// (RestartOnce or RestartUntilSuccess) is also satisfied once it has Finished
	// successfully.
	DependsOn []string
	// Condition, when set, is called after the dependencies are satisfied and blocks
	// until the service may start. An error fails the service (ErrSkip skips it). It
	// must return when ctx is cancelled.
	Condition func(ctx context.Context) error
	// Runner runs the service.
	Runner Runner
	// Health, when set, checks the running service periodically.
	Health *HealthCheck
	// Restart is the restart policy (RestartForever when zero).
	Restart RestartPolicy
	// Protected marks a service that is the node's way in (apid, trustd): the node API
	// refuses to stop or restart it, whatever the caller's role, so no client can cut
	// the node off its API. machined itself still stops it at shutdown and reboot.
	Protected bool
	// StopTimeout is how long Stop waits for the runner to return after cancelling it.
	// When zero it is DefaultStopTimeout, or for a ProcessRunner its grace period plus
	// 5 s if that is longer, so that the SIGKILL after the grace period comes first.
	StopTimeout time.Duration
}

// HealthCheck checks a running service.
type HealthCheck struct {
	// InitialDelay is the wait between the start of the runner and the first check.
	InitialDelay time.Duration
	// Period is the wait between the end of a check and the next one (default 5s).
	Period time.Duration
	// StartPeriod, when set, replaces Period until a check first passes, so that a service
	// that comes up quickly is seen healthy (and its dependents start) soon after. Failures
	// in that time are recorded only from InitialDelay + Period on, when the first check
	// would have run without it.
	StartPeriod time.Duration
	// Timeout bounds each check (default Period); a check that times out fails.
	Timeout time.Duration
	// Check returns nil when the service is healthy. It must return when ctx is
	// cancelled.
	Check func(ctx context.Context) error
}

// DefaultHealthPeriod is the Period of a HealthCheck that sets none.
const DefaultHealthPeriod = 5 * time.Second

// HealthStatus is the result of a service's health checks.
type HealthStatus struct {
	// Healthy is the result of the last check.
	Healthy bool
	// LastMessage is "ok" or the error of the last check.
	LastMessage string
	// LastChange is when Healthy last changed (or the first check's time).
	LastChange time.Time
}

// Transition is one change of a service's state.
type Transition struct {
	// Time is when the change happened.
	Time time.Time
	// From and To are the states before and after.
	From, To State
	// Message explains the new state.
	Message string
}

// Status is a snapshot of a service.
type Status struct {
	// ID is the service's ID.
	ID string
	// State is the current state.
	State State
	// Healthy is nil when the service has no health check or it has not run in the
	// current run yet.
	Healthy *bool
	// Health holds the details of the health checks, nil when Healthy is nil.
	Health *HealthStatus
	// Message explains the state.
	Message string
	// Since is when the service entered State.
	Since time.Time
	// Runner describes the runner (Runner.String()).
	Runner string
	// Restarts counts the restarts, automatic and requested.
	Restarts int
	// DependsOn is copied from the service.
	DependsOn []string
	// Protected is copied from the service.
	Protected bool
	// History is the last HistoryLen transitions, oldest first.
	History []Transition
}

// Runner runs a service.
type Runner interface {
	// Run runs the service until it exits, writing its output to logs. Cancelling ctx is
	// the request to stop; Run must then return soon.
	Run(ctx context.Context, logs io.Writer) error
	// String describes the runner for status output.
	String() string
}

// GoroutineRunner runs a service as a function inside machined.
type GoroutineRunner struct {
	// Name describes the function.
	Name string
	// Func is the service: it returns when it exits; ctx is cancelled to stop it.
	Func func(ctx context.Context, logs io.Writer) error
}

// Run calls Func; a panic in Func is returned as an error.
func (r GoroutineRunner) Run(ctx context.Context, logs io.Writer) (err error) {
	if r.Func == nil {
		return fmt.Errorf("goroutine %s: no function", r.Name)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("goroutine %s panicked: %v", r.Name, p)
		}
	}()
	return r.Func(ctx, logs)
}

// String returns "goroutine <Name>".
func (r GoroutineRunner) String() string { return "goroutine " + r.Name }

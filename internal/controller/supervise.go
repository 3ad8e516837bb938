package controller

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// supervise runs one controller until ctx ends or it returns nil, restarting it after
// failures with a backoff.
func (e *Engine) supervise(ctx context.Context, en *entry) {
	name := en.ctrl.Name()
	log := e.log.With("controller", name)
	var bo restartBackoff
	for {
		en.rt.signal() // reconcile once at every start
		en.status.update(func(s *ControllerStatus) { s.Running = true; s.Runs++ })
		started := e.clk.Now()
		err := runSafely(ctx, en, log)
		ranFor := e.clk.Now().Sub(started)
		en.status.update(func(s *ControllerStatus) { s.Running = false })

		if ctx.Err() != nil {
			return
		}
		if err == nil {
			log.Info("controller finished")
			return
		}
		wait := bo.delay(ranFor)
		en.status.update(func(s *ControllerStatus) { s.LastError = err.Error(); s.Failures++ })
		log.Error("controller failed; restarting", "err", err, "ran_for", ranFor, "restart_in", wait)

		t := e.clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		en.status.update(func(s *ControllerStatus) { s.Restarts++ })
	}
}

// runSafely calls the controller's Run and turns a panic into an error.
func runSafely(ctx context.Context, en *entry, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("controller panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("controller %s panicked: %v", en.ctrl.Name(), p)
		}
	}()
	return en.ctrl.Run(ctx, en.rt, log)
}

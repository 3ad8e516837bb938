package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/resource"
)

// Engine runs a set of controllers against a store.
type Engine struct {
	store *resource.Store
	clk   clock.Clock
	log   *slog.Logger

	mu      sync.Mutex
	running bool
	entries []*entry          // in registration order
	byName  map[string]*entry // controller name -> entry
	owners  map[string]string // output type -> controller name
}

// entry is one registered controller with its runtime and status.
type entry struct {
	ctrl   Controller
	inputs []Input
	rt     *runtime
	status status
}

// NewEngine returns an engine with no controllers. A nil log discards messages.
func NewEngine(store *resource.Store, clk clock.Clock, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{store: store, clk: clk, log: log, byName: map[string]*entry{}, owners: map[string]string{}}
}

// Register adds a controller before Run. It fails when the name is empty or taken, when an
// input or output is malformed, or when another controller already owns one of its output
// types (the error names both controllers).
func (e *Engine) Register(c Controller) error {
	name := c.Name()
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("register controller: %w: empty name", ErrInvalidController)
	}
	inputs := slices.Clone(c.Inputs())
	for _, in := range inputs {
		if in.Namespace == "" || in.Type == "" {
			return fmt.Errorf("register controller %s: %w: input %+v needs a namespace and a type", name, ErrInvalidController, in)
		}
	}
	outputs := slices.Clone(c.Outputs())
	seen := map[string]bool{}
	for _, out := range outputs {
		if out.Type == "" {
			return fmt.Errorf("register controller %s: %w: output with an empty type", name, ErrInvalidController)
		}
		if seen[out.Type] {
			return fmt.Errorf("register controller %s: %w: output %s declared twice", name, ErrInvalidController, out.Type)
		}
		seen[out.Type] = true
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		return fmt.Errorf("register controller %s: %w", name, ErrEngineRunning)
	}
	if _, ok := e.byName[name]; ok {
		return fmt.Errorf("register controller %s: %w", name, ErrDuplicateName)
	}
	for _, out := range outputs {
		if owner, ok := e.owners[out.Type]; ok {
			return fmt.Errorf("register controller %s: output %s: %w by controller %s", name, out.Type, ErrOutputTaken, owner)
		}
	}
	for _, out := range outputs {
		e.owners[out.Type] = name
	}
	en := &entry{ctrl: c, inputs: inputs, rt: newRuntime(name, e.store, e.clk, outputs)}
	en.status.s.Name = name
	e.entries = append(e.entries, en)
	e.byName[name] = en
	return nil
}

// Run subscribes to every controller's inputs, runs each controller in its own goroutine and
// restarts failed ones. It returns nil once ctx is cancelled and every goroutine it started
// has exited; it can be called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return ErrEngineRunning
	}
	e.running = true
	entries := slices.Clone(e.entries)
	e.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // every goroutine below stops with ctx
		wg.Wait()
	}()

	// Subscribe before any controller starts, so that no change after its first
	// reconciliation can be missed.
	for _, en := range entries {
		for _, in := range en.inputs {
			ch, err := e.watch(ctx, in)
			if err != nil {
				if ctx.Err() != nil {
					return nil // cancelled before it started
				}
				return fmt.Errorf("controller %s: watch input %s %s: %w", en.ctrl.Name(), in.Type, in.Namespace, err)
			}
			wg.Go(func() { e.forward(ctx, in, ch, en.rt) })
		}
	}
	for _, en := range entries {
		wg.Go(func() { e.supervise(ctx, en) })
	}
	<-ctx.Done()
	return nil
}

// Status returns a snapshot of every controller's state, sorted by name.
func (e *Engine) Status() []ControllerStatus {
	e.mu.Lock()
	entries := slices.Clone(e.entries)
	e.mu.Unlock()
	out := make([]ControllerStatus, len(entries))
	for i, en := range entries {
		out[i] = en.status.get()
	}
	slices.SortFunc(out, func(a, b ControllerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Package configmgr owns a node's machine configuration: it loads it at boot, persists it,
// and applies new ones in the modes of `plinthctl apply-config` (auto, no-reboot, staged,
// try), refusing an invalid one with the validation messages and keeping the running one.
package configmgr

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/pkg/config"
)

// The apply modes.
const (
	ModeAuto     = "auto"
	ModeNoReboot = "no-reboot"
	ModeReboot   = "reboot"
	ModeStaged   = "staged"
	ModeTry      = "try"
)

// DefaultTryTimeout is how long a "try" configuration stays unless confirmed.
const DefaultTryTimeout = time.Minute

// ErrInvalid marks a configuration refused by decoding or validation.
var ErrInvalid = errors.New("invalid configuration")

// ErrNoConfig is returned (wrapped) by Boot when there is no configuration at all.
var ErrNoConfig = errors.New("no configuration")

// ErrNeedsReboot marks a no-reboot apply of a change that needs a reboot.
var ErrNeedsReboot = errors.New("the change needs a reboot")

// Manager holds the active configuration.
//
// Every configuration that becomes active (at boot, by an apply without a reboot, by a
// try, by the rollback of a try) gets the next version, taken under the manager's lock;
// Active returns the configuration and its version together. Readers that must follow the
// active configuration (the MachineConfig resource) read Active when OnChange tells them
// something changed: the order in which concurrent applies and rollbacks call OnChange
// then does not matter.
type Manager struct {
	dir   string
	mode  config.Mode
	clock clock.Clock
	log   *slog.Logger

	// OnChange is called after a configuration became active, with the active
	// configuration and its version at the time of the call. The calls come one at a time
	// and with growing versions: an activation overtaken by a newer one before its call is
	// not reported, so the last call always has the active configuration. OnChange runs
	// without m's lock, but an Apply from it would deadlock, and other Applies wait for it
	// to return: it should be quick, e.g. a non-blocking send on a 1-buffered channel.
	OnChange func(cfg *config.MachineConfig, version uint64)

	mu       sync.Mutex
	current  *config.MachineConfig // the stored configuration, returned by Current
	raw      []byte
	active   *config.MachineConfig // the running configuration, returned by Active
	version  uint64                // active's version; 0 before Boot
	tryTimer clock.Timer
	tryPrev  []byte
	stop     chan struct{}

	// notifyMu serialises the calls of OnChange; notified is the last version reported.
	notifyMu sync.Mutex
	notified uint64
}

// New returns a manager that stores its files in dir and validates for mode.
func New(dir string, mode config.Mode, clk clock.Clock, log *slog.Logger) *Manager {
	return &Manager{dir: dir, mode: mode, clock: clk, log: log, stop: make(chan struct{})}
}

func (m *Manager) activePath() string { return filepath.Join(m.dir, "config.yaml") }
func (m *Manager) stagedPath() string { return filepath.Join(m.dir, "config.staged.yaml") }

// Boot loads the configuration for this boot: a staged one first (it becomes active), else
// the stored one, else the file at seedPath (may be empty). The configuration is never
// taken from the environment: it holds the cluster's keys, and a process's environment is
// inherited by its children and readable in /proc.
// The result is validated; an invalid configuration is an error with the problems.
func (m *Manager) Boot(seedPath string) (*config.MachineConfig, error) {
	if data, err := os.ReadFile(m.stagedPath()); err == nil {
		m.log.Info("activating the staged configuration")
		if err := atomicfile.Write(m.activePath(), data, 0o600); err != nil {
			return nil, err
		}
		if err := os.Remove(m.stagedPath()); err != nil {
			return nil, fmt.Errorf("remove staged configuration: %w", err)
		}
	}
	data, source, err := m.seed(seedPath)
	if err != nil {
		return nil, err
	}
	cfg, err := m.parse(data, source)
	if err != nil {
		return nil, err
	}
	if source != m.activePath() {
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
		if err := atomicfile.Write(m.activePath(), data, 0o600); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	m.current, m.raw = cfg, data
	version := m.activate(cfg)
	m.mu.Unlock()
	// The boot configuration is the caller's starting point, not a change to report.
	m.notifyMu.Lock()
	m.notified = max(m.notified, version)
	m.notifyMu.Unlock()
	m.log.Info("configuration loaded", "source", source)
	return cfg, nil
}

func (m *Manager) seed(seedPath string) ([]byte, string, error) {
	data, err := os.ReadFile(m.activePath())
	if err == nil {
		return data, m.activePath(), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("read stored configuration: %w", err)
	}
	if seedPath == "" {
		return nil, "", fmt.Errorf("%w: none stored in %s and no --config file was given", ErrNoConfig, m.dir)
	}
	data, err = os.ReadFile(seedPath)
	if err != nil {
		return nil, "", fmt.Errorf("read configuration: %w", err)
	}
	return data, seedPath, nil
}

// StoreFirst validates data and stores it as the configuration the next boot uses, on a
// machine that has none (maintenance mode); it refuses when one is stored already.
func (m *Manager) StoreFirst(data []byte) error {
	if _, err := m.parse(data, "the configuration"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := os.Stat(m.activePath()); err == nil {
		return errors.New("a configuration is stored already")
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	return atomicfile.Write(m.activePath(), data, 0o600)
}

// Check parses and validates a configuration without storing it.
func (m *Manager) Check(data []byte) (*config.MachineConfig, error) {
	return m.parse(data, "the configuration")
}

func (m *Manager) parse(data []byte, source string) (*config.MachineConfig, error) {
	doc, err := config.Load(data, source)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalid, err)
	}
	if err := doc.Validate(m.mode); err != nil {
		return nil, fmt.Errorf("%w:\n%w", ErrInvalid, err)
	}
	return doc.Config, nil
}

// Current returns the active configuration and its bytes. After an apply that needs a
// reboot it is the configuration stored for the next boot; Active is the running one.
func (m *Manager) Current() (*config.MachineConfig, []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current, m.raw
}

// Active returns the configuration the node runs with and its version, read together
// under the manager's lock. The version grows by one with each activation (boot, apply
// without a reboot, try, rollback of a try); it is 0, with a nil configuration, before
// Boot. Active equals Current except between an apply that needs a reboot and the reboot.
func (m *Manager) Active() (*config.MachineConfig, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active, m.version
}

// activate makes cfg the running configuration under the next version; m.mu is held.
func (m *Manager) activate(cfg *config.MachineConfig) uint64 {
	m.version++
	m.active = cfg
	return m.version
}

// notify calls OnChange with the active configuration unless a call already reported it
// (or a newer one). It is called after each activation, without m.mu: whichever call
// comes last reads the last activation, so the calls end with the active configuration
// whatever order concurrent activations reach here in.
func (m *Manager) notify() {
	if m.OnChange == nil {
		return
	}
	m.notifyMu.Lock()
	defer m.notifyMu.Unlock()
	cfg, version := m.Active()
	if version <= m.notified {
		return
	}
	m.notified = version
	m.OnChange(cfg, version)
}

// Result says what an apply did.
type Result struct {
	// Mode is the mode used; auto resolves to no-reboot or reboot.
	Mode string
	// Diff is the unified diff between the active and the new configuration, secrets masked.
	Diff string
	// Message tells the user what happens next.
	Message string
	// RebootNeeded is set when the caller must reboot for the configuration to apply.
	RebootNeeded bool
}

// Apply validates data and applies it in mode. An invalid configuration, or one that
// needs a reboot in no-reboot or try mode, is refused and the active one stays. Any apply
// confirms a pending try.
func (m *Manager) Apply(data []byte, mode string, dryRun bool, tryTimeout time.Duration) (Result, error) {
	next, err := m.parse(data, "the new configuration")
	if err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	res, activated, err := m.apply(next, data, mode, dryRun, tryTimeout)
	m.mu.Unlock()
	if activated {
		m.notify()
	}
	return res, err
}

// apply does the work of Apply with m.mu held; it reports whether a configuration became
// active, so that OnChange is called after the lock is released.
func (m *Manager) apply(next *config.MachineConfig, data []byte, mode string, dryRun bool, tryTimeout time.Duration) (Result, bool, error) {
	res := Result{Diff: diffConfigs(m.current, next)}
	// Whether a reboot is needed is a question about the running configuration: after an
	// apply that waits for a reboot, the stored one is not running yet.
	running := m.active
	if running == nil {
		running = m.current
	}
	reason := rebootReason(m.mode, running, next)
	reboot := reason != ""
	if mode == ModeTry && m.current != m.active {
		return res, false, errors.New("a configuration applied earlier waits for a reboot; reboot first, or apply with --mode auto or no-reboot")
	}
	switch mode {
	case "", ModeAuto:
		res.Mode = ModeNoReboot
		if reboot {
			res.Mode = ModeReboot
		}
	case ModeNoReboot, ModeTry:
		res.Mode = mode
		if reboot {
			return res, false, fmt.Errorf("%w (%s); apply it with --mode auto, or --mode staged and reboot later", ErrNeedsReboot, reason)
		}
	case ModeStaged:
		res.Mode = mode
	default:
		return Result{}, false, fmt.Errorf("unknown mode %q: use auto, no-reboot, staged or try", mode)
	}
	if dryRun {
		res.Message = "dry run: nothing was changed"
		return res, false, nil
	}
	if m.tryTimer != nil {
		m.tryTimer.Stop()
		m.tryTimer, m.tryPrev = nil, nil
		m.log.Info("the configuration on trial is confirmed by a new apply")
	}
	switch res.Mode {
	case ModeStaged:
		if err := atomicfile.Write(m.stagedPath(), data, 0o600); err != nil {
			return res, false, err
		}
		res.Message = "staged: the configuration applies at the next reboot"
		return res, false, nil
	case ModeReboot:
		// Written now, used after the reboot: the running services keep the old one.
		if err := atomicfile.Write(m.activePath(), data, 0o600); err != nil {
			return res, false, err
		}
		m.current, m.raw = next, data
		res.RebootNeeded = true
		res.Message = "applied; the node reboots to use it (" + reason + ")"
		return res, false, nil
	case ModeTry:
		if tryTimeout <= 0 {
			tryTimeout = DefaultTryTimeout
		}
		// The trial configuration lives in memory only: if the node reboots during the
		// trial, it comes back with the previous one.
		m.tryPrev = m.raw
		m.current, m.raw = next, data
		m.activate(next)
		m.tryTimer = m.clock.NewTimer(tryTimeout)
		go m.waitTry(m.tryTimer)
		res.Message = fmt.Sprintf("applied on trial: it is rolled back in %s unless confirmed by another apply-config", tryTimeout)
		return res, true, nil
	}
	if err := atomicfile.Write(m.activePath(), data, 0o600); err != nil {
		return res, false, err
	}
	m.current, m.raw = next, data
	m.activate(next)
	res.Message = "applied without a reboot"
	return res, true, nil
}

// waitTry rolls back the trial configuration when its timer fires, unless it was confirmed.
func (m *Manager) waitTry(t clock.Timer) {
	select {
	case <-m.stop:
		return
	case <-t.C():
	}
	m.mu.Lock()
	if m.tryTimer != t {
		m.mu.Unlock()
		return // confirmed or replaced
	}
	prev := m.tryPrev
	m.tryTimer, m.tryPrev = nil, nil
	cfg, err := m.parse(prev, "the previous configuration")
	if err != nil {
		m.mu.Unlock()
		m.log.Error("cannot roll back the configuration on trial", "error", err)
		return
	}
	m.log.Info("the configuration on trial was not confirmed: rolling back")
	m.current, m.raw = cfg, prev
	m.activate(cfg)
	m.mu.Unlock()
	m.notify()
}

// Close stops a pending trial timer's goroutine.
func (m *Manager) Close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
}

// rebootReason says why moving from a to b on a platform validated as mode needs a reboot
// (empty: it does not): a change of machine type, of the install settings where the OS is
// installed (not in Docker: the node image is the installed OS, and nothing there reads
// machine.install), or of the cluster's identity and CAs.
func rebootReason(mode config.Mode, a, b *config.MachineConfig) string {
	if a == nil || b == nil {
		return "machine type, install settings or cluster identity changed"
	}
	switch {
	case a.Machine.Type != b.Machine.Type:
		return "machine.type changed"
	case mode != config.ModeDocker && !equalYAML(a.Machine.Install, b.Machine.Install):
		return "machine.install changed"
	case a.Cluster.ID != b.Cluster.ID || a.Cluster.Secret != b.Cluster.Secret:
		return "the cluster identity changed"
	case !bytes.Equal(a.Machine.CA.Crt, b.Machine.CA.Crt) || !bytes.Equal(a.Cluster.CA.Crt, b.Cluster.CA.Crt):
		return "a CA changed"
	}
	return ""
}

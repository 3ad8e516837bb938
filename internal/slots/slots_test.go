package slots

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/osimage/artifact"
	"github.com/plinthos/plinth/internal/osimage/esp"
)

// testDisk is a disk booted from slot A: an EFI directory as the installer leaves it, root
// partitions as files, and an empty efivarfs directory.
func testDisk(t *testing.T) Disk {
	t.Helper()
	dir := t.TempDir()
	espDir := filepath.Join(dir, "esp")
	entry := esp.Entry{Slot: "A", Title: "Plinth v1", Version: "v1", Options: esp.KernelArgs("A") + " plinth.trust=abc"}
	spec := esp.Spec{Entries: []esp.Entry{entry}}
	for p, data := range map[string]string{
		esp.ConfigPath: spec.LoaderConfig(),
		esp.EntriesDir + "/" + esp.EntryName("A"): entry.Config(),
		"/plinth/A/vmlinuz":                       "old kernel",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(espDir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(espDir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := Disk{Booted: "A", Roots: map[string]string{}, EFIVars: filepath.Join(dir, "efivars"),
		ESP: func() (string, func() error, error) { return espDir, func() error { return nil }, nil }}
	for _, s := range []string{"A", "B"} {
		p := filepath.Join(dir, "root-"+s)
		if err := os.WriteFile(p, bytes.Repeat([]byte(s), 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		d.Roots[s] = p
	}
	if err := os.Mkdir(d.EFIVars, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func testArtifact(t *testing.T, version string, rootSize int) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string][]byte{artifact.KernelName: []byte("new kernel"), artifact.InitramfsName: []byte("new initramfs"),
		artifact.RootfsName: bytes.Repeat([]byte("r"), rootSize)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := artifact.Write(&buf, dir, artifact.Manifest{Version: version, Profile: "os"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestStageArmCommit(t *testing.T) {
	d := testDisk(t)
	espDir, _, _ := d.ESP()
	m, slot, err := d.Stage(context.Background(), bytes.NewReader(testArtifact(t, "v2", 4096)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "v2" || slot != "B" {
		t.Fatalf("staged %s into %s", m.Version, slot)
	}
	root, _ := os.ReadFile(d.Roots["B"])
	if !bytes.HasPrefix(root, bytes.Repeat([]byte("r"), 4096)) || root[4096] != 'B' {
		t.Error("slot B's partition does not start with the new root filesystem")
	}
	if a, _ := os.ReadFile(d.Roots["A"]); a[0] != 'A' {
		t.Error("the booted slot's partition was written")
	}
	if k, _ := os.ReadFile(filepath.Join(espDir, "plinth/B/vmlinuz")); string(k) != "new kernel" {
		t.Errorf("slot B's kernel %q", k)
	}
	slots, def, err := d.Slots()
	if err != nil {
		t.Fatal(err)
	}
	if def != "A" || slots[1].Version != "v2" || slots[1].Options != "plinth.slot=B console=tty0 console=ttyS0 panic=10 plinth.trust=abc" {
		t.Errorf("after staging: default %s, slots %+v", def, slots)
	}
	if armed, _ := d.Armed(); armed != "" {
		t.Errorf("staging armed %q", armed)
	}

	if err := d.ArmTrial("B"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(d.EFIVars, "LoaderEntryOneShot-"+LoaderGUID))
	if want := []byte{7, 0, 0, 0, 'p', 0, 'l', 0}; !bytes.HasPrefix(raw, want) || !bytes.HasSuffix(raw, []byte{0, 0}) {
		t.Errorf("one-shot variable % x", raw)
	}
	if armed, _ := d.Armed(); armed != "B" {
		t.Errorf("armed %q", armed)
	}
	if err := d.SetDefault("B"); err != nil {
		t.Fatal(err)
	}
	if conf, _ := os.ReadFile(filepath.Join(espDir, esp.ConfigPath)); !strings.Contains(string(conf), "default plinth-b.conf\neditor no\n") {
		t.Errorf("loader.conf:\n%s", conf)
	}
	if _, def, _ := d.Slots(); def != "B" {
		t.Errorf("default %s after SetDefault(B)", def)
	}
	// The firmware variable wins over loader.conf.
	if err := d.vars().set(VarDefault, esp.EntryName("A")); err != nil {
		t.Fatal(err)
	}
	if _, def, _ := d.Slots(); def != "A" {
		t.Errorf("default %s with the variable naming A", def)
	}
	if err := d.Disarm(); err != nil {
		t.Fatal(err)
	}
	if armed, _ := d.Armed(); armed != "" {
		t.Errorf("armed %q after Disarm", armed)
	}
}

func TestStageRefuses(t *testing.T) {
	d := testDisk(t)
	espDir, _, _ := d.ESP()
	before, _ := os.ReadFile(d.Roots["B"])
	// A root filesystem larger than the partition is refused before anything is written.
	if _, _, err := d.Stage(context.Background(), bytes.NewReader(testArtifact(t, "v2", 2<<20)), nil); err == nil || !strings.Contains(err.Error(), "holds 1 MiB") {
		t.Errorf("too large: %v", err)
	}
	// So is one the caller refuses.
	no := errors.New("refused")
	if _, _, err := d.Stage(context.Background(), bytes.NewReader(testArtifact(t, "v2", 10)), func(artifact.Manifest) error { return no }); !errors.Is(err, no) {
		t.Errorf("refused: %v", err)
	}
	if after, _ := os.ReadFile(d.Roots["B"]); !bytes.Equal(before, after) {
		t.Error("a refused artifact changed slot B")
	}
	if _, err := os.Stat(filepath.Join(espDir, esp.EntriesDir, esp.EntryName("B"))); err == nil {
		t.Error("a refused artifact made an entry")
	}
	// A corrupt one writes the partition but no entry: nothing boots it.
	data := testArtifact(t, "v2", 4096)
	i := bytes.LastIndex(data, []byte("rrrr"))
	data[i] = 'x'
	if _, _, err := d.Stage(context.Background(), bytes.NewReader(data), nil); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt: %v", err)
	}
	if _, err := os.Stat(filepath.Join(espDir, esp.EntriesDir, esp.EntryName("B"))); err == nil {
		t.Error("a corrupt artifact made an entry")
	}
	if err := d.SetDefault("B"); err == nil || !strings.Contains(err.Error(), "no boot entry") {
		t.Errorf("SetDefault of an empty slot: %v", err)
	}
}

func TestWithSlot(t *testing.T) {
	for in, want := range map[string]string{
		"plinth.slot=A console=ttyS0": "plinth.slot=B console=ttyS0",
		"console=ttyS0":               "plinth.slot=B console=ttyS0",
	} {
		if got := withSlot(in, "B"); got != want {
			t.Errorf("withSlot(%q) = %q, want %q", in, got, want)
		}
	}
}

// A slot that held a version loses its entry as soon as a new artifact starts overwriting
// it: a corrupt upgrade leaves nothing to roll back to there, rather than an entry that
// boots garbage.
func TestStageDropsTheEntryOfTheSlotItRewrites(t *testing.T) {
	d := testDisk(t)
	espDir, _, _ := d.ESP()
	if _, _, err := d.Stage(context.Background(), bytes.NewReader(testArtifact(t, "v2", 4096)), nil); err != nil {
		t.Fatal(err)
	}
	entryB := filepath.Join(espDir, esp.EntriesDir, esp.EntryName("B"))
	if _, err := os.Stat(entryB); err != nil {
		t.Fatal(err)
	}
	// A refused artifact keeps it...
	if _, _, err := d.Stage(context.Background(), bytes.NewReader(testArtifact(t, "v3", 2<<20)), nil); err == nil {
		t.Fatal("a root filesystem larger than the slot was accepted")
	}
	if _, err := os.Stat(entryB); err != nil {
		t.Errorf("a refused artifact removed slot B's entry: %v", err)
	}
	// ...a corrupt one, whose writing began, does not.
	data := testArtifact(t, "v3", 4096)
	data[bytes.LastIndex(data, []byte("rrrr"))] = 'x'
	if _, _, err := d.Stage(context.Background(), bytes.NewReader(data), nil); err == nil {
		t.Fatal("a corrupt artifact was staged")
	}
	if _, err := os.Stat(entryB); err == nil {
		t.Error("slot B keeps its entry after a corrupt artifact overwrote its root")
	}
	if err := d.SetDefault("B"); err == nil {
		t.Error("SetDefault of the overwritten slot passed")
	}
}

package powerbutton

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func event(typ, code uint16, value int32) []byte {
	b := make([]byte, eventSize)
	binary.LittleEndian.PutUint16(b[16:], typ)
	binary.LittleEndian.PutUint16(b[18:], code)
	binary.LittleEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestPresses(t *testing.T) {
	var in bytes.Buffer
	in.Write(event(evKey, keyPower, 1)) // press
	in.Write(event(0, 0, 0))            // sync
	in.Write(event(evKey, keyPower, 0)) // release
	in.Write(event(evKey, 30, 1))       // another key
	in.Write(event(evKey, keyPower, 1)) // press again
	n := 0
	if err := Presses(&in, func() { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d presses, want 2", n)
	}
}

func TestDevices(t *testing.T) {
	root := t.TempDir()
	for dev, name := range map[string]string{"event0": "Power Button", "event1": "AT Translated Set 2 keyboard", "event2": "Power Button", "mouse0": "Power Button"} {
		if err := os.MkdirAll(filepath.Join(root, dev, "device"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dev, "device", "name"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Devices(root)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"/dev/input/event0", "/dev/input/event2"}; !slices.Equal(got, want) {
		t.Errorf("devices %v, want %v", got, want)
	}
}

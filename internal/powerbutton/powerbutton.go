// Package powerbutton watches the machine's power button (the ACPI button, as the kernel's
// input layer shows it) and reports each press, so that pressing it — or a hypervisor's
// "power down" (QEMU's system_powerdown) — shuts the node down cleanly.
package powerbutton

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// The input event codes of a power button press (linux/input-event-codes.h).
const (
	evKey    = 0x01
	keyPower = 116
)

// eventSize is struct input_event on 64-bit Linux: a timeval (16 bytes), type, code
// (2 bytes each) and value (4 bytes).
const eventSize = 24

// Devices returns the event devices (/dev/input/eventN) whose name in sysClassInput
// (/sys/class/input) says they are a power button.
func Devices(sysClassInput string) ([]string, error) {
	entries, err := os.ReadDir(sysClassInput)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "event") {
			continue
		}
		name, err := os.ReadFile(filepath.Join(sysClassInput, e.Name(), "device", "name"))
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(name)) == "Power Button" {
			out = append(out, "/dev/input/"+e.Name())
		}
	}
	return out, nil
}

// Presses reads input events from r and calls pressed for each power-button press, until
// r fails or ends (its error is returned; io.EOF and a closed file are a normal end).
func Presses(r io.Reader, pressed func()) error {
	buf := make([]byte, eventSize)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
		typ := binary.LittleEndian.Uint16(buf[16:])
		code := binary.LittleEndian.Uint16(buf[18:])
		value := int32(binary.LittleEndian.Uint32(buf[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			pressed()
		}
	}
}

// Watch watches every power button of the machine until ctx ends, calling pressed for
// each press. It returns at once when there is none.
func Watch(ctx context.Context, sysClassInput string, pressed func()) error {
	devs, err := Devices(sysClassInput)
	if err != nil {
		return fmt.Errorf("find the power button: %w", err)
	}
	var wg sync.WaitGroup
	var errs []error
	var mu sync.Mutex
	for _, d := range devs {
		f, err := os.Open(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		wg.Go(func() {
			if err := Presses(f, pressed); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", d, err))
				mu.Unlock()
			}
		})
		go func() { <-ctx.Done(); f.Close() }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

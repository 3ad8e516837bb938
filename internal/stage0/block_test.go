package stage0

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
)

// fakeBlockTree is a sysfs with two disks: vda with EFI, ROOT-B and an unnamed partition,
// and sda with no partitions; ROOT-A is missing.
func fakeBlockTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "class", "block")
	addBlock(t, dir, "vda", disk("vda", 253, 0))
	addBlock(t, dir, "vda1", part("vda1", 253, 1, 1, "EFI"))
	addBlock(t, dir, "vda3", part("vda3", 253, 3, 3, "ROOT-B"))
	addBlock(t, dir, "vda4", part("vda4", 253, 4, 4, ""))
	addBlock(t, dir, "sda", disk("sda", 8, 0))
	// A device going away between readdir and reading its uevent: skipped.
	writeFile(t, filepath.Join(dir, "sr0", "not-uevent"), "")
	return dir
}

func TestScanBlockDevices(t *testing.T) {
	devs, err := ScanBlockDevices(fakeBlockTree(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []BlockDevice{
		{Name: "sda", DevName: "sda", DevType: "disk", Major: 8},
		{Name: "vda", DevName: "vda", DevType: "disk", Major: 253},
		{Name: "vda1", DevName: "vda1", DevType: "partition", PartName: "EFI", Major: 253, Minor: 1},
		{Name: "vda3", DevName: "vda3", DevType: "partition", PartName: "ROOT-B", Major: 253, Minor: 3},
		{Name: "vda4", DevName: "vda4", DevType: "partition", Major: 253, Minor: 4},
	}
	if !reflect.DeepEqual(devs, want) {
		t.Errorf("got %+v\nwant %+v", devs, want)
	}
}

func TestWaitFindsPresentPartition(t *testing.T) {
	fake := clock.NewFake(time.Unix(0, 0))
	w := Waiter{Dir: fakeBlockTree(t), Clock: fake, Poll: time.Second}
	d, err := w.Wait(context.Background(), "ROOT-B", 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.DevName != "vda3" || d.Major != 253 || d.Minor != 3 {
		t.Errorf("got %+v", d)
	}
}

type waitResult struct {
	dev BlockDevice
	err error
}

// drive advances the fake clock by poll each time the waiter is blocked on its timer,
// calling before(n) ahead of the n-th advance, until the waiter returns.
func drive(t *testing.T, fake *clock.Fake, poll time.Duration, done <-chan waitResult, before func(n int)) waitResult {
	t.Helper()
	n := 0
	for {
		select {
		case r := <-done:
			return r
		default:
		}
		if fake.Pending() == 0 {
			runtime.Gosched()
			continue
		}
		n++
		if before != nil {
			before(n)
		}
		fake.Advance(poll)
	}
}

func TestWaitSeesPartitionAppear(t *testing.T) {
	dir := fakeBlockTree(t)
	fake := clock.NewFake(time.Unix(0, 0))
	const poll = 100 * time.Millisecond
	w := Waiter{Dir: dir, Clock: fake, Poll: poll}
	done := make(chan waitResult, 1)
	go func() {
		d, err := w.Wait(context.Background(), "ROOT-A", 30*time.Second)
		done <- waitResult{d, err}
	}()
	r := drive(t, fake, poll, done, func(n int) {
		if n == 3 {
			// The disk's driver was loaded late: the partition shows up during the wait.
			addBlock(t, dir, "vdb", disk("vdb", 253, 16))
			addBlock(t, dir, "vdb2", part("vdb2", 253, 18, 2, "ROOT-A"))
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.dev.Name != "vdb2" || r.dev.Minor != 18 {
		t.Errorf("got %+v", r.dev)
	}
	if got := fake.Now().Sub(time.Unix(0, 0)); got != 3*poll {
		t.Errorf("found after %s of fake time, want %s", got, 3*poll)
	}
}

func TestWaitTimesOutListingWhatItSaw(t *testing.T) {
	dir := fakeBlockTree(t)
	fake := clock.NewFake(time.Unix(0, 0))
	const poll = time.Second
	w := Waiter{Dir: dir, Clock: fake, Poll: poll}
	done := make(chan waitResult, 1)
	go func() {
		d, err := w.Wait(context.Background(), "ROOT-A", 5*time.Second)
		done <- waitResult{d, err}
	}()
	r := drive(t, fake, poll, done, nil)
	var nf *RootNotFoundError
	if !errors.As(r.err, &nf) {
		t.Fatalf("error = %v, want RootNotFoundError", r.err)
	}
	if got := fake.Now().Sub(time.Unix(0, 0)); got != 5*time.Second {
		t.Errorf("gave up after %s of fake time, want 5s", got)
	}
	want := "no partition named ROOT-A appeared within 5s\n" +
		`block devices seen: sda (disk), vda (disk), vda1 (partition "EFI"), vda3 (partition "ROOT-B"), vda4 (partition, no name)`
	if r.err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", r.err, want)
	}
}

func TestWaitNoDevices(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "block")
	writeFile(t, filepath.Join(dir, ".keep"), "")
	w := Waiter{Dir: dir, Clock: clock.NewFake(time.Unix(0, 0)), Poll: time.Second}
	_, err := w.Wait(context.Background(), "ROOT-A", 0)
	if err == nil || !strings.Contains(err.Error(), "block devices seen: none (the disk's driver is probably not loaded)") {
		t.Errorf("error = %v", err)
	}

	w.Dir = filepath.Join(t.TempDir(), "missing")
	_, err = w.Wait(context.Background(), "ROOT-A", 0)
	if err == nil || !strings.Contains(err.Error(), "block devices: list block devices: open") {
		t.Errorf("error = %v", err)
	}
}

func TestWaitAmbiguous(t *testing.T) {
	dir := fakeBlockTree(t)
	addBlock(t, dir, "sda3", part("sda3", 8, 3, 3, "ROOT-B"))
	w := Waiter{Dir: dir, Clock: clock.NewFake(time.Unix(0, 0)), Poll: time.Second}
	_, err := w.Wait(context.Background(), "ROOT-B", time.Minute)
	var amb *AmbiguousRootError
	if !errors.As(err, &amb) || !strings.Contains(err.Error(), "several partitions are named ROOT-B (sda3, vda3)") {
		t.Errorf("error = %v", err)
	}
}

func TestWaitCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := Waiter{Dir: fakeBlockTree(t), Clock: clock.NewFake(time.Unix(0, 0)), Poll: time.Second}
	if _, err := w.Wait(ctx, "ROOT-A", time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

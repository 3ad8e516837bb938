package diskimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

func TestLayout(t *testing.T) {
	l, err := NewLayout(64*MiB, []byte("seed"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name        string
		start, size int64
	}{{EFI, MiB, 128 * MiB}, {RootA, 129 * MiB, 64 * MiB}, {RootB, 193 * MiB, 64 * MiB}, {Meta, 257 * MiB, MiB},
		{State, 258 * MiB, 64 * MiB}, {Ephemeral, 322 * MiB, 256 * MiB}}
	for i, w := range want {
		p := l.Partitions[i]
		if p.Name != w.name || p.Start != w.start || p.Size != w.size {
			t.Errorf("partition %d: %+v, want %+v", i, p, w)
		}
	}
	if l.Size != 579*MiB {
		t.Errorf("disk size %d MiB", l.Size/MiB)
	}
	l2, _ := NewLayout(64*MiB, []byte("seed"))
	l3, _ := NewLayout(64*MiB, []byte("other"))
	if l.GUID != l2.GUID || l.Partitions[1].GUID != l2.Partitions[1].GUID {
		t.Error("GUIDs differ for the same seed")
	}
	if l.GUID == l3.GUID || l.Partitions[1].GUID == l3.Partitions[1].GUID || l.Partitions[1].GUID == l.Partitions[2].GUID {
		t.Error("GUIDs collide")
	}
	if _, err := NewLayout(MiB+1, nil); err == nil {
		t.Error("unaligned slot size accepted")
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.squashfs")
	payload := bytes.Repeat([]byte("hsqs"), 3000)
	os.WriteFile(root, payload, 0o644)
	l, err := NewLayout(4*MiB, []byte("seed"))
	if err != nil {
		t.Fatal(err)
	}
	imgs := []string{filepath.Join(dir, "a.raw"), filepath.Join(dir, "b.raw")}
	for _, img := range imgs {
		if err := Write(context.Background(), img, l, map[string]string{RootA: root}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(imgs[0])
	b, _ := os.ReadFile(imgs[1])
	if !bytes.Equal(a, b) {
		t.Fatal("two images from the same inputs differ")
	}
	if int64(len(a)) != l.Size {
		t.Fatalf("image is %d bytes, want %d", len(a), l.Size)
	}
	rootA, _ := l.Find(RootA)
	if !bytes.Equal(a[rootA.Start:rootA.Start+int64(len(payload))], payload) {
		t.Fatal("ROOT-A does not start with the squashfs")
	}

	f, err := os.Open(imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := gpt.Read(f, 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	if table.GUID != l.GUID && !equalFold(table.GUID, l.GUID) {
		t.Errorf("disk GUID %s, want %s", table.GUID, l.GUID)
	}
	if len(table.Partitions) != 6 {
		t.Fatalf("%d partitions", len(table.Partitions))
	}
	for i, p := range table.Partitions {
		w := l.Partitions[i]
		if p.Name != w.Name || int64(p.Start)*512 != w.Start || int64(p.End+1)*512 != w.Start+w.Size || !equalFold(p.GUID, w.GUID) || !equalFold(string(p.Type), string(w.Type)) {
			t.Errorf("on disk %d: %s start %d end %d guid %s type %s; want %+v", i, p.Name, p.Start, p.End, p.GUID, p.Type, w)
		}
	}
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

func TestWriteTooBig(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2*MiB), 0o644)
	l, _ := NewLayout(MiB, nil)
	if err := Write(context.Background(), filepath.Join(dir, "x.raw"), l, map[string]string{RootA: big}); err == nil {
		t.Fatal("oversized root accepted")
	}
}

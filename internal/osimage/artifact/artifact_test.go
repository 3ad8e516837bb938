package artifact

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var payload = map[string]string{KernelName: "kernel bytes", InitramfsName: "initramfs bytes", RootfsName: strings.Repeat("squash", 10000)}

func build(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, writeDir(t, payload), Manifest{Version: "v1.2.3", Profile: "os", KernelRelease: "6.1.0-57-cloud-amd64"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// memSink keeps what it takes.
type memSink struct {
	accepted Manifest
	got      map[string]string
	refuse   error
}

func (s *memSink) Accept(m Manifest) error { s.accepted = m; return s.refuse }
func (s *memSink) Take(name string, _ File, r io.Reader) error {
	b, err := io.ReadAll(r)
	if s.got == nil {
		s.got = map[string]string{}
	}
	s.got[name] = string(b)
	return err
}

func TestRoundTrip(t *testing.T) {
	data := build(t)
	var s memSink
	m, err := Read(bytes.NewReader(data), &s)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "v1.2.3" || m.Format != Format || s.accepted.KernelRelease != "6.1.0-57-cloud-amd64" {
		t.Errorf("manifest %+v", m)
	}
	for name, want := range payload {
		if s.got[name] != want {
			t.Errorf("%s: got %d bytes, want %d", name, len(s.got[name]), len(want))
		}
	}
	if again := build(t); !bytes.Equal(again, data) {
		t.Error("two artifacts of the same files differ")
	}
}

func TestReadRefuses(t *testing.T) {
	good := build(t)
	// Flip a byte inside the root filesystem's content: the last member's data.
	corrupt := bytes.Clone(good)
	i := bytes.LastIndex(corrupt, []byte("squash"))
	corrupt[i] = 'X'
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"corrupt", "the artifact is corrupt", corrupt},
		{"truncated", "", good[:len(good)/2]},
		{"not a tar", "is it an upgrade artifact", []byte(strings.Repeat("hello world ", 100))},
		{"empty", "truncated", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.data), &memSink{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one saying %q", err, c.want)
			}
		})
	}
	t.Run("refused by the sink", func(t *testing.T) {
		s := &memSink{refuse: errors.New("no room")}
		if _, err := Read(bytes.NewReader(good), s); err == nil || err.Error() != "no room" || s.got != nil {
			t.Errorf("err = %v, took %v", err, s.got)
		}
	})
	t.Run("extra member", func(t *testing.T) {
		var buf bytes.Buffer
		buf.Write(good[:len(good)-1024]) // without the two zero blocks that end a tar
		tw := tar.NewWriter(&buf)
		_ = tw.WriteHeader(&tar.Header{Name: "extra", Size: 1, Mode: 0o644, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("x"))
		_ = tw.Close()
		if _, err := Read(bytes.NewReader(buf.Bytes()), &memSink{}); err == nil || !strings.Contains(err.Error(), `unexpected member "extra"`) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestValidate(t *testing.T) {
	ok := Manifest{Format: Format, Version: "v1", Files: map[string]File{}}
	for _, n := range FileNames {
		ok.Files[n] = File{Size: 1, SHA256: strings.Repeat("a", 64)}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.Version = "v1\nx"
	if bad.Validate() == nil {
		t.Error("a version with a line break passed")
	}
	bad = ok
	bad.Format = 2
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "format 2") {
		t.Errorf("format: %v", err)
	}
}

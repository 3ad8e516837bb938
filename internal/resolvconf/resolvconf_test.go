package resolvconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestRender(t *testing.T) {
	got := string(Render(addrs("192.0.2.53", "192.0.2.53", "2001:db8::53", "192.0.2.54", "192.0.2.55"), []string{"a.example.", "b.example", "a.example", ""}))
	want := "# Written by Plinth from machine.network.nameservers or DHCP.\n" +
		"nameserver 192.0.2.53\nnameserver 2001:db8::53\nnameserver 192.0.2.54\nsearch a.example b.example\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	for i, want := range []bool{true, false} {
		changed, err := Write(p, addrs("192.0.2.53"), nil)
		if err != nil || changed != want {
			t.Errorf("write %d: changed %v, error %v; want changed %v", i, changed, err, want)
		}
	}
	info, err := os.Stat(p)
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("mode: %v %v", info, err)
	}
}

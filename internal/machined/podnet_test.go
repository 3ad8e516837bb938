package machined

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The OS kernel has no XFRM: a netlink handle that opens it fails there ("protocol not
// supported"), and the pod network's service failed on every start, leaving a VM's node
// NotReady. The handle must open routing netlink only.
func TestPodNetHandleOpensRoutingOnly(t *testing.T) {
	h, err := podNetHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !h.SupportsNetlinkFamily(unix.NETLINK_ROUTE) {
		t.Error("the handle does not open routing netlink")
	}
	for _, f := range []struct {
		name   string
		family int
	}{{"XFRM", unix.NETLINK_XFRM}, {"netfilter", unix.NETLINK_NETFILTER}} {
		if h.SupportsNetlinkFamily(f.family) {
			t.Errorf("the handle opens %s netlink, which the OS kernel may lack", f.name)
		}
	}
}

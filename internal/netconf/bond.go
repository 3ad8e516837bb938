package netconf

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/plinthos/plinth/pkg/config"
)

// ensureBond returns the bond name as b configures it, creating it if needed, with its
// members enslaved. A bond of another mode is made again (the kernel changes the mode of
// a bond only without members); links enslaved elsewhere are moved to it.
func ensureBond(h *Handle, name string, b *config.Bond) (netlink.Link, error) {
	mode := netlink.StringToBondMode(b.Mode)
	if mode == netlink.BOND_MODE_UNKNOWN {
		return nil, fmt.Errorf("unknown bonding mode %q", b.Mode)
	}
	want := newBond(name, mode, b)
	var old *netlink.Bond
	if l, err := h.LinkByName(name); err == nil {
		var ok bool
		if old, ok = l.(*netlink.Bond); !ok {
			return nil, fmt.Errorf("link %s exists and is not a bond", name)
		}
		if old.Mode != mode {
			if err := h.LinkDel(l); err != nil {
				return nil, fmt.Errorf("remove bond %s of mode %s to make it %s: %w", name, old.Mode, b.Mode, err)
			}
			old = nil
		}
	}
	switch {
	case old == nil:
		if err := h.LinkAdd(want); err != nil {
			return nil, fmt.Errorf("create bond %s: %w", name, err)
		}
	case (want.Miimon >= 0 && old.Miimon != want.Miimon) || (want.LacpRate >= 0 && old.LacpRate != want.LacpRate):
		// Monitoring and the LACP rate follow the configuration on an existing bond too.
		set := newBond(name, -1, b)
		if set.Miimon == old.Miimon {
			set.Miimon = -1
		}
		if set.LacpRate == old.LacpRate {
			set.LacpRate = -1
		}
		if err := h.LinkModify(set); err != nil {
			return nil, fmt.Errorf("set bond %s: %w", name, err)
		}
	}
	bond, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("bond %s: %w", name, err)
	}
	var errs []error
	for _, m := range b.Interfaces {
		if err := enslave(h, bond, m); err != nil {
			errs = append(errs, fmt.Errorf("member %s: %w", m, err))
		}
	}
	return bond, errors.Join(errs...)
}

// newBond is the netlink bond name of mode (-1: left as it is) with b's settings.
func newBond(name string, mode netlink.BondMode, b *config.Bond) *netlink.Bond {
	bond := netlink.NewLinkBond(netlink.LinkAttrs{Name: name})
	bond.Mode = mode
	if b.MIIMon > 0 {
		bond.Miimon = int(b.MIIMon)
	}
	if b.LACPRate != "" {
		bond.LacpRate = netlink.StringToBondLacpRate(b.LACPRate)
	}
	return bond
}

// enslave makes the link named member a member of bond: the kernel wants it down for
// that; it is brought up again as a member.
func enslave(h *Handle, bond netlink.Link, member string) error {
	link, err := h.LinkByName(member)
	if err != nil {
		return fmt.Errorf("no such link (the links are %s): %w", linkNames(h), err)
	}
	if link.Attrs().MasterIndex != bond.Attrs().Index {
		if err := h.LinkSetDown(link); err != nil {
			return fmt.Errorf("bring it down to enslave it: %w", err)
		}
		if err := h.LinkSetMasterByIndex(link, bond.Attrs().Index); err != nil {
			return fmt.Errorf("enslave it to %s: %w", bond.Attrs().Name, err)
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 || link.Attrs().MasterIndex != bond.Attrs().Index {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("bring it up: %w", err)
		}
	}
	return nil
}

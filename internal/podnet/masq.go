package podnet

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// MasqChain is the nat chain in which the pod network masquerades pods' traffic that leaves
// it (to the node's network, to other hosts), as flanneld's --ip-masq does: traffic between
// pods keeps its addresses.
const MasqChain = "PLINTH-POD-MASQ"

// Iptables runs iptables and ip6tables.
type Iptables struct {
	// Prefix, when set, is run with the iptables command as its arguments (a test runs the
	// commands in its own network namespace with `ip netns exec NAME`).
	Prefix []string
}

// run runs one iptables command (waiting for the xtables lock) and returns its error
// output with its error.
func (t Iptables) run(ctx context.Context, cmd string, args ...string) error {
	argv := append(append(append([]string{}, t.Prefix...), cmd, "-w", "5"), args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Masquerade writes MasqChain for the cluster's pod networks (one per family) and jumps to
// it from the nat table's POSTROUTING: traffic from a pod network to anywhere but the pod
// network and multicast goes out with the node's address. The chain is rewritten whole,
// so a changed pod network replaces the old rules.
func (t Iptables) Masquerade(ctx context.Context, networks []netip.Prefix) error {
	for _, n := range networks {
		cmd, multicast := "iptables", "224.0.0.0/4"
		if !n.Addr().Is4() {
			cmd, multicast = "ip6tables", "ff00::/8"
		}
		net := n.Masked().String()
		// -N fails when the chain exists; -F then empties it either way.
		_ = t.run(ctx, cmd, "-t", "nat", "-N", MasqChain)
		rules := [][]string{
			{"-t", "nat", "-F", MasqChain},
			{"-t", "nat", "-A", MasqChain, "!", "-s", net, "-j", "RETURN"},
			{"-t", "nat", "-A", MasqChain, "-d", net, "-j", "RETURN"},
			{"-t", "nat", "-A", MasqChain, "-d", multicast, "-j", "RETURN"},
			{"-t", "nat", "-A", MasqChain, "-j", "MASQUERADE", "--random-fully"},
		}
		for _, r := range rules {
			if err := t.run(ctx, cmd, r...); err != nil {
				return err
			}
		}
		jump := []string{"POSTROUTING", "-m", "comment", "--comment", "plinth pod network: masquerade what leaves it", "-j", MasqChain}
		if t.run(ctx, cmd, append([]string{"-t", "nat", "-C"}, jump...)...) != nil {
			if err := t.run(ctx, cmd, append([]string{"-t", "nat", "-A"}, jump...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

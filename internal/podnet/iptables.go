package podnet

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// The chains the pod network writes.
const (
	// MasqChain (nat) masquerades pods' traffic that leaves the pod network (to the node's
	// network, to other hosts), as flanneld's --ip-masq does: traffic between pods keeps
	// its addresses.
	MasqChain = "PLINTH-POD-MASQ"
	// ServicesChain (filter) rejects traffic to a Service address that kube-proxy did not
	// translate.
	ServicesChain = "PLINTH-SERVICES"
)

// Iptables runs iptables and ip6tables.
type Iptables struct {
	// Prefix, when set, is run with the iptables command as its arguments (a test runs the
	// commands in its own network namespace with `ip netns exec NAME`).
	Prefix []string
	// Run, when set, runs a command line and returns its combined output: machined, which
	// reaps every child as PID 1, runs them through its reaper. Unset: os/exec.
	Run func(ctx context.Context, argv []string) ([]byte, error)
}

// run runs one iptables command (waiting for the xtables lock) and returns its error
// output with its error.
func (t Iptables) run(ctx context.Context, cmd string, args ...string) error {
	argv := append(append(append([]string{}, t.Prefix...), cmd, "-w", "5"), args...)
	run := t.Run
	if run == nil {
		run = func(ctx context.Context, argv []string) ([]byte, error) {
			return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		}
	}
	out, err := run(ctx, argv)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// chain writes a chain of table whole (created if missing, emptied, then rules appended)
// and jumps to it, once, from each of the chains from, with comment.
func (t Iptables) chain(ctx context.Context, cmd, table, chain, comment string, from []string, rules [][]string) error {
	// -N fails when the chain exists; -F then empties it either way.
	_ = t.run(ctx, cmd, "-t", table, "-N", chain)
	if err := t.run(ctx, cmd, "-t", table, "-F", chain); err != nil {
		return err
	}
	for _, r := range rules {
		if err := t.run(ctx, cmd, append([]string{"-t", table, "-A", chain}, r...)...); err != nil {
			return err
		}
	}
	for _, f := range from {
		jump := []string{f, "-m", "comment", "--comment", comment, "-j", chain}
		if t.run(ctx, cmd, append([]string{"-t", table, "-C"}, jump...)...) != nil {
			if err := t.run(ctx, cmd, append([]string{"-t", table, "-A"}, jump...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// family is the command and the multicast network of p's IP family.
func family(p netip.Prefix) (cmd, multicast string) {
	if p.Addr().Is4() {
		return "iptables", "224.0.0.0/4"
	}
	return "ip6tables", "ff00::/8"
}

// Masquerade writes MasqChain for the cluster's pod networks (one per family) and jumps to
// it from the nat table's POSTROUTING: traffic from a pod network to anywhere but the pod
// network and multicast goes out with the node's address. The chain is rewritten whole,
// so a changed pod network replaces the old rules.
func (t Iptables) Masquerade(ctx context.Context, networks []netip.Prefix) error {
	for _, n := range networks {
		cmd, multicast := family(n)
		net := n.Masked().String()
		err := t.chain(ctx, cmd, "nat", MasqChain, "plinth pod network: masquerade what leaves it", []string{"POSTROUTING"}, [][]string{
			{"!", "-s", net, "-j", "RETURN"},
			{"-d", net, "-j", "RETURN"},
			{"-d", multicast, "-j", "RETURN"},
			{"-j", "MASQUERADE", "--random-fully"},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// RejectUntranslated writes ServicesChain, jumped to from the filter table's FORWARD
// (pods) and OUTPUT (the node): a packet to one of the Service networks that kube-proxy
// did not translate to an endpoint (its rules are not written yet, at boot) is refused on
// the node. Without this it would follow the node's default route off the node, be dropped
// there, and leave a connection-tracking entry without translation behind, which the
// client's retries would keep using (a pod that starts before kube-proxy, such as CoreDNS,
// then waits about 30 s for the API). The refusal never leaves the node, and the client
// tries again at once. With services nil (kube-proxy off, or in ipvs mode, which does
// not translate through connection tracking) the chain is left empty.
func (t Iptables) RejectUntranslated(ctx context.Context, families []netip.Prefix, services []netip.Prefix) error {
	seen := map[string]bool{}
	for _, p := range append(append([]netip.Prefix{}, families...), services...) {
		cmd, _ := family(p)
		if seen[cmd] {
			continue
		}
		seen[cmd] = true
		var rules [][]string
		for _, s := range services {
			if c, _ := family(s); c == cmd {
				rules = append(rules, []string{"-d", s.Masked().String(), "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "REJECT"})
			}
		}
		if err := t.chain(ctx, cmd, "filter", ServicesChain, "plinth pod network: refuse Service traffic kube-proxy did not translate",
			[]string{"FORWARD", "OUTPUT"}, rules); err != nil {
			return err
		}
	}
	return nil
}

package embed

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Pods leave the node masqueraded as the node's address, which the NAT
// knows. The bridge CNI plugin can do this itself (ipMasq), but it adds a
// chain and three rules per pod, each an iptables run under the xtables
// lock: with 30 pods starting at once they queue for ~6 s, and as many
// again when they stop. One rule for the whole pod range, made once when
// the node's network is, does the same for every pod at no cost per pod.

// masqueradeRules is the ruleset for mode ("iptables": iptables-restore
// input; "nftables": nft input) that masquerades traffic from podCIDR (the
// node's pods) to anywhere but clusterCIDR (every node's pods, which the
// overlay reaches with the pods' own addresses) and multicast. Pure.
func masqueradeRules(mode, podCIDR, clusterCIDR string) (string, error) {
	switch mode {
	case "iptables":
		return fmt.Sprintf(`*nat
:UNETES-PODS - [0:0]
-A POSTROUTING -s %[1]s -m comment --comment "unetes: pods leave as the node" -j UNETES-PODS
-A UNETES-PODS -d %[2]s -j RETURN
-A UNETES-PODS -d 224.0.0.0/4 -j RETURN
-A UNETES-PODS -j MASQUERADE
COMMIT
`, podCIDR, clusterCIDR), nil
	case "nftables":
		return fmt.Sprintf(`table ip unetes-pods {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[1]s ip daddr != %[2]s ip daddr != 224.0.0.0/4 masquerade comment "unetes: pods leave as the node"
	}
}
`, podCIDR, clusterCIDR), nil
	}
	return "", fmt.Errorf("no masquerading for proxy mode %q", mode)
}

// setupMasquerade loads masqueradeRules into this network namespace.
func setupMasquerade(ctx context.Context, mode, podCIDR, clusterCIDR string) error {
	rules, err := masqueradeRules(mode, podCIDR, clusterCIDR)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "iptables-restore", "--noflush", "--wait")
	if mode == "nftables" {
		cmd = exec.CommandContext(ctx, "nft", "-f", "-")
	}
	cmd.Stdin = strings.NewReader(rules)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("masquerade pods' traffic (%s): %w: %s (`unetes doctor` checks iptables and nft)", cmd.Path, err, strings.TrimSpace(out.String()))
	}
	return nil
}

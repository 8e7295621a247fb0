package main

import (
	"log/slog"
	"os"

	"github.com/unetes/unetes/netstack"
)

// tuningAllowlist is where the CNI tuning plugin reads the sysctls it may
// set; where the file exists it refuses every other one, and so the pod.
const tuningAllowlist = "/etc/cni/tuning/allowlist.conf"

// podCongestion is the TCP congestion control the CNI tuning plugin gives
// each pod (netstack.PodCongestion of the host's and the namespace's
// defaults), or "" for none: pods then keep the host's.
func podCongestion(host string, log *slog.Logger) string {
	inside, err := netstack.Congestion()
	if err != nil {
		log.Warn("pods keep the host's TCP congestion control", "err", err)
		return ""
	}
	cc := netstack.PodCongestion(host, inside)
	if cc == "" {
		return ""
	}
	if _, err := os.Stat(tuningAllowlist); err == nil {
		log.Info("pods keep the host's TCP congestion control", "host", host, "why", tuningAllowlist+" limits the sysctls CNI may set")
		return ""
	}
	log.Debug("pods' TCP congestion control", "pods", cc, "host", host)
	return cc
}

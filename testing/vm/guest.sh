#!/bin/bash
# testing/vm/guest.sh: runs inside the cgroup v2 guest of testing/vm/vm.sh,
# as root at boot (unetes-vm-test.service), with the host's share at /host.
# It drives bin/unetes as the unprivileged user the way the README says to
# run it under systemd — `systemd-run --user -p Delegate=yes unetes run` —
# and checks that pod limits are enforced: a pod over its memory limit is
# OOM-killed and reported as OOMKilled, a CPU-limited pod is held to its
# limit and `kubectl top pod` says so, an HPA on CPU scales a Deployment;
# and Docker runs beside them. It writes its log to
# /host/out/guest.log and its status to /host/out/rc.
set -u
out=/host/out
exec >"$out/guest.log" 2>&1 3>&1
user=unetes
uid=$(id -u $user)
home=/home/$user
begin=$SECONDS

say() { echo "vm: [$((SECONDS - begin))s] $*"; }
as() {
	runuser -u $user -- env HOME=$home XDG_RUNTIME_DIR=/run/user/$uid DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus \
		PATH=$home/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
kc() { as unetes kubectl "$@"; }
dump() {
	say "--- unetes run's output"; cat $home/run.log
	say "--- unetes status"; as unetes status
	kc get pods -A -o wide
	kc describe pods
	for c in child kubernetes kubelet containerd docker; do say "--- last lines of unetes logs $c"; as unetes logs $c 2>&1 | tail -40; done
	cp -r /run/user/$uid/unetes/default/logs "$out/logs" 2>/dev/null
	say "--- cgroups"; cat /proc/self/mountinfo | grep cgroup; systemctl status user@$uid.service --no-pager | head -20
}
fail() {
	{
		say "FAIL: $*"
		dump
	} >&3 2>&3
	echo 1 >"$out/rc"
	exit 1
}
# until SECONDS WHAT CMD...: runs CMD until it succeeds, at most SECONDS.
until_ok() {
	local limit=$1 what=$2
	shift 2
	local t=$SECONDS
	until "$@" >/dev/null 2>&1; do
		[ $((SECONDS - t)) -lt "$limit" ] || fail "$what: not within ${limit}s"
		cp $home/run.log "$out/run.log" 2>/dev/null
		sleep 2
	done
	say "$what ($((SECONDS - t))s)"
}

say "kernel $(uname -r), $(nproc) CPUs, cgroup fs: $(stat -fc %T /sys/fs/cgroup)"
until_ok 300 "the user's systemd runs" test -S /run/user/$uid/bus
mkdir -p $home/bin
cp /host/unetes $home/bin/unetes
chown -R $user: $home/bin
say "delegated to the user's manager: $(cat /sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service/cgroup.controllers)"

say "--- unetes doctor"
as unetes doctor
as unetes doctor | grep -q "resource limits are enforced" && fail "doctor says limits are enforced outside a delegated cgroup"

# The README's way under systemd: a user service with its own delegated cgroup.
t=$SECONDS
as systemd-run --user --unit=unetes -p Delegate=yes /bin/sh -c "exec $home/bin/unetes run >$home/run.log 2>&1" ||
	fail "systemd-run --user"
node_ready() {
	as systemctl --user is-active -q unetes.service || fail "unetes run ended: $(tail -3 $home/run.log)"
	kc get nodes -o 'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
until_ok 1800 "node Ready after systemd-run" node_ready
say "run → node Ready: $((SECONDS - t)) s under TCG"
grep -q "resource limits are enforced" $home/run.log || fail "run does not say limits are enforced"
as unetes status | grep -q "^limits: *enforced" || fail "status does not say limits are enforced"
as unetes status | grep -Eq "^ +docker +ready" || fail "status does not list docker as ready"
as unetes image load /host/busybox.tar || fail "image load"

kc apply -f - <<'EOF' || fail "apply"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: localhost/busybox:vm
    imagePullPolicy: Never
    command: ["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"]
    resources: {limits: {memory: 32Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: burn}
spec:
  containers:
  - name: c
    image: localhost/busybox:vm
    imagePullPolicy: Never
    command: ["sh", "-c", "while :; do :; done"]
    resources: {limits: {cpu: 200m, memory: 64Mi}}
EOF
oomkilled() { kc get pod hog -o 'jsonpath={.status.containerStatuses[0].state.terminated.reason}' | grep -qx OOMKilled; }
until_ok 900 "the pod over its 32Mi memory limit is OOMKilled" oomkilled
max=$(find /sys/fs/cgroup/user.slice -path "*pod*" -name cpu.max -exec grep -l '^20000 100000' {} + | head -1)
[ -n "$max" ] || fail "no pod cgroup has cpu.max 20000 100000 (200m)"
say "the 200m pod's cgroup: $max"
top_ok() {
	local m
	m=$(kc top pod burn --no-headers | awk '{print $2}' | tr -d m)
	[ -n "$m" ] && [ "$m" -gt 50 ] && [ "$m" -le 260 ]
}
until_ok 900 "kubectl top pod: the 200m pod uses 50-260m" top_ok
kc top pod burn

# An HPA on CPU scales a Deployment whose pods use more than their request.
kc create deployment spin --image=localhost/busybox:vm -- sh -c "while :; do :; done" || fail "create deployment"
kc set resources deployment spin --requests=cpu=50m --limits=cpu=100m || fail "set resources"
kc autoscale deployment spin --cpu=50% --min=1 --max=3 || fail "autoscale"
# Scaled by the HPA: its rescale event, and the replicas ready.
scaled() {
	kc get events --field-selector reason=SuccessfulRescale -o 'jsonpath={.items[*].message}' | grep -q "New size: [23]" &&
		[ "$(kc get deployment spin -o 'jsonpath={.status.readyReplicas}')" -ge 2 ]
}
until_ok 900 "the HPA on CPU scales the Deployment to 2 or more" scaled
kc get events --field-selector reason=SuccessfulRescale

t=$SECONDS
as unetes stop || fail "unetes stop"
say "unetes stop: $((SECONDS - t)) s"
if [ -f /host/e2e.run ]; then
	# The chosen part of the e2e suite, as make e2e runs it (as root, unetes
	# as the unprivileged user; this service's cgroup is not delegated).
	t=$SECONDS
	say "--- e2e: $(cat /host/e2e.run)"
	(cd /tmp && /host/e2e.test -test.v -test.count=1 -test.timeout 60m -test.run "$(cat /host/e2e.run)" \
		-unetes-bin=/host/unetes -nettool=/host/nettool -test-user=$user -nosubid-user=unetes-nosubid) ||
		fail "e2e suite: $(cat /host/e2e.run)"
	say "e2e: $((SECONDS - t)) s"
fi
say "PASS (all in $((SECONDS - begin)) s)"
echo 0 >"$out/rc"

#!/bin/bash
# testing/vm/vm.sh: the cgroup v2 test. Boots a Debian bookworm guest under
# QEMU with software emulation (TCG: no KVM needed) — Debian's kernel
# (linux-image-amd64) and a rootfs made by debootstrap, both from Debian's
# packages — with systemd, the unified cgroup hierarchy and an unprivileged
# user with sub-IDs, runs testing/vm/guest.sh in it against bin/unetes, and
# prints what the guest reported. Exit status 0 when the guest passed.
#
#   testing/vm/vm.sh            (as root; `make vm-test` builds bin/unetes first)
#
# The rootfs is made once and kept in $UNETES_VM_DIR (default
# /var/tmp/unetes-vm); every run boots a fresh disk made from it.
# Settings: UNETES_VM_MEM (6G), UNETES_VM_CPUS (2), UNETES_VM_TIMEOUT (s, 5400),
# UNETES_VM_E2E: which tests of the e2e suite (testing/, a -test.run
# pattern) run in the guest after guest.sh's own checks (by default three
# sandbox tests; empty for none). Kubernetes tests are ~10x slower under
# TCG: TestControlPlane failed there once, its controller-manager timing
# out on the apiserver's /healthz.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=${UNETES_VM_DIR:-/var/tmp/unetes-vm}
mem=${UNETES_VM_MEM:-6G}
cpus=${UNETES_VM_CPUS:-2}
timeout=${UNETES_VM_TIMEOUT:-5400}
e2e=${UNETES_VM_E2E-TestInsideIsANewRootlessNamespace|TestExecPassesStdioAndExitStatus|TestStatusStopAndSecondRun}
mirror=${UNETES_VM_MIRROR:-http://deb.debian.org/debian}
user=unetes
uid=1000

say() { echo "vm: $*"; }
die() { echo "vm: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: debootstrap and the guest's disk need it"
for t in debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 mkfs.ext4:e2fsprogs; do
	command -v "${t%%:*}" >/dev/null || die "${t%%:*} is missing: apt-get install ${t#*:}"
done
[ -x "$repo/bin/unetes" ] || die "$repo/bin/unetes is missing: make build"
[ -x /bin/busybox ] || die "the test image needs busybox-static: apt-get install busybox-static"

# The guest's packages: systemd with logind (lingering user manager, which
# delegates cgroups), what unetes needs on a host (uidmap, iproute2,
# iptables/nftables), and the tools of guest.sh.
packages=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,linux-image-amd64,uidmap,iproute2,iptables,nftables,procps,kmod,udev,e2fsprogs

root=$dir/rootfs

# make_rootfs installs the packages once (kept while the list is the same).
make_rootfs() {
	[ "$(cat "$root/.unetes-vm-packages" 2>/dev/null)" = "$packages" ] && return
	rm -rf "$root"
	local t=$SECONDS
	say "debootstrap bookworm into $root ($mirror), once"
	debootstrap --variant=minbase --include=$packages bookworm "$root" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $dir/debootstrap.log"
	echo "$packages" >"$root/.unetes-vm-packages"
	say "rootfs made in $((SECONDS - t)) s"
}

# configure_rootfs sets the guest up; at every run (it is quick and
# idempotent), so that a change here needs no new debootstrap.
configure_rootfs() {
	echo unetes-vm >"$root/etc/hostname"
	grep -q unetes-vm "$root/etc/hosts" || echo "127.0.1.1 unetes-vm" >>"$root/etc/hosts"
	echo "/dev/vda / ext4 rw,relatime 0 1" >"$root/etc/fstab"
	# QEMU's user network on 10.0.9.0/24, not its default 10.0.2.0/24:
	# that is unetes' own network inside the namespace, and a host
	# resolver at 10.0.2.3 (QEMU's, VirtualBox's default) makes CoreDNS
	# see its queries come back (run stops with "DNS forwarding loop").
	echo "nameserver 10.0.9.3" >"$root/etc/resolv.conf"
	# User-mode networking restricted to the guest and this host: an
	# address and a default route, as on any host, and nothing outside.
	mkdir -p "$root/etc/systemd/network"
	printf '[Match]\nName=en*\n[Network]\nAddress=10.0.9.15/24\nGateway=10.0.9.2\nDNS=10.0.9.3\n' >"$root/etc/systemd/network/10-eth.network"
	chroot "$root" systemctl enable systemd-networkd >/dev/null 2>&1
	chroot "$root" id $user >/dev/null 2>&1 || chroot "$root" useradd -m -u $uid -s /bin/bash $user
	echo "$user:100000:65536" >"$root/etc/subuid"
	echo "$user:100000:65536" >"$root/etc/subgid"
	# The e2e suite's user without sub-IDs.
	chroot "$root" id unetes-nosubid >/dev/null 2>&1 || chroot "$root" useradd -m -s /bin/bash unetes-nosubid
	# Lingering: logind starts the user's systemd (user@1000.service, with
	# Delegate=) at boot, as it does at a login.
	mkdir -p "$root/var/lib/systemd/linger"
	touch "$root/var/lib/systemd/linger/$user"
	mkdir -p "$root/host"
	cat >"$root/etc/systemd/system/unetes-vm-test.service" <<-EOF
		[Unit]
		Description=unetes cgroup v2 test (testing/vm/guest.sh)
		After=user@$uid.service systemd-networkd.service
		Wants=user@$uid.service
		[Service]
		Type=oneshot
		ExecStart=/bin/sh -c 'mount -t 9p -o trans=virtio,version=9p2000.L host /host && exec /bin/bash /host/guest.sh'
		ExecStopPost=/bin/systemctl poweroff --no-block
		StandardOutput=journal+console
		StandardError=journal+console
		[Install]
		WantedBy=multi-user.target
	EOF
	chroot "$root" systemctl enable unetes-vm-test.service >/dev/null 2>&1
	chroot "$root" systemctl mask getty@tty1.service serial-getty@ttyS0.service >/dev/null 2>&1 || true
}

mkdir -p "$dir"
make_rootfs
configure_rootfs

t=$SECONDS
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
rm -f "$dir/disk.img"
mkfs.ext4 -q -F -L unetes-vm -d "$root" "$dir/disk.img" 12G
share=$dir/share
rm -rf "$share"
mkdir -p "$share/out"
cp "$repo/bin/unetes" "$repo/testing/vm/guest.sh" "$share/"
(cd "$repo" && CGO_ENABLED=0 ${GO:-go} run ./testing/vm/mkimage localhost/busybox:vm "$share/busybox.tar")
if [ -n "$e2e" ]; then
	# The e2e suite, compiled: the guest has no Go.
	(cd "$repo" && CGO_ENABLED=0 ${GO:-go} test -c -trimpath -o "$share/e2e.test" ./testing/ &&
		CGO_ENABLED=0 ${GO:-go} build -trimpath -o "$share/nettool" ./testing/nettool)
	echo "$e2e" >"$share/e2e.run"
fi
chmod -R a+rX "$share"
chmod 0777 "$share/out"
say "disk and share ready in $((SECONDS - t)) s; booting (TCG, $cpus CPUs, $mem; console in $dir/console.log)"

t=$SECONDS
set +e
timeout "$timeout" qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$mem" \
	-nographic -no-reboot -serial "file:$dir/console.log" -monitor none \
	-kernel "$kernel" -initrd "$initrd" \
	-append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 panic=-1 quiet" \
	-drive "file=$dir/disk.img,if=virtio,format=raw,cache=unsafe" \
	-virtfs "local,path=$share,mount_tag=host,security_model=none,id=host" \
	-nic "user,model=virtio-net-pci,restrict=on,net=10.0.9.0/24"
qrc=$?
set -e
say "guest ran $((SECONDS - t)) s (qemu exit $qrc)"
[ -f "$share/out/guest.log" ] && cat "$share/out/guest.log"
rc=$(cat "$share/out/rc" 2>/dev/null || echo "none")
if [ "$rc" != 0 ]; then
	say "FAILED (guest status: $rc); the guest's console: $dir/console.log, its files: $share/out"
	exit 1
fi
say "passed"

#!/usr/bin/env bash
# multinode.sh: a unetes cluster across real hosts, checked end to end.
#
#   testing/multinode.sh [--keep] [--api-address IP] SERVER NODE...
#
# SERVER and each NODE are ssh destinations (user@host); unetes runs there as
# that user, unprivileged. From the machine this runs on (which needs only
# bash, tar and sha256sum) it copies the binary to every host, starts
# `unetes run --api-address` on SERVER, joins every NODE with the join
# command `unetes token` prints, loads a busybox image on every host, runs a
# web pod on every node and checks, from every pod: every other pod by its
# address (the overlay), and a Service on the server by its DNS name. Then it
# stops and resets what it started on every host, unless --keep.
#
# Between the hosts the API port (6443/tcp) and 8472/udp (the overlay) must
# be open, and 10250/tcp from the server to the nodes (kubectl logs/exec).
#
# Environment:
#   UNETES   the binary to copy (default: bin/unetes of this checkout)
#   SSH      how to run a command on a host, called as $SSH DEST COMMAND
#            (default: ssh -o BatchMode=yes)
#   NAME     the instance's name on every host (default: multinode); a host
#            that has an instance of that name already is refused
#   BUSYBOX  a static busybox for the test image (default: /bin/busybox,
#            Debian's busybox-static)
#
# Exit status: 0 every check passed, 1 a step or check failed, 2 bad usage.
set -euo pipefail

prog=multinode
keep=0
api_address=0.0.0.0
usage() {
	sed -n '3,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--keep) keep=1; shift ;;
	--api-address) [ $# -ge 2 ] || usage; api_address=$2; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "$prog: unknown flag $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || { echo "$prog: give the server and at least one node" >&2; usage; }
server=$1
shift
nodes=("$@")
hosts=("$server" "${nodes[@]}")

here=$(cd "$(dirname "$0")/.." && pwd)
UNETES=${UNETES:-$here/bin/unetes}
SSH=${SSH:-ssh -o BatchMode=yes}
NAME=${NAME:-multinode}
BUSYBOX=${BUSYBOX:-/bin/busybox}
# Where the binary, the image and the logs go on every host.
dir='$HOME/.cache/unetes-multinode'
bin="$dir/unetes"
shown_bin='~/.cache/unetes-multinode/unetes'
image=localhost/unetes-multinode:busybox

started=$(date +%s)
say() { echo "$prog: [$(($(date +%s) - started))s] $*"; }
die() {
	echo "$prog: FAIL: $*" >&2
	exit 1
}
# on HOST COMMAND runs COMMAND with HOST's shell.
on() {
	local host=$1
	shift
	$SSH "$host" "$*"
}

[ -x "$UNETES" ] || die "no unetes binary at $UNETES: run make build, or set UNETES"
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
	die "the test image needs a static busybox at $BUSYBOX: apt-get install busybox-static, or set BUSYBOX"

for h in "${hosts[@]}"; do
	on "$h" true </dev/null ||
		die "cannot run a command on $h with '$SSH': set up key-based ssh (ssh-copy-id $h), or set SSH"
	if on "$h" "test -e \"\${XDG_DATA_HOME:-\$HOME/.local/share}/unetes/$NAME\"" </dev/null; then
		die "$h has an instance named $NAME already: pick another name with NAME=..., or remove it there with unetes reset --name $NAME"
	fi
done

# On the way out: nothing left running, and nothing left at all after a
# pass; after a failure the stopped instances keep their logs.
tmp=$(mktemp -d)
started_on=()
cleanup() {
	local code=$? h what=reset
	if [ ${#started_on[@]} = 0 ]; then
		:
	elif [ "$keep" = 1 ]; then
		say "--keep: the cluster stays up; to remove it, on each host: $shown_bin reset --force --name $NAME"
	else
		[ $code = 0 ] || what=stop
		for h in "${started_on[@]}"; do
			if [ $what = reset ]; then
				on "$h" "$bin reset --force --name $NAME >/dev/null" </dev/null || echo "$prog: reset on $h failed" >&2
			else
				on "$h" "$bin stop --name $NAME >/dev/null" </dev/null || echo "$prog: stop on $h failed" >&2
			fi
		done
		if [ $what = reset ]; then
			say "reset instance $NAME on every host"
		else
			say "stopped instance $NAME on every host, kept for its logs ($shown_bin logs --name $NAME COMPONENT; remove it with $shown_bin reset --force --name $NAME)"
		fi
	fi
	rm -rf "$tmp"
	exit $code
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A docker-save tarball of busybox.
mkdir -p "$tmp/root/bin" "$tmp/root/tmp" "$tmp/img"
chmod 1777 "$tmp/root/tmp"
cp "$BUSYBOX" "$tmp/root/bin/busybox"
for a in sh cat echo hostname httpd mkdir sleep timeout wget; do ln -s busybox "$tmp/root/bin/$a"; done
case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac
tar -C "$tmp/root" --owner=0 --group=0 --numeric-owner -cf "$tmp/img/layer.tar" .
layer=$(sha256sum "$tmp/img/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$arch" "$layer" >"$tmp/img/config.json"
config=$(sha256sum "$tmp/img/config.json" | cut -d' ' -f1)
mv "$tmp/img/config.json" "$tmp/img/$config.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$config" "$image" >"$tmp/img/manifest.json"
tar -C "$tmp/img" -cf "$tmp/busybox.tar" manifest.json "$config.json" layer.tar

for h in "${hosts[@]}"; do
	on "$h" "mkdir -p $dir && cat > $bin.new && chmod 755 $bin.new && mv $bin.new $bin" <"$UNETES" ||
		die "copy the binary to $h"
	on "$h" "cat > $dir/busybox.tar" <"$tmp/busybox.tar" || die "copy the image to $h"
done
say "copied $(basename "$UNETES") and a busybox image to ${#hosts[@]} hosts"

# wait_log HOST LOG PIDFILE TEXT waits until LOG on HOST says TEXT, failing
# with the log's end when the process is gone or after 5 minutes.
wait_log() {
	local h=$1 log=$2 pid=$3 text=$4
	on "$h" "for i in \$(seq 300); do grep -q '$text' $log && exit 0; kill -0 \$(cat $pid) 2>/dev/null || break; sleep 1; done
		echo '--- end of $log:'; tail -n 20 $log; exit 1" </dev/null >&2
}

on "$server" "cd $dir && { nohup ./unetes run --name $NAME --api-address $api_address --disable docker </dev/null >run.log 2>&1 & echo \$! > run.pid; }" </dev/null
started_on+=("$server")
wait_log "$server" "$dir/run.log" "$dir/run.pid" "ready in" || die "unetes run on $server did not get ready"
say "server $server ready"

kubectl() { on "$server" "$bin kubectl --name $NAME $(printf '%q ' "$@")" </dev/null; }

# The join command `unetes token` prints, for this instance's name.
join=$(on "$server" "$bin token --name $NAME" </dev/null | sed -n 's/^join: *unetes join //p')
[ -n "$join" ] || die "unetes token on $server printed no join command"
declare -A node_of
node_of[$server]=$(kubectl get nodes -o 'jsonpath={.items[0].metadata.name}')
for h in "${nodes[@]}"; do
	on "$h" "cd $dir && { nohup ./unetes join $join --name $NAME --disable docker </dev/null >join.log 2>&1 & echo \$! > join.pid; }" </dev/null
	started_on=("$h" "${started_on[@]}")
	wait_log "$h" "$dir/join.log" "$dir/join.pid" "joined the cluster" || die "unetes join on $h did not join"
	node_of[$h]=$(on "$h" "sed -n 's/^unetes: node \\([^ ]*\\) joined the cluster.*/\\1/p' $dir/join.log" </dev/null)
	say "$h joined as node ${node_of[$h]}"
done
kubectl wait --for=condition=Ready node --all --timeout=180s >/dev/null || die "not every node got Ready: $(kubectl get nodes)"
n=$(kubectl get nodes -o name | wc -l)
[ "$n" -eq ${#hosts[@]} ] || die "the cluster has $n nodes, want ${#hosts[@]}: $(kubectl get nodes)"
say "$n nodes Ready"

for h in "${hosts[@]}"; do
	on "$h" "$bin image load --name $NAME $dir/busybox.tar" </dev/null >/dev/null || die "image load on $h"
done

# A web pod on every node, answering with its name; a Service for the
# server's.
manifest=""
i=0
for h in "${hosts[@]}"; do
	manifest+="apiVersion: v1
kind: Pod
metadata: {name: web-$i, labels: {app: web-$i}}
spec:
  nodeName: ${node_of[$h]}
  containers:
  - name: web
    image: $image
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /tmp/www && echo hello-from-\$(hostname) > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www']
---
"
	i=$((i + 1))
done
manifest+="apiVersion: v1
kind: Service
metadata: {name: web-0}
spec:
  selector: {app: web-0}
  ports: [{port: 80}]
"
printf '%s' "$manifest" | on "$server" "$bin kubectl --name $NAME apply -f -" >/dev/null || die "kubectl apply"
pods=$(seq -s' ' -f 'pod/web-%g' 0 $((${#hosts[@]} - 1)))
kubectl wait --for=condition=Ready $pods --timeout=180s >/dev/null || die "the web pods did not get Ready: $(kubectl get pods -o wide)"
say "a web pod Ready on every node"

# fetch FROM URL WANT: FROM's pod fetches URL until it answers WANT (a minute).
failed=0
fetch() {
	local from=$1 url=$2 want=$3 got="" until=$((SECONDS + 60))
	# (Debian's busybox wget crashes with -T: timeout bounds it instead.)
	while [ $SECONDS -lt $until ]; do
		got=$(kubectl exec "$from" -- timeout 5 wget -q -O - "$url" 2>&1 || true)
		if [ "$got" = "$want" ]; then
			echo "ok    $from -> $url"
			return
		fi
		sleep 1
	done
	echo "FAIL  $from -> $url: got '$got', want '$want'"
	failed=$((failed + 1))
}
declare -A ip_of
for ((i = 0; i < ${#hosts[@]}; i++)); do
	ip_of[$i]=$(kubectl get pod "web-$i" -o 'jsonpath={.status.podIP}')
done
for ((i = 0; i < ${#hosts[@]}; i++)); do
	for ((j = 0; j < ${#hosts[@]}; j++)); do
		[ $i = $j ] || fetch "web-$i" "http://${ip_of[$j]}/" "hello-from-web-$j"
	done
	[ $i = 0 ] || fetch "web-$i" "http://web-0.default.svc.cluster.local/" "hello-from-web-0"
done
[ $failed = 0 ] || die "$failed checks failed"
say "PASS: ${#hosts[@]} hosts, pod to pod across every pair of nodes, a Service by its DNS name from every node"

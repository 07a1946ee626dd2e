#!/bin/bash
# Guest setup (run by guest-init.sh before the command): a systemd-like cgroup v2 tree and a few processes to move
# around. Nothing enables controllers: the root's cgroup.subtree_control starts empty, so tests can check that the
# tool enables cpuset top-down. In v1-hybrid the slices live in the controller-less cgroup2 at
# /sys/fs/cgroup/unified (as systemd does) and every process stays in the root v1 cpuset. PID 1 (and so the
# command) stays in the root cgroup; init.scope gets a sleeper of its own.
#
# Processes: 2 sleepers in the root, 3 in system.slice, 2 in user.slice, 1 in init.scope, and one process with
# 20 extra threads in user.slice. They live until the guest powers off.
#
# Writes /run/vfio-vm/setup.json:
#   { mode, cgroup2, cpuset, rootControllers, rootSubtreeControl,
#     pids: { "/": [...], "/system.slice": [...], ... }, threaded: { pid, threads } }
# Uses bash builtins where it can: every exec costs ~0.2 s under TCG.
set -u
mode=${VFIO_VM_MODE:?}
state=/run/vfio-vm
mkdir -p "$state"

case "$mode" in
  v1-hybrid) V2=/sys/fs/cgroup/unified CPUSET=/sys/fs/cgroup/cpuset ;;
  *) V2=/sys/fs/cgroup CPUSET=/sys/fs/cgroup ;;
esac

mkdir -p "$V2/system.slice" "$V2/user.slice" "$V2/init.scope" "$V2/machine.slice" || echo "cannot create the slices"

declare -A pids=()
last=
# start_in CGROUP CMD...: start CMD in the background, its process already in CGROUP ("" = root).
start_in() {
  local cg=$1
  shift
  (echo "$BASHPID" >"$V2$cg/cgroup.procs" && exec "$@") </dev/null >/dev/null 2>&1 &
  last=$!
  pids[${cg:-/}]+="$last "
}

threads=20
# The threaded process first: python needs ~1 s to start under TCG.
if [ -x /usr/bin/python3 ]; then
  start_in /user.slice /usr/bin/python3 -c "
import threading, time
for i in range($threads):
    threading.Thread(target=time.sleep, args=(1e6,), daemon=True).start()
time.sleep(1e6)"
else
  start_in /user.slice perl -Mthreads -e "threads->create(sub { sleep 1e6 })->detach for 1..$threads; sleep 1e6"
fi
threaded=$last

for _ in 1 2 3; do start_in /system.slice sleep 100000; done
for _ in 1 2; do start_in /user.slice sleep 100000; done
start_in /init.scope sleep 100000
for _ in 1 2; do start_in "" sleep 100000; done

# Wait (up to ~30 s) until the threads exist.
n=0
for ((i = 0; i < 150; i++)); do
  t=(/proc/"$threaded"/task/*)
  n=${#t[@]}
  [ "$n" -ge $((threads + 1)) ] && break
  sleep 0.2
done

json_list() {
  local out="" p
  for p in $1; do out+="${out:+,}$p"; done
  echo "[$out]"
}
controllers=$(<"$V2/cgroup.controllers")
subtree=$(<"$V2/cgroup.subtree_control")
{
  echo "{"
  echo "  \"mode\": \"$mode\","
  echo "  \"cgroup2\": \"$V2\","
  echo "  \"cpuset\": \"$CPUSET\","
  echo "  \"rootControllers\": \"$controllers\","
  echo "  \"rootSubtreeControl\": \"$subtree\","
  echo "  \"pids\": {"
  sep=""
  for cg in / /system.slice /user.slice /init.scope; do
    printf '%s    "%s": %s' "$sep" "$cg" "$(json_list "${pids[$cg]:-}")"
    sep=$',\n'
  done
  echo ""
  echo "  },"
  echo "  \"threaded\": { \"pid\": $threaded, \"threads\": $n }"
  echo "}"
} >"$state/setup.json"

echo "guest setup ($mode): cgroup2 at $V2 offers [$controllers], root subtree_control [$subtree];" \
  "$n tasks in the threaded process $threaded"
[ "$n" -ge $((threads + 1)) ] || {
  echo "the threaded helper did not start its threads"
  exit 1
}

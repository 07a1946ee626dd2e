#!/bin/busybox sh
# Stage 1 (/init in the initramfs, busybox sh): load the modules for the root share, mount the host's / (read-only,
# virtiofs tag "hostroot") under a tmpfs overlay, mount the API filesystems and the guest's own /run and /tmp, then
# the repository (tag "repo") and the harness cache (tag "cache", holding the job folder) read-write at their host
# paths on top (so a checkout under /tmp stays visible), mount the cgroup layout of the mode, then switch_root into
# stage 2 (test/vm/guest-init.sh). In mode systemd it leaves the cgroup mount to systemd, prepares /etc
# (guest-systemd-prep.sh) and switch_roots into the host's /lib/systemd/systemd instead.
# Mounting is done here because an exec from the virtiofs root costs far more under TCG than a busybox applet.
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "vfio-vm stage1: FAILED: $*"
  poweroff -f
  sleep 60
}
warn() { echo "vfio-vm stage1: $*"; }

REPO=
JOB=
CACHE=
MODE=
MODULES=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vfio_vm.repo=*) REPO="${arg#*=}" ;;
    vfio_vm.job=*) JOB="${arg#*=}" ;;
    vfio_vm.cache=*) CACHE="${arg#*=}" ;;
    vfio_vm.mode=*) MODE="${arg#*=}" ;;
    vfio_vm.modules=*) MODULES="${arg#*=}" ;;
  esac
done
[ -n "$REPO" ] && [ -n "$JOB" ] && [ -n "$CACHE" ] && [ -n "$MODE" ] || fail "vfio_vm.repo/job/cache/mode missing"
case "$JOB" in "$CACHE"/*) ;; *) fail "the job folder $JOB is not under the cache $CACHE" ;; esac

for m in /modules/*.ko; do
  [ -e "$m" ] || continue
  insmod "$m" || fail "insmod $m"
done

R=/newroot
mount -t virtiofs -o ro hostroot /lower || fail "mount virtiofs hostroot"
mount -t tmpfs -o mode=755 tmpfs /rw || fail "mount tmpfs /rw"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay $R || fail "mount overlay"
for d in proc sys dev; do
  mkdir -p "$R/$d"
  mount --move "/$d" "$R/$d" || fail "move /$d"
done
mkdir -p $R/run $R/tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs $R/run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/tmp
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/dev/shm
hostname vfio-vm

# The repository and the cache go on top of the guest's own /tmp and /run, so that a checkout (or a cache) under
# /tmp stays visible at its host path. The cache may lie inside the repository (.vm-cache): it is mounted second.
mkdir -p "$R$REPO" || fail "mkdir $REPO"
mount -t virtiofs repo "$R$REPO" || fail "mount virtiofs repo"
mkdir -p "$R$CACHE" || fail "mkdir $CACHE"
mount -t virtiofs cache "$R$CACHE" || fail "mount virtiofs cache"

CG=$R/sys/fs/cgroup
case "$MODE" in
  v2 | v2-6.1)
    mount -t cgroup2 -o nsdelegate cgroup2 $CG || warn "mount cgroup2 failed"
    ;;
  systemd)
    # systemd (PID 1 in stage 2) mounts the cgroup2 hierarchy itself, with its own options.
    ;;
  v1-hybrid)
    # systemd's hybrid layout: the controller-less cgroup2 "unified" mount comes first, then the v1 cpuset.
    mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs $CG || warn "mount tmpfs on /sys/fs/cgroup failed"
    mkdir -p $CG/unified $CG/cpuset
    mount -t cgroup2 -o nsdelegate cgroup2 $CG/unified || warn "mount cgroup2 unified failed"
    mount -t cgroup -o cpuset cpuset $CG/cpuset || warn "mount v1 cpuset failed"
    ;;
  *)
    warn "unknown mode $MODE"
    ;;
esac

# tsx's compile cache survives the guest (its entries are keyed by content; guests run at once share it: tsx reads
# an entry it cannot parse, such as one another guest is still writing, as a miss).
mkdir -p "$R$CACHE/tsx" $R/tmp/tsx-0 && mount --bind "$R$CACHE/tsx" $R/tmp/tsx-0

# The kernel's own modules (there is no modules.dep: busybox/kmod modprobe need `depmod` first).
if [ -n "$MODULES" ] && [ -d "$R$MODULES" ]; then
  mkdir -p "$R/lib/modules/$(uname -r)" && mount --bind "$R$MODULES" "$R/lib/modules/$(uname -r)"
fi

read -r up _ <$R/proc/uptime
echo "vfio-vm stage1 [$up]: switching root (mode $MODE)"
if [ "$MODE" = systemd ]; then
  # shellcheck source=guest-systemd-prep.sh
  . "$R$REPO/test/vm/guest-systemd-prep.sh" || fail "guest-systemd-prep.sh"
  exec switch_root $R /lib/systemd/systemd --log-target=console
fi
exec switch_root $R /bin/bash "$REPO/test/vm/guest-init.sh" "$REPO" "$JOB" "$MODE"

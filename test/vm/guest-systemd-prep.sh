# shellcheck shell=sh
# Mode `systemd`, sourced by stage 1 (initramfs-init.sh, busybox sh: applets cost far less than execs from the
# virtiofs root) with R = the new root, REPO, JOB, MODE set. Prepares the overlay's /etc (its tmpfs upper layer:
# the host's /etc is never written) so that the host's own systemd boots quickly in a guest without disks, network
# or timers, and adds the test command as a Type=oneshot service ordered after multi-user.target that powers the
# guest off when it ends (guest-systemd-run.sh). Stage 1 then switch_roots into /lib/systemd/systemd as PID 1.
E=$R/etc/systemd/system
mkdir -p "$E" "$E/multi-user.target.wants" "$R/etc/tmpfiles.d" "$R/etc/systemd/system.conf.d"
# No status spinner on the serial console (it fills console.log while the test service runs).
printf '[Manager]\nShowStatus=no\n' >"$R/etc/systemd/system.conf.d/vfio-vm.conf"

# This machine may itself be a container: its /.dockerenv would make systemd believe the guest is one too.
rm -f "$R/.dockerenv" "$R/run/.containerenv"
# The host's fstab names the host's disks.
: >"$R/etc/fstab"
# Debian's `D /tmp` would make systemd-tmpfiles walk the host's whole /tmp through virtiofs: virtiofsd holds one
# host descriptor per inode, the host's open-file limit runs out and every exec fails with EMFILE.
ln -sf /dev/null "$R/etc/tmpfiles.d/tmp.conf"

# What waits for hardware, network or time, and whatever the host image enables (databases, ssh, ...): every unit
# the host enabled in a target is masked, except libvirt's (the tests start it on demand).
for f in "$E"/*.target.wants/*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  u=${f##*/}
  case "$u" in
    libvirtd.* | libvirtd-*.socket | virtlogd* | virtlockd* | virtqemud* | virtproxyd* | machines.target) continue ;;
    *@?*.*) u="${u%%@*}@.${u##*.}" ;; # getty@tty1.service -> getty@.service
  esac
  ln -sfn /dev/null "$E/$u"
done
for u in getty.target getty@.service serial-getty@.service console-getty.service \
  systemd-networkd-wait-online.service networking.service systemd-timesyncd.service \
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer logrotate.timer man-db.timer systemd-tmpfiles-clean.timer \
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
  systemd-pstore.service libvirt-guests.service remote-fs.target; do
  ln -sfn /dev/null "$E/$u"
done

# libvirtd is socket-activated with --timeout 120: idle, it exits and its cgroup goes, which a snapshot taken
# before would show as a difference. In the guest it stays up once started.
mkdir -p "$E/libvirtd.service.d"
printf '[Service]\nEnvironment=LIBVIRTD_ARGS=\n' >"$E/libvirtd.service.d/50-vfio-vm-no-timeout.conf"

# The test command. SuccessAction=/FailureAction= belong in [Unit] (in [Service] systemd ignores them silently).
cat >"$E/vfio-vm-test.service" <<UNIT
[Unit]
Description=vfio-isolate real-kernel test command
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/bash $REPO/test/vm/guest-systemd-run.sh $REPO $JOB $MODE
TimeoutStartSec=infinity
UNIT
ln -sfn /etc/systemd/system/vfio-vm-test.service "$E/multi-user.target.wants/vfio-vm-test.service"

#!/bin/bash
# The test command of mode `systemd`, run by vfio-vm-test.service (see guest-systemd.sh) once multi-user.target is
# reached: writes `started`, the command's stdout, stderr and exit code into the job folder, plus the failed units
# and the boot's systemd-analyze summary (setup.log). systemd powers the guest off when this script ends.
REPO=$1
JOB=$2
MODE=$3
set +e
# shellcheck disable=SC1091
. "$JOB/env.sh"
export VFIO_VM_MODE="$MODE"
uptime() { local up _; read -r up _ </proc/uptime; echo "$up"; }
{
  echo "guest setup ($MODE): systemd $(systemctl --version | head -1) as PID 1, multi-user.target reached at $(uptime) s"
  systemctl list-units --state=failed --no-legend --plain
  echo "root cgroup.subtree_control: [$(</sys/fs/cgroup/cgroup.subtree_control)]"
} >"$JOB/setup.log" 2>&1
echo 0 >"$JOB/setup.rc"
uptime >"$JOB/started"
cd "$REPO" || echo "cannot cd to $REPO" >>"$JOB/setup.log"
bash "$JOB/command.sh" >"$JOB/stdout" 2>"$JOB/stderr" </dev/null
rc=$?
echo $rc >"$JOB/rc"
uptime >"$JOB/finished"
sync
exit $rc

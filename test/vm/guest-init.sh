#!/bin/bash
# Stage 2: PID 1 in the guest, running from the overlay root (host's / read-only + tmpfs); stage 1 has mounted
# everything. Runs guest-setup.sh, then the job's command with cwd = repo, writes stdout, stderr and the exit code
# into the job folder and powers off. Uses bash builtins where it can: every exec costs ~0.2 s under TCG.
REPO=$1
JOB=$2
MODE=$3
set +e
# shellcheck disable=SC1091
. "$JOB/env.sh"
export VFIO_VM_MODE="$MODE"
cd /

uptime() { local up _; read -r up _ </proc/uptime; echo "$up"; }
log() { echo "vfio-vm stage2 [$(uptime)]: $*" >/dev/console; }

bash "$REPO/test/vm/guest-setup.sh" >"$JOB/setup.log" 2>&1
echo $? >"$JOB/setup.rc"

uptime >"$JOB/started"
log "running command"
cd "$REPO" || log "cannot cd to $REPO"
bash "$JOB/command.sh" >"$JOB/stdout" 2>"$JOB/stderr" </dev/null
echo $? >"$JOB/rc"
uptime >"$JOB/finished"
log "command finished, powering off"
sync
busybox poweroff -f
sleep 60

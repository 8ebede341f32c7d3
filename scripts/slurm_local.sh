#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine (Debian/Ubuntu, as root), for the `slurm`
# tests and for trying cluster=slurm by hand:
#   scripts/slurm_local.sh start    # install slurmctld/slurmd/munge if needed, start them
#   scripts/slurm_local.sh status   # sinfo
#   scripts/slurm_local.sh stop     # stop the daemons by PID
# No systemd needed: the daemons are started by hand and stopped by their PID files.
# State lives in $RALIGN_SLURM_DIR (default /var/tmp/ralign-slurm).
set -euo pipefail
cmd="${1:-start}"
state="${RALIGN_SLURM_DIR:-/var/tmp/ralign-slurm}"
conf=/etc/slurm/slurm.conf
host="$(hostname -s)"

need_root() { [ "$(id -u)" = 0 ] || { echo "slurm_local.sh: needs root (it installs and runs daemons)" >&2; exit 3; }; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null; then return; fi
  command -v apt-get >/dev/null || { echo "slurm_local.sh: no apt-get; install slurm and munge yourself" >&2; exit 3; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd munge slurm-client >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd munge slurm-client >/dev/null; }
}

write_conf() {
  local cpus mem
  cpus="$(nproc)"
  mem="$(awk '/MemTotal/ {print int($2 / 1024 * 0.85)}' /proc/meminfo)"
  mkdir -p /etc/slurm "$state/ctld" "$state/d" "$state/log"
  chown slurm:slurm "$state/ctld" "$state/log"
  cat > "$conf" <<CONF
ClusterName=ralign-local
SlurmctldHost=$host
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  need_root
  install
  if alive "$state/slurmctld.pid" && alive "$state/slurmd.pid"; then echo "slurm already running"; sinfo; return; fi
  write_conf
  mkdir -p /run/munge && chown munge:munge /run/munge
  if ! pgrep -x munged >/dev/null; then runuser -u munge -- /usr/sbin/munged; fi
  slurmctld
  slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "slurm up: $(sinfo -h -o '%P %D %T %c CPUs')"; return
    fi
    sleep 0.5
  done
  echo "slurm_local.sh: the node did not become idle; see $state/log" >&2
  sinfo >&2 || true
  exit 1
}

stop() {
  for d in slurmd slurmctld; do
    if alive "$state/$d.pid"; then kill "$(cat "$state/$d.pid")"; fi
  done
  for _ in $(seq 1 20); do
    alive "$state/slurmd.pid" || alive "$state/slurmctld.pid" || break
    sleep 0.25
  done
  rm -f "$state/slurmd.pid" "$state/slurmctld.pid"
  echo "slurm stopped"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

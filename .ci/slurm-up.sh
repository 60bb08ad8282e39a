#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages (slurm-wlm, munge), for the cluster tests
# (tests/test_cluster.py): munged, slurmctld and slurmd on localhost, partition "debug". Run as root (CI is).
# Writes /etc/slurm/slurm.conf (refuses to replace one it did not write), keeps state and logs in
# $CURATE_SLURM_DIR (default /tmp/curate-slurm), and waits until `sinfo` shows the node idle.
# On failure it prints the daemons' logs and exits non-zero. .ci/slurm-down.sh stops it.
set -euo pipefail
DIR=${CURATE_SLURM_DIR:-/tmp/curate-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by curate .ci/slurm-up.sh"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -q && apt-get install -y -q slurm-wlm munge
fi
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  echo "slurm-up: $CONF exists and was not written by this script; not touching it" >&2
  exit 1
fi
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" /etc/slurm /run/munge /var/log/munge /var/lib/munge
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
cat > "$CONF" <<CONF
$MARK
ClusterName=curate
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

# munge: the package's key (created at install), or a new one
[ -s /etc/munge/munge.key ] || mungekey --create --force
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged || { cat /var/log/munge/munged.log >&2 || true; exit 1; }
fi

dump_logs() {
  for f in "$DIR"/log/*.log; do echo "== $f" >&2; tail -n 30 "$f" >&2; done
}
pgrep -x slurmctld >/dev/null || slurmctld || { dump_logs; exit 1; }
pgrep -x slurmd >/dev/null || slurmd || { dump_logs; exit 1; }
for _ in $(seq 60); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "slurm-up: the node did not become idle in 60 s:" >&2
sinfo -N -l >&2 || true
dump_logs
exit 1

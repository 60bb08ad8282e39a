#!/usr/bin/env bash
# Stop the one-node Slurm cluster of .ci/slurm-up.sh (its slurmd and slurmctld, by their pid files); munged,
# which other tools may use, is left running.
set -uo pipefail
DIR=${CURATE_SLURM_DIR:-/tmp/curate-slurm}
for d in slurmd slurmctld; do
  if [ -s "$DIR/$d.pid" ]; then
    kill "$(cat "$DIR/$d.pid")" 2>/dev/null || true
  fi
done
exit 0

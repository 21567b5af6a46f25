#!/usr/bin/env bash
# Stops what ci/slurm/start.sh started, by PID.
set -uo pipefail
scancel --user="$(id -un)" 2>/dev/null || true
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done
exit 0

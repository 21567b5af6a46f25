#!/usr/bin/env bash
# Installs (Debian packages), configures and starts a single-node Slurm on this machine, for
# the tests marked `slurm`. Needs root. Idempotent: a Slurm already answering is left as is.
# The node declares more CPUs than the machine has, so that several 1-core worker jobs run.
set -euo pipefail

if command -v sinfo >/dev/null 2>&1 && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
  echo "ci/slurm/start.sh: Slurm is already up"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ci/slurm/start.sh: needs root" >&2; exit 1
fi
if ! command -v slurmctld >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
    || { apt-get update -qq >/dev/null
         apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
fi

mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  su -s /bin/sh munge -c /usr/sbin/munged
  sleep 1
fi

node=$(hostname -s)
cpus=${SLURM_TEST_CPUS:-8}
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
SlurmdParameters=config_overrides
KillWait=5
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
chown -R slurm:slurm /var/lib/slurm /var/log/slurm

/usr/sbin/slurmctld
sleep 1
/usr/sbin/slurmd
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix'; then
    echo "ci/slurm/start.sh: Slurm is up ($(sinfo -h -o '%P %D %T %c'))"; exit 0
  fi
  sleep 1
done
echo "ci/slurm/start.sh: the node did not come up" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1

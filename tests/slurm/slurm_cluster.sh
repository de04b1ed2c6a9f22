#!/usr/bin/env bash
# A real single-node SLURM cluster on loopback, for testing profiles/slurm for real.
# Debian 12 packages (munge, slurmctld, slurmd); run as root. No accounting daemon:
# the profile polls job states with squeue.
#
#   bash tests/slurm/slurm_cluster.sh start   # install (first time), configure, start daemons
#   bash tests/slurm/slurm_cluster.sh stop    # stop only the daemons this script started
#   bash tests/slurm/slurm_cluster.sh check   # exit 0 if this machine can host the cluster
#
# State, configs and logs live under $SLURM_TEST_ROOT (default /tmp/upstream-rain-slurm).
set -euo pipefail
R=${SLURM_TEST_ROOT:-/tmp/upstream-rain-slurm}
HN=$(hostname -s)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
unset SLURM_CONF

wait_for() {  # wait_for <seconds> <cmd...>
  local n=$(( $1 * 5 )); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timeout waiting for: $*" >&2; return 1
}

stop_pidfile() {
  local f=$1 p
  [ -s "$f" ] || return 0
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

do_check() {
  [ "$(id -u)" = 0 ] || { echo "needs root (installs Debian packages, starts daemons)"; return 1; }
  command -v apt-get >/dev/null || { echo "needs apt-get (Debian/Ubuntu)"; return 1; }
  [ -r /etc/debian_version ] || { echo "needs a Debian-based system"; return 1; }
  return 0
}

do_stop() {
  for d in slurmd slurmctld; do stop_pidfile "$R/run/$d.pid"; done
  if [ -e "$R/run/munged.ours" ]; then stop_pidfile /run/munge/munged.pid; rm -f "$R/run/munged.ours"; fi
  if [ -e "$R/run/conf-link.ours" ]; then rm -f /etc/slurm/slurm.conf "$R/run/conf-link.ours"; fi
}

do_start() {
  do_check
  mkdir -p "$R"/{etc,state/ctld,state/d,log,run}
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    # policy-rc.d keeps the packages' init scripts from starting daemons on install.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    local ok=1
    apt-get update -q >"$R/log/apt.log" 2>&1 || ok=0
    [ "$ok" = 1 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      munge slurmctld slurmd slurm-client >>"$R/log/apt.log" 2>&1 || ok=0; }
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    # Exit 3: the packages cannot be installed here (no package repository reachable).
    [ "$ok" = 1 ] || { echo "cannot install SLURM packages; see $R/log/apt.log" >&2; tail -5 "$R/log/apt.log" >&2; exit 3; }
  fi
  echo "packages: $(slurmctld -V)"

  # munge: Debian's postinst creates the key; make one if missing.
  [ -s /etc/munge/munge.key ] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key; }
  if ! (munge -n | unmunge) >/dev/null 2>&1; then
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$R/run/munged.ours"
    wait_for 10 bash -c 'munge -n | unmunge'
  fi

  # slurmd registers as `hostname -s`: it must resolve.
  getent hosts "$HN" >/dev/null || echo "127.0.0.1 $HN" >> /etc/hosts

  local node mem
  node=$(slurmd -C | head -1)
  mem=$(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$node")
  node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$(( mem * 9 / 10 ))/" <<<"$node")
  cat > "$R/etc/slurm.conf" <<CONF
ClusterName=upstreamrain
SlurmctldHost=${HN}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$R/state/ctld
SlurmdSpoolDir=$R/state/d
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HN Default=YES MaxTime=INFINITE State=UP
CONF
  # The plugin's job-step helper clears SLURM_CONF before its nested srun, so the
  # config must be at the compiled-in default path.
  mkdir -p /etc/slurm
  if [ ! -e /etc/slurm/slurm.conf ] || [ -e "$R/run/conf-link.ours" ]; then
    ln -sf "$R/etc/slurm.conf" /etc/slurm/slurm.conf; touch "$R/run/conf-link.ours"
  elif [ "$(readlink -f /etc/slurm/slurm.conf)" != "$R/etc/slurm.conf" ]; then
    echo "/etc/slurm/slurm.conf exists and is not ours; refusing to replace it" >&2; exit 1
  fi

  [ -s "$R/run/slurmctld.pid" ] && kill -0 "$(cat "$R/run/slurmctld.pid")" 2>/dev/null || slurmctld
  [ -s "$R/run/slurmd.pid" ] && kill -0 "$(cat "$R/run/slurmd.pid")" 2>/dev/null || slurmd
  wait_for 30 bash -c "sinfo -h -o %T | grep -qx idle"
  echo "cluster up: $(sinfo -h -o '%P %D %T %N %c CPUs %m MB')"
}

case "${1:-start}" in
  start) do_start ;;
  stop) do_stop ;;
  check) do_check ;;
  *) echo "usage: $0 start|stop|check" >&2; exit 2 ;;
esac

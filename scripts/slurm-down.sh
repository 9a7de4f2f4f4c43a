#!/usr/bin/env bash
# Stop the local SLURM cluster that scripts/slurm-up.sh started.
#
# Each daemon is ended through the PID in its pid file under NFT_SLURM_DIR (default
# /tmp/nft-slurm), in reverse start order: slurmd, slurmctld, slurmdbd, MariaDB, munged.
# A pid file whose process is gone, or whose PID now belongs to another program, is removed
# without sending a signal. The link /etc/slurm/slurm.conf to the cluster's configuration is
# removed. The state folder stays, so the next start keeps the job history. Delete the folder
# to start from scratch. Exits non-zero when a daemon did not stop.
set -uo pipefail

STATE_DIR=${NFT_SLURM_DIR:-/tmp/nft-slurm}
status=0

log() { printf 'slurm-down: %s\n' "$*" >&2; }

# stop_daemon PIDFILE PROGRAM: send SIGTERM, wait up to 30 s, then SIGKILL.
stop_daemon() {
    local pidfile=$1 program=$2 pid name
    if [[ ! -s $pidfile ]]; then
        return
    fi

    pid=$(cat "$pidfile")
    if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
        log "$program is not running (stale pid file $pidfile)"
        rm -f "$pidfile"
        return
    fi

    # The kernel's process name guards against a PID that was reused by another program.
    name=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [[ $name != "$program" ]]; then
        log "PID $pid from $pidfile is '$name', not $program, so it is left alone"
        rm -f "$pidfile"
        return
    fi

    log "stopping $program (PID $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            return
        fi
        sleep 0.1
    done

    log "$program (PID $pid) still running after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 1
    if kill -0 "$pid" 2>/dev/null; then
        log "error: could not stop $program (PID $pid)"
        status=1
    else
        rm -f "$pidfile"
    fi
}

if [[ ! -d $STATE_DIR ]]; then
    log "no cluster state in $STATE_DIR, nothing to stop"
    exit 0
fi
stop_daemon "$STATE_DIR/run/slurmd.pid" slurmd
stop_daemon "$STATE_DIR/run/slurmctld.pid" slurmctld
stop_daemon "$STATE_DIR/run/slurmdbd.pid" slurmdbd
stop_daemon "$STATE_DIR/mysql/mariadbd.pid" mariadbd
stop_daemon "$STATE_DIR/munge/munged.pid" munged
# Remove the link that slurm-up.sh created at the SLURM commands' default configuration path.
if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$STATE_DIR/etc/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
fi
exit $status

#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine for testing the SLURM profile.
#
# The cluster listens on 127.0.0.1 only and keeps its configuration, state, logs, pid files,
# munge key and MariaDB data under one folder, NFT_SLURM_DIR (default /tmp/nft-slurm).
# Daemons, in start order: munged (authentication), MariaDB on a Unix socket only, slurmdbd
# (job accounting, which sacct and the Snakemake SLURM plugin read), slurmctld, slurmd.
# The node gets the machine's CPUs, its available memory minus 1 GiB, and one generic
# resource "gpu" backed by /dev/null, so jobs can request a GPU (--gpus, --gres).
#
# Needs root. Missing Debian packages are installed with apt-get. Running it again while the
# cluster is up changes nothing. Besides the state folder, the script creates one file:
# /etc/slurm/slurm.conf, a symbolic link to the cluster's slurm.conf. Inside each job, the
# Snakemake SLURM jobstep plugin (2.6.1) removes SLURM_CONF from the environment of its srun
# call, so srun reads only that default path. The script stops if another file is at that
# path. Stop the cluster with scripts/slurm-down.sh.
set -euo pipefail

STATE_DIR=${NFT_SLURM_DIR:-/tmp/nft-slurm}
CLUSTER=nft
PARTITION=main
ACCOUNT=nft
NODE=$(hostname -s)
# Default SLURM ports. Change them if another SLURM already uses them on this machine.
SLURMCTLD_PORT=${NFT_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${NFT_SLURMD_PORT:-6818}
SLURMDBD_PORT=${NFT_SLURMDBD_PORT:-6819}

ETC=$STATE_DIR/etc
RUN=$STATE_DIR/run
LOG=$STATE_DIR/log
MUNGE=$STATE_DIR/munge
MYSQL=$STATE_DIR/mysql
MYSQL_SOCKET=$MYSQL/mysqld.sock
export SLURM_CONF=$ETC/slurm.conf

log() { printf 'slurm-up: %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

# True when the pid file names a running process.
pid_alive() {
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# wait_for SECONDS DESCRIPTION COMMAND...: rerun COMMAND (10 s limit per try) until it
# succeeds or SECONDS have passed.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        if timeout 10 "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    fail "$what did not become ready within ${seconds}s. See the logs in $LOG and $MUNGE"
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    if ((${#missing[@]} == 0)); then
        return
    fi
    command -v apt-get >/dev/null || fail "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]}"
    apt-get update -qq
    # policy-rc.d on containers and CI images keeps the packages from starting system daemons.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

start_munge() {
    if pid_alive "$MUNGE/munged.pid"; then
        return
    fi
    install -d -m 0755 -o munge -g munge "$MUNGE"
    if [[ ! -s $MUNGE/munge.key ]]; then
        dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE/munge.key"
    chmod 0400 "$MUNGE/munge.key"
    log "starting munged"
    runuser -u munge -- munged --socket="$MUNGE/munge.socket.2" --key-file="$MUNGE/munge.key" \
        --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" \
        --seed-file="$MUNGE/munged.seed"
    wait_for 10 munged test -S "$MUNGE/munge.socket.2"
}

mysql_root() {
    mariadb --no-defaults --socket="$MYSQL_SOCKET" --user=root "$@"
}

start_mariadb() {
    if ! pid_alive "$MYSQL/mariadbd.pid"; then
        if [[ ! -d $MYSQL/data/mysql ]]; then
            log "creating the MariaDB data folder"
            install -d -m 0700 "$MYSQL/data"
            mariadb-install-db --no-defaults --user=root --datadir="$MYSQL/data" \
                --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1
        fi
        log "starting MariaDB (Unix socket only)"
        setsid mariadbd --no-defaults --user=root --datadir="$MYSQL/data" \
            --socket="$MYSQL_SOCKET" --pid-file="$MYSQL/mariadbd.pid" --skip-networking \
            --log-error="$LOG/mariadb.log" </dev/null >/dev/null 2>&1 &
        wait_for 60 MariaDB mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" --user=root ping
        wait_for 10 "the MariaDB pid file" test -s "$MYSQL/mariadbd.pid"
    fi
    # slurmdbd logs in as its own database user, whose password only root can read.
    if [[ ! -s $ETC/db-password ]]; then
        (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$ETC/db-password")
    fi
    local password
    password=$(cat "$ETC/db-password")
    mysql_root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$password';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
}

write_slurmdbd_conf() {
    (umask 077 && cat >"$ETC/slurmdbd.conf") <<EOF
# Written by scripts/slurm-up.sh, which rewrites it on each start.
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket.2
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
CommunicationParameters=NoInAddrAny
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$(cat "$ETC/db-password")
StorageLoc=slurm_acct_db
EOF
}

write_slurm_conf() {
    local cpus memory_mib
    cpus=$(nproc)
    # Available memory minus 1 GiB for the daemons and the submitting Snakemake process.
    memory_mib=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 - 1024 }' /proc/meminfo)
    ((memory_mib >= 512)) || fail "only $((memory_mib + 1024)) MiB of memory available, but the cluster needs 1.5 GiB"
    cat >"$ETC/slurm.conf" <<EOF
# Written by scripts/slurm-up.sh, which rewrites it on each start.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
# Bind every daemon to the node address (127.0.0.1) instead of all interfaces.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket.2
CredType=cred/munge
StateSaveLocation=$STATE_DIR/state/slurmctld
SlurmdSpoolDir=$STATE_DIR/state/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# No cgroups: processes are tracked through /proc, and jobs are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$SLURMDBD_PORT
# With auth/munge, this names the munge socket for connections to slurmdbd.
AccountingStoragePass=$MUNGE/munge.socket.2
# Record GPU requests in ReqTRES and the job comment (the plugin's rule name) in sacct.
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
# Keep finished jobs in slurmctld for 5 minutes, so squeue and scontrol still show them.
MinJobAge=300
# A node that was down returns to service when its slurmd registers again.
ReturnToService=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mib Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    # SLURM 22.05 drops a gpu without a device file from the node, so /dev/null is its file.
    cat >"$ETC/gres.conf" <<EOF
# Written by scripts/slurm-up.sh: one GPU slot without a real device, for scheduling tests.
NodeName=$NODE Name=gpu File=/dev/null
EOF
}

start_slurmdbd() {
    if ! pid_alive "$RUN/slurmdbd.pid"; then
        log "starting slurmdbd"
        # slurmdbd passes no socket to the MariaDB client library, which then reads this variable.
        MYSQL_UNIX_PORT=$MYSQL_SOCKET slurmdbd
    fi
    wait_for 60 slurmdbd sacctmgr -n list cluster
}

add_accounting_entries() {
    if [[ -z $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]]; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    if [[ -z $(sacctmgr -n -P list account "$ACCOUNT" format=account) ]]; then
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
            description="local test account" organization=nft >/dev/null
    fi
    local user
    user=$(id -un)
    if [[ -z $(sacctmgr -n -P list association user="$user" account="$ACCOUNT" format=account) ]]; then
        sacctmgr -i add user "$user" account="$ACCOUNT" defaultaccount="$ACCOUNT" \
            cluster="$CLUSTER" >/dev/null
    fi
}

# Point the default configuration path of the SLURM commands at this cluster's file.
link_default_conf() {
    local default=/etc/slurm/slurm.conf
    if [[ -L $default && $(readlink "$default") == "$SLURM_CONF" ]]; then
        return
    fi
    if [[ -e $default || -L $default ]]; then
        fail "$default already exists and is not a link to $SLURM_CONF. Move it away first"
    fi
    install -d -m 0755 /etc/slurm
    ln -s "$SLURM_CONF" "$default"
}

node_state() {
    sinfo -h -n "$NODE" -o %t 2>/dev/null
}

start_slurm_daemons() {
    if ! pid_alive "$RUN/slurmctld.pid"; then
        log "starting slurmctld"
        slurmctld
    fi
    wait_for 30 slurmctld sh -c 'scontrol ping | grep -q "is UP"'
    if ! pid_alive "$RUN/slurmd.pid"; then
        log "starting slurmd"
        slurmd
    fi
    wait_for 30 "node $NODE" sh -c "sinfo -h -n '$NODE' -o %t | grep -Eq '^(idle|mix|alloc|drain|drng|down)$'"
    # slurmctld keeps a drain or down state from an earlier start (for example, one with
    # another configuration) until it is cleared, even when the node now registers fine.
    if [[ $(node_state) =~ ^(drain|drng|down)$ ]]; then
        log "resuming node $NODE (state $(node_state))"
        scontrol update nodename="$NODE" state=resume
    fi
    wait_for 30 "node $NODE" sh -c "sinfo -h -n '$NODE' -o %t | grep -Eq '^(idle|mix|alloc)$'"
}

all_running() {
    pid_alive "$MUNGE/munged.pid" && pid_alive "$MYSQL/mariadbd.pid" \
        && pid_alive "$RUN/slurmdbd.pid" && pid_alive "$RUN/slurmctld.pid" \
        && pid_alive "$RUN/slurmd.pid"
}

main() {
    [[ $(id -u) == 0 ]] || fail "run as root (the daemons run as root and munged as user munge)"
    # A second start leaves a running cluster and its configuration alone.
    if all_running; then
        start_slurm_daemons
        link_default_conf
        log "cluster $CLUSTER is already running: node $NODE ($(node_state))"
        return
    fi
    install_packages
    install -d -m 0755 "$STATE_DIR" "$ETC" "$RUN" "$LOG" "$MYSQL" \
        "$STATE_DIR/state/slurmctld" "$STATE_DIR/state/slurmd"
    start_munge
    start_mariadb
    write_slurmdbd_conf
    write_slurm_conf
    link_default_conf
    start_slurmdbd
    add_accounting_entries
    start_slurm_daemons
    log "cluster $CLUSTER is up: partition $PARTITION, account $ACCOUNT, node $NODE ($(node_state))"
}

main "$@"

#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL 15 server for aether's tests, with no Docker.
#
#   eval "$(scripts/postgres.sh start)"   # exports DATABASE_URL, AETHER_PG_DATA, AETHER_PG_PID
#   scripts/postgres.sh restart           # restarts it and prints the export lines again
#   scripts/postgres.sh stop              # stops it and removes the folder that start created
#   scripts/postgres.sh check             # starts, queries, restarts and stops a server of its own
#
# Only the export lines go to stdout. Progress and errors go to stderr.
#
# Environment read by `start`:
#   DATABASE_URL   when set, `start` prints it back and starts nothing (bring your own server).
#   AETHER_PG_DIR  folder (created when missing) in which `start` creates a unique data folder.
#                  Without it, `start` creates a temporary folder, which `stop` removes as well.
#   AETHER_PG_SSL_CERT_FILE, AETHER_PG_SSL_KEY_FILE
#                  PEM files of the server's certificate and private key. When both are set,
#                  `start` copies them into the data folder (owned by the server's user, the key
#                  with mode 0600) and turns on ssl. Setting only one of them is an error.
#   AETHER_PG_SSL_CA_FILE
#                  optional PEM file of the certificate authorities that verify client
#                  certificates (PostgreSQL's ssl_ca_file), copied as well. Needs the two above.
#   AETHER_PG_HBA_FILE
#                  file whose content replaces the pg_hba.conf that `start` writes, for example
#                  to accept only hostssl connections or client certificates.
# Environment read by `restart`:
#   AETHER_PG_RESTART_PAUSE  whole seconds to keep the server stopped before it starts again
#                            (default 0), so that tests can make clients see an outage.
#
# Run as root on Debian 12: a missing server gets installed with apt-get (package postgresql-15),
# and the server runs as the `postgres` system user because initdb and postgres reject root.
# As any other user, the server runs as that user, and an install goes through `sudo -n`.
#
# The Debian package creates its own cluster (port 5432, /etc/postgresql/15/main) and may start
# it. This script never uses, starts or stops that cluster: `stop` and `restart` act only on a
# data folder that carries the marker file written by `start`.
set -euo pipefail

readonly PG_VERSION=15
readonly PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
readonly PG_PACKAGE="postgresql-$PG_VERSION"
readonly SELF="${BASH_SOURCE[0]}"

# File in each data folder that `start` creates. `stop` and `restart` reject a folder without it.
readonly OWNER_MARKER=aether-pg-owner
# File in a parent folder that `start` created with mktemp, so `stop` removes that parent too.
readonly BASE_MARKER=.aether-pg-base
# Settings of this script, included from postgresql.conf so they override initdb's defaults.
readonly SETTINGS_FILE=aether.conf
# Names of the TLS files that `start` copies into the data folder.
readonly SSL_CERT_NAME=server.crt
readonly SSL_KEY_NAME=server.key
readonly SSL_CA_NAME=root.crt
readonly SERVER_LOG=server.log

# Ports are drawn below Linux's default ephemeral range (32768-60999), so the source ports of
# outgoing connections do not take them. A port lost to a race is detected by the failed bind.
readonly PORT_MIN=15433
readonly PORT_MAX=32767
readonly PORT_ATTEMPTS=20
readonly MAX_CONNECTIONS=200
readonly START_TIMEOUT_SECS=60
readonly STOP_TIMEOUT_SECS=60
readonly READY_TIMEOUT_SECS=30
readonly EXIT_TIMEOUT_SECS=10
readonly CRASH_START_ATTEMPTS=30
readonly APT_LOCK_TIMEOUT_SECS=300
readonly APT_UPDATE_ATTEMPTS=3
readonly INSTALL_LOCK="${TMPDIR:-/tmp}/aether-postgres-install.lock"
# Linux limit for a unix socket path (sun_path is 108 bytes including the final NUL).
readonly MAX_SOCKET_PATH_BYTES=107

log() {
  printf 'postgres.sh: %s\n' "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

usage() {
  cat >&2 <<EOF
usage: $SELF start|stop|restart|check

  start    start a PostgreSQL $PG_VERSION server on 127.0.0.1 and print export lines for eval
  stop     stop the server in \$AETHER_PG_DATA and remove its folder
  restart  restart the server in \$AETHER_PG_DATA and print the export lines again
  check    start, query, restart and stop a server of its own, and verify the cleanup
EOF
}

# Runs a command as the unprivileged owner of the data folder. The working folder becomes /
# because the caller's (often /root) may be unreadable for the postgres user.
as_pg() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Gives paths to the postgres user when running as root. Other users already own what they create.
chown_pg() {
  if ((EUID == 0)); then
    chown postgres:postgres -- "$@"
  fi
}

server_installed() {
  [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl && -x $PG_BIN/postgres && -x $PG_BIN/pg_isready ]]
}

# Installs the Debian package when the server binaries are missing.
ensure_server_installed() {
  server_installed && return

  local -a elevate=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null ||
      die "installing $PG_PACKAGE requires root, so run this script as root or install $PG_PACKAGE first"
    # NOTE: this sudo path has not been run by a test, unlike the install as root.
    elevate=(sudo -n)
  fi

  # Parallel starts on a fresh machine install one at a time, and the later ones find the
  # binaries in place. apt-get runs with the lock file closed, because a server that a package
  # script starts would otherwise inherit it and hold the lock for as long as it runs.
  # flock needs only a read-only descriptor, so a lock file that root created works for others.
  local install_lock_fd
  [[ -e $INSTALL_LOCK ]] || : >>"$INSTALL_LOCK"
  exec {install_lock_fd}<"$INSTALL_LOCK"
  if ! flock -n "$install_lock_fd"; then
    log "another start is installing $PG_PACKAGE, so waiting up to ${APT_LOCK_TIMEOUT_SECS}s for $INSTALL_LOCK"
    flock -w "$APT_LOCK_TIMEOUT_SECS" "$install_lock_fd" ||
      die "timed out after ${APT_LOCK_TIMEOUT_SECS}s waiting for $INSTALL_LOCK, held by another install"
  fi
  if server_installed; then
    exec {install_lock_fd}>&-
    return
  fi

  log "PostgreSQL $PG_VERSION server binaries not found in $PG_BIN, so installing $PG_PACKAGE with apt-get"
  # DPkg::Lock::Timeout makes apt-get wait for the dpkg lock held by another package manager, but
  # apt-get update does not wait for the package lists lock, so update gets a few attempts.
  local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get -qq -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT_SECS")
  local attempt
  for ((attempt = 1; ; attempt++)); do
    "${elevate[@]}" "${apt[@]}" update >&2 {install_lock_fd}>&- && break
    ((attempt < APT_UPDATE_ATTEMPTS)) || die "apt-get update failed $APT_UPDATE_ATTEMPTS times"
    log "apt-get update failed (attempt $attempt of $APT_UPDATE_ATTEMPTS), retrying in 10s"
    sleep 10
  done
  "${elevate[@]}" "${apt[@]}" -y install --no-install-recommends "$PG_PACKAGE" >&2 {install_lock_fd}>&- ||
    die "apt-get install $PG_PACKAGE failed"
  exec {install_lock_fd}>&-

  server_installed ||
    die "$PG_PACKAGE is installed but server binaries are missing from $PG_BIN"
}

ensure_postgres_user() {
  if ((EUID == 0)) && ! getent passwd postgres >/dev/null; then
    die "system user postgres not found. The $PG_PACKAGE package creates it (apt-get install $PG_PACKAGE)"
  fi
}

# Succeeds when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
  # shellcheck disable=SC2016 # $0 is expanded by the inner bash, which receives the port as $0.
  timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

pick_port() {
  local port attempt
  for ((attempt = 1; attempt <= 100; attempt++)); do
    port=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % (PORT_MAX - PORT_MIN + 1)))
    if ! port_in_use "$port"; then
      printf '%s\n' "$port"
      return
    fi
  done
  die "no free TCP port found on 127.0.0.1 in $PORT_MIN-$PORT_MAX after 100 probes"
}

# Quotes a value as a postgresql.conf string literal.
conf_string() {
  printf "'%s'" "${1//\'/\'\'}"
}

write_settings() {
  local data=$1 port=$2
  local settings="$data/$SETTINGS_FILE"
  cat >"$settings" <<EOF
# Written by scripts/postgres.sh for a throwaway test server.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = $(conf_string "$data/socket")
max_connections = $MAX_CONNECTIONS
# PostgreSQL's defaults, repeated because aether's tests check that acknowledged commits survive
# a restart, and this file is read last, so an edited postgresql.conf cannot turn them off.
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
  if [[ -f $data/$SSL_CERT_NAME ]]; then
    cat >>"$settings" <<EOF
ssl = on
ssl_cert_file = $(conf_string "$data/$SSL_CERT_NAME")
ssl_key_file = $(conf_string "$data/$SSL_KEY_NAME")
EOF
  fi
  if [[ -f $data/$SSL_CA_NAME ]]; then
    printf 'ssl_ca_file = %s\n' "$(conf_string "$data/$SSL_CA_NAME")" >>"$settings"
  fi
  chown_pg "$settings"
}

# Checks the TLS and pg_hba.conf files named by the environment before anything is created.
check_start_files() {
  local cert=${AETHER_PG_SSL_CERT_FILE:-} key=${AETHER_PG_SSL_KEY_FILE:-} ca=${AETHER_PG_SSL_CA_FILE:-}
  if [[ -n $cert || -n $key ]]; then
    [[ -n $cert && -n $key ]] ||
      die "AETHER_PG_SSL_CERT_FILE and AETHER_PG_SSL_KEY_FILE must be set together, got only one of them"
  elif [[ -n $ca ]]; then
    die "AETHER_PG_SSL_CA_FILE needs AETHER_PG_SSL_CERT_FILE and AETHER_PG_SSL_KEY_FILE, because it only works with ssl on"
  fi
  local file
  for file in "$cert" "$key" "$ca" "${AETHER_PG_HBA_FILE:-}"; do
    [[ -z $file || -r $file ]] || die "file $file not found or not readable"
  done
}

# Copies a file into the data folder with the given mode, owned by the server's user.
install_file() {
  local source=$1 target=$2 mode=$3
  cp -- "$source" "$target"
  chmod "$mode" -- "$target"
  chown_pg "$target"
}

# Copies the server's certificate, key and client CA into the data folder. PostgreSQL rejects a
# key file that its group or others may read, so the key gets mode 0600.
install_ssl_files() {
  local data=$1
  [[ -n ${AETHER_PG_SSL_CERT_FILE:-} ]] || return 0
  install_file "$AETHER_PG_SSL_CERT_FILE" "$data/$SSL_CERT_NAME" 0644
  install_file "$AETHER_PG_SSL_KEY_FILE" "$data/$SSL_KEY_NAME" 0600
  if [[ -n ${AETHER_PG_SSL_CA_FILE:-} ]]; then
    install_file "$AETHER_PG_SSL_CA_FILE" "$data/$SSL_CA_NAME" 0644
  fi
}

read_port() {
  local data=$1 port
  port=$(sed -n 's/^port = \([0-9][0-9]*\)$/\1/p' "$data/$SETTINGS_FILE")
  [[ -n $port ]] || die "no port setting found in $data/$SETTINGS_FILE"
  printf '%s\n' "$port"
}

read_postmaster_pid() {
  local data=$1 pid
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || true
  [[ $pid =~ ^[0-9]+$ ]] || die "no postmaster PID found in $data/postmaster.pid"
  printf '%s\n' "$pid"
}

# Prints the state letter of a process (R, S, D, Z, ...) from /proc, or fails when it is gone.
pid_state() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  printf '%s\n' "${stat:0:1}"
}

# Succeeds while the process exists and is not a zombie. A zombie counts as gone, because an exited
# postmaster stays a zombie until PID 1 reaps it, which some container and VM inits do late.
pid_alive() {
  local state
  state=$(pid_state "$1") && [[ $state != Z ]]
}

pid_zombie() {
  local state
  state=$(pid_state "$1") && [[ $state == Z ]]
}

# Prints the PID from postmaster.pid and succeeds when that postmaster still runs.
running_postmaster_pid() {
  local data=$1 pid
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

# Starts a server whose postmaster is dead, for example after a kill -9 of it.
start_after_crash() {
  local data=$1 log_file=$2

  # The dead postmaster's PID stays in postmaster.pid and in the socket lock file. The server
  # ignores both once that PID is gone, but a zombie still counts as running, so wait for PID 1
  # to reap it.
  local old_pid
  old_pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || true
  if [[ $old_pid =~ ^[0-9]+$ ]] && pid_zombie "$old_pid"; then
    log "waiting up to ${EXIT_TIMEOUT_SECS}s for PID 1 to reap the exited postmaster PID $old_pid"
    local deadline=$((SECONDS + EXIT_TIMEOUT_SECS))
    while pid_zombie "$old_pid"; do
      ((SECONDS < deadline)) ||
        die "exited postmaster PID $old_pid is still a zombie after ${EXIT_TIMEOUT_SECS}s, so PostgreSQL cannot start in $data. In a container, run an init that reaps orphans (docker run --init)"
      sleep 0.2
    done
  fi

  # The server rejects a start while backends of the old postmaster still hold its shared memory.
  local attempt log_lines
  for ((attempt = 1; attempt <= CRASH_START_ATTEMPTS; attempt++)); do
    log_lines=$(wc -l <"$log_file" 2>/dev/null || echo 0)
    if as_pg "$PG_BIN/pg_ctl" start -D "$data" -l "$log_file" -w -t "$START_TIMEOUT_SECS" -s >&2; then
      return
    fi
    if ! tail -n "+$((log_lines + 1))" "$log_file" 2>/dev/null | grep -q 'pre-existing shared memory block .* is still in use'; then
      break
    fi
    log "processes of the old postmaster still hold its shared memory, retrying in 1s"
    sleep 1
  done
  show_log_tail "$log_file"
  die "pg_ctl start failed for $data after its postmaster died"
}

wait_pid_gone() {
  local pid=$1
  local deadline=$((SECONDS + EXIT_TIMEOUT_SECS))
  while pid_alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

wait_ready() {
  local port=$1
  local deadline=$((SECONDS + READY_TIMEOUT_SECS))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U postgres -t 2; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

print_exports() {
  local data=$1 port=$2 pid=$3
  printf 'export DATABASE_URL=%q\n' "postgres://postgres@127.0.0.1:$port/postgres"
  printf 'export AETHER_PG_DATA=%q\n' "$data"
  printf 'export AETHER_PG_PID=%q\n' "$pid"
}

show_log_tail() {
  local log_file=$1
  if [[ -f $log_file ]]; then
    log "last lines of $log_file:"
    tail -n 20 "$log_file" >&2
  fi
}

# Checks that AETHER_PG_DATA names a data folder created by `start`, and prints it.
require_owned_data() {
  local data=${AETHER_PG_DATA:-}
  [[ -n $data ]] || die "AETHER_PG_DATA is not set. Run eval \"\$($SELF start)\" first"
  [[ -f $data/$OWNER_MARKER ]] ||
    die "$data contains no $OWNER_MARKER file, so $SELF start did not create it and this script leaves it alone"
  printf '%s\n' "$data"
}

# State of a `start` in progress, so a failed start removes what it made.
START_DATA=
START_BASE=

cleanup_failed_start() {
  local status=$?
  trap - EXIT
  ((status != 0)) || return 0

  if [[ -n $START_DATA && -f $START_DATA/postmaster.pid ]]; then
    as_pg "$PG_BIN/pg_ctl" stop -D "$START_DATA" -m immediate -w -t "$EXIT_TIMEOUT_SECS" -s || true
  fi
  if [[ -n $START_DATA ]]; then
    rm -rf -- "$START_DATA"
  fi
  if [[ -n $START_BASE ]]; then
    rm -f -- "$START_BASE/$BASE_MARKER"
    rmdir -- "$START_BASE" 2>/dev/null || true
  fi
  exit "$status"
}

cmd_start() {
  if [[ -n ${DATABASE_URL:-} ]]; then
    log "DATABASE_URL is already set, so no server is started"
    printf 'export DATABASE_URL=%q\n' "$DATABASE_URL"
    return
  fi

  check_start_files
  ensure_server_installed
  ensure_postgres_user
  trap cleanup_failed_start EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # Create a unique data folder, so parallel starts never share one.
  local base
  if [[ -n ${AETHER_PG_DIR:-} ]]; then
    mkdir -p -- "$AETHER_PG_DIR"
    base=$(cd -- "$AETHER_PG_DIR" && pwd -P)
  else
    base=$(mktemp -d -t aether-pg.XXXXXX)
    START_BASE=$base
    : >"$base/$BASE_MARKER"
    chmod 0711 -- "$base"
  fi
  local data
  data=$(mktemp -d "$base/data.XXXXXX")
  START_DATA=$data
  chown_pg "$data"
  as_pg test -w "$data" ||
    die "the postgres user cannot write to $data. Make every parent folder of it searchable (chmod o+x) or set AETHER_PG_DIR to another folder"

  local socket_path="$data/socket/.s.PGSQL.$PORT_MAX"
  ((${#socket_path} <= MAX_SOCKET_PATH_BYTES)) ||
    die "unix socket path $socket_path is longer than $MAX_SOCKET_PATH_BYTES bytes. Set AETHER_PG_DIR (or TMPDIR) to a shorter folder"

  # Create the cluster. initdb's output is shown only when it fails.
  local initdb_output
  if ! initdb_output=$(as_pg "$PG_BIN/initdb" --pgdata="$data" --username=postgres \
    --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-instructions 2>&1); then
    printf '%s\n' "$initdb_output" >&2
    die "initdb failed for $data"
  fi
  printf 'Created by scripts/postgres.sh start. scripts/postgres.sh stop removes this folder.\n' \
    >"$data/$OWNER_MARKER"

  # By default, accept connections from the unix socket in this folder and from 127.0.0.1 only.
  # Trust needs no password, so any local user who can reach 127.0.0.1 can connect as any role.
  # The server listens on 127.0.0.1 only, whatever AETHER_PG_HBA_FILE allows.
  if [[ -n ${AETHER_PG_HBA_FILE:-} ]]; then
    cp -- "$AETHER_PG_HBA_FILE" "$data/pg_hba.conf"
  else
    cat >"$data/pg_hba.conf" <<EOF
# Written by scripts/postgres.sh for a throwaway test server.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
EOF
  fi
  install_ssl_files "$data"
  printf "include '%s'\n" "$SETTINGS_FILE" >>"$data/postgresql.conf"
  mkdir -m 0700 -- "$data/socket"
  chown_pg "$data/$OWNER_MARKER" "$data/pg_hba.conf" "$data/socket"

  # Start on a random free port. Another process can bind the port between the probe and the
  # server's own bind, so a failed bind means another attempt with a new port.
  local port attempt pg_ctl_output started=false
  local log_file="$data/$SERVER_LOG"
  for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
    port=$(pick_port)
    write_settings "$data" "$port"
    rm -f -- "$log_file"
    if pg_ctl_output=$(as_pg "$PG_BIN/pg_ctl" start -D "$data" -l "$log_file" -w -t "$START_TIMEOUT_SECS" -s 2>&1); then
      started=true
      break
    fi
    if [[ -f $data/postmaster.pid ]] || ! grep -q 'Address already in use' "$log_file" 2>/dev/null; then
      printf '%s\n' "$pg_ctl_output" >&2
      show_log_tail "$log_file"
      die "pg_ctl start failed for $data on port $port"
    fi
    log "port $port was taken before the server could bind it, so trying another port"
  done
  $started || die "server did not start after $PORT_ATTEMPTS ports were taken before it could bind them"

  if ! wait_ready "$port"; then
    show_log_tail "$log_file"
    die "server on 127.0.0.1:$port did not accept connections within ${READY_TIMEOUT_SECS}s"
  fi

  local pid
  pid=$(read_postmaster_pid "$data")
  trap - EXIT INT TERM
  log "PostgreSQL $PG_VERSION running on 127.0.0.1:$port (postmaster PID $pid, data folder $data, log $log_file)"
  print_exports "$data" "$port" "$pid"
}

cmd_stop() {
  if [[ -z ${AETHER_PG_DATA:-} && -n ${DATABASE_URL:-} ]]; then
    log "AETHER_PG_DATA is not set, so this script started no server. The server at DATABASE_URL is left alone"
    return
  fi
  if [[ -n ${AETHER_PG_DATA:-} && ! -e $AETHER_PG_DATA ]]; then
    log "$AETHER_PG_DATA does not exist, so there is nothing to stop"
    return
  fi
  local data
  data=$(require_owned_data)

  # pg_ctl signals the postmaster whose PID is in postmaster.pid, then waits for it to exit. It is
  # skipped for a dead postmaster, because pg_ctl counts a zombie as running and then fails.
  local pid
  if pid=$(running_postmaster_pid "$data"); then
    if ! as_pg "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t "$STOP_TIMEOUT_SECS" -s >&2; then
      log "fast shutdown of postmaster PID $pid timed out after ${STOP_TIMEOUT_SECS}s, so trying immediate shutdown"
      as_pg "$PG_BIN/pg_ctl" stop -D "$data" -m immediate -w -t "$STOP_TIMEOUT_SECS" -s >&2 ||
        die "pg_ctl stop failed for postmaster PID $pid, so $data was kept"
    fi
    wait_pid_gone "$pid" ||
      die "postmaster PID $pid still runs ${EXIT_TIMEOUT_SECS}s after pg_ctl stop, so $data was kept"
    log "stopped postmaster PID $pid"
  else
    log "no server runs in $data"
  fi

  # Remove the data folder, and its parent when start created that with mktemp.
  local base
  base=$(dirname -- "$data")
  rm -rf -- "$data"
  if [[ -f $base/$BASE_MARKER ]]; then
    rm -f -- "$base/$BASE_MARKER"
    rmdir -- "$base" 2>/dev/null || log "kept $base because it contains other files"
  fi
  log "removed $data"
}

cmd_restart() {
  local data port pid
  data=$(require_owned_data)
  port=$(read_port "$data")

  local log_file="$data/$SERVER_LOG"
  local pause=${AETHER_PG_RESTART_PAUSE:-0}
  [[ $pause =~ ^[0-9]+$ ]] || die "AETHER_PG_RESTART_PAUSE must be whole seconds, got '$pause'"
  if ((pause > 0)) && running_postmaster_pid "$data" >/dev/null; then
    # Keep the server down for a while, so clients see it gone rather than a quick blip.
    if ! as_pg "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t "$START_TIMEOUT_SECS" -s >&2; then
      show_log_tail "$log_file"
      die "pg_ctl stop failed for $data"
    fi
    sleep "$pause"
  fi
  if running_postmaster_pid "$data" >/dev/null; then
    if ! as_pg "$PG_BIN/pg_ctl" restart -D "$data" -l "$log_file" -m fast -w -t "$START_TIMEOUT_SECS" -s >&2; then
      show_log_tail "$log_file"
      die "pg_ctl restart failed for $data"
    fi
  else
    start_after_crash "$data" "$log_file"
  fi
  if ! wait_ready "$port"; then
    show_log_tail "$log_file"
    die "server on 127.0.0.1:$port did not accept connections within ${READY_TIMEOUT_SECS}s after restart"
  fi

  pid=$(read_postmaster_pid "$data")
  log "PostgreSQL $PG_VERSION restarted on 127.0.0.1:$port (postmaster PID $pid)"
  print_exports "$data" "$port" "$pid"
}

# Runs psql against a database URL and prints the single result value.
query() {
  "$PG_BIN/psql" "$1" -X -q -A -t -v ON_ERROR_STOP=1 -c "$2"
}

expect_equal() {
  local what=$1 expected=$2 actual=$3
  [[ $actual == "$expected" ]] || die "check failed: $what is '$actual', expected '$expected'"
}

cmd_check() {
  unset DATABASE_URL AETHER_PG_DATA AETHER_PG_PID

  local exports
  exports=$("$SELF" start)
  eval "$exports"
  # Stop the server when a check below fails, so no server or folder stays behind.
  trap '"$SELF" stop || true' EXIT

  local version
  version=$(query "$DATABASE_URL" 'select version()')
  log "connected: $version"
  expect_equal "server_version_num major" "$PG_VERSION" "$(query "$DATABASE_URL" "select current_setting('server_version_num')::int / 10000")"
  expect_equal fsync on "$(query "$DATABASE_URL" 'show fsync')"
  expect_equal max_connections "$MAX_CONNECTIONS" "$(query "$DATABASE_URL" 'show max_connections')"
  expect_equal listen_addresses 127.0.0.1 "$(query "$DATABASE_URL" 'show listen_addresses')"

  local database="aether_check_$$"
  local database_url="${DATABASE_URL%/*}/$database"
  query "$DATABASE_URL" "create database $database"
  query "$database_url" 'create table t (id int primary key)'
  query "$database_url" 'insert into t values (1), (2)'
  expect_equal "row count in $database" 2 "$(query "$database_url" 'select count(*) from t')"

  # A committed row must survive a restart, and the restart must bring a new postmaster.
  # shellcheck disable=SC2153 # AETHER_PG_PID is set by the eval of the start output above.
  local old_pid=$AETHER_PG_PID
  exports=$("$SELF" restart)
  eval "$exports"
  [[ $AETHER_PG_PID != "$old_pid" ]] || die "check failed: postmaster PID $old_pid did not change after restart"
  pid_alive "$old_pid" && die "check failed: old postmaster PID $old_pid still runs after restart"
  expect_equal "row count after restart" 2 "$(query "$database_url" 'select count(*) from t')"

  query "$DATABASE_URL" "drop database $database"
  expect_equal "databases named $database" 0 "$(query "$DATABASE_URL" "select count(*) from pg_database where datname = '$database'")"

  trap - EXIT
  "$SELF" stop
  pid_alive "$AETHER_PG_PID" && die "check failed: postmaster PID $AETHER_PG_PID still runs after stop"
  [[ ! -e $AETHER_PG_DATA ]] || die "check failed: $AETHER_PG_DATA still exists after stop"
  log "check passed: server on ${DATABASE_URL#*@} started, restarted and stopped; PID $AETHER_PG_PID gone, $AETHER_PG_DATA removed"
}

main() {
  if (($# != 1)); then
    usage
    exit 2
  fi
  case $1 in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_restart ;;
    check) cmd_check ;;
    -h | --help | help) usage ;;
    *)
      log "error: unknown subcommand '$1'"
      usage
      exit 2
      ;;
  esac
}

main "$@"

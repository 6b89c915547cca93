#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests, demos and benchmarks.
#
#   eval "$(bash test/helpers/pg-tmp.sh start)"   # prints export lines (PGTMP_DIR, PGHOST, PGPORT, ..., DATABASE_URL)
#   bash test/helpers/pg-tmp.sh restart "$PGTMP_DIR"  # fast stop, then start again on the same port and data
#   bash test/helpers/pg-tmp.sh stop "$PGTMP_DIR"     # immediate stop, then remove the directory
#
# Works as root (initdb/postgres run as the `postgres` user through runuser) and as a normal user.
# Set PG_BINDIR to use other binaries than /usr/lib/postgresql/<15 or newest>/bin.
set -euo pipefail

# An ASan/LSan test run must not leak its preload into initdb/postgres.
unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS

die() { echo "pg-tmp: $*" >&2; exit 1; }

find_bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then
    [[ -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pg_ctl" ]] || die "PG_BINDIR=$PG_BINDIR has no initdb/pg_ctl (install the Debian package postgresql-15 or postgresql)"
    echo "$PG_BINDIR"; return
  fi
  local d
  if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then echo /usr/lib/postgresql/15/bin; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return; fi
  done
  d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return; fi
  die "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH.
Install them, e.g.: apt-get install -y postgresql-15   (or the Debian package 'postgresql'),
or set PG_BINDIR to the directory holding initdb and pg_ctl."
}

BINDIR=$(find_bindir)

# As root, the server must run as an unprivileged user.
AS=()
if [[ $(id -u) -eq 0 ]]; then
  id -u postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user (it comes with the postgresql-15 / postgresql Debian package)"
  command -v runuser >/dev/null || die "running as root but 'runuser' is missing (util-linux)"
  AS=(runuser -u postgres --)
fi

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# pg_ctl start on $1 (dir) and $2 (port); returns pg_ctl's status.
pg_start() {
  local dir=$1 port=$2
  "${AS[@]}" "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null 2>&1
}

print_exports() {
  local dir=$1 port=$2
  cat <<EOF
export PGTMP_DIR=$dir
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=postgres
export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres
EOF
}

cmd_start() {
  local dir port attempt
  dir=$(mktemp -d "${TMPDIR:-/tmp}/pgtmp.XXXXXX")
  chmod 755 "$dir"
  [[ ${#AS[@]} -gt 0 ]] && chown postgres "$dir"
  if ! "${AS[@]}" "$BINDIR/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
       --no-sync --no-instructions >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed"
  fi
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if pg_start "$dir" "$port"; then
      echo "$port" >"$dir/port"
      print_exports "$dir" "$port"
      return 0
    fi
    # Most likely a port race: another process took the port in between. Retry with a new one.
    "${AS[@]}" "$BINDIR/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  done
  tail -n 20 "$dir/server.log" >&2 || true
  rm -rf "$dir"
  die "could not start PostgreSQL after 5 attempts"
}

check_dir() {
  [[ -n "${1:-}" ]] || die "usage: $0 stop|restart DIR"
  [[ -f "$1/port" && -d "$1/data" ]] || die "$1 is not a pg-tmp cluster directory"
}

cmd_stop() {
  check_dir "${1:-}"
  "${AS[@]}" "$BINDIR/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$1"
}

cmd_restart() {
  check_dir "${1:-}"
  local dir=$1 port
  port=$(cat "$dir/port")
  "${AS[@]}" "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  pg_start "$dir" "$port" || { tail -n 20 "$dir/server.log" >&2; die "restart on port $port failed"; }
  print_exports "$dir" "$port"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  restart) cmd_restart "${2:-}" ;;
  *) die "usage: $0 start | stop DIR | restart DIR" ;;
esac

#!/usr/bin/env bash
# Entrypoint for ragctl-test/postgres:15, modelled on the official postgres
# image's docker-entrypoint.sh:
#   POSTGRES_PASSWORD          superuser password (required unless
#                              POSTGRES_HOST_AUTH_METHOD=trust); POSTGRES_PASSWORD_FILE too
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_DB                database created on first init (default = user)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   POSTGRES_INITDB_WALDIR     initdb --waldir
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for remote hosts (default scram-sha-256)
#   PGDATA                     data directory (default /var/lib/postgresql/data)
# On first start (no PG_VERSION in PGDATA) runs initdb and then
# /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz against a temporary
# socket-only server. Then execs postgres with the given arguments.
set -Eeo pipefail

file_env() {
  # file_env VAR [DEFAULT]: VAR or VAR_FILE (not both).
  local var="$1" fileVar="${1}_FILE" def="${2:-}" val
  if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
    echo >&2 "error: both $var and $fileVar are set (but are exclusive)"; exit 1
  fi
  val="$def"
  if [ "${!var:-}" ]; then val="${!var}"
  elif [ "${!fileVar:-}" ]; then val="$(<"${!fileVar}")"; fi
  export "$var"="$val"
  unset "$fileVar"
}

# "docker run image -c foo=bar" -> postgres -c foo=bar
if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
  exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

if [ "$(id -u)" = '0' ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA" || true
  chmod 00700 "$PGDATA" || true
  mkdir -p /var/run/postgresql
  chown postgres:postgres /var/run/postgresql
  chmod 03775 /var/run/postgresql
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chown postgres:postgres "$POSTGRES_INITDB_WALDIR"
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  # Only chown the data dir recursively if it is not ours already.
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' + 2>/dev/null || true
  exec env HOME=/var/lib/postgresql setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (Or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections
       without a password. This is *not* recommended.)
MSG
    exit 1
  fi

  initdb_args=(--username="$POSTGRES_USER")
  pwfile=""
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb_args+=(--pwfile="$pwfile")
  fi
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    initdb_args+=(--waldir="$POSTGRES_INITDB_WALDIR")
  fi
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is word-split on purpose
  initdb "${initdb_args[@]}" $POSTGRES_INITDB_ARGS
  [ -z "$pwfile" ] || rm -f "$pwfile"

  # Local socket connections stay "trust" (initdb default); remote hosts use
  # POSTGRES_HOST_AUTH_METHOD, exactly like the official image.
  if [ "$POSTGRES_HOST_AUTH_METHOD" = md5 ] || [ "$POSTGRES_HOST_AUTH_METHOD" = scram-sha-256 ]; then
    echo "password_encryption = '$POSTGRES_HOST_AUTH_METHOD'" >>"$PGDATA/postgresql.auto.conf"
  fi
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

  # Temporary server on the unix socket only.
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" \
    -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start

  psql_cmd=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ "$POSTGRES_DB" != postgres ]; then
    "${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
  fi
  psql_cmd+=(--dbname "$POSTGRES_DB")
  export PGPASSWORD="${POSTGRES_PASSWORD:-}"

  echo
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        # shellcheck disable=SC1090  # user-supplied init script
        if [ -x "$f" ]; then echo "$0: running $f"; "$f"
        else echo "$0: sourcing $f"; . "$f"; fi
        ;;
      *.sql)    echo "$0: running $f"; "${psql_cmd[@]}" -f "$f"; echo ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql_cmd[@]}"; echo ;;
      *)        echo "$0: ignoring $f" ;;
    esac
  done
  unset PGPASSWORD

  pg_ctl -D "$PGDATA" -m fast -w stop
  echo
  echo 'PostgreSQL init process complete; ready for start up.'
  echo
else
  echo
  echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
  echo
fi

exec "$@"

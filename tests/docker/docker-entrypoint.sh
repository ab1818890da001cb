#!/bin/sh
# The official postgres image's contract, for the image build-image makes from Debian's packages:
# POSTGRES_USER (default postgres) is the superuser, with POSTGRES_PASSWORD; POSTGRES_DB (default
# the user's name) is created; connections on the container's own socket and loopback are trusted,
# any other host authenticates with POSTGRES_HOST_AUTH_METHOD (default scram-sha-256). The server
# listens on 5432 of every address; arguments starting with "-" are the server's options
# (`postgres -c fsync=off` and `-c fsync=off` alike); any other command runs as given.
# Not supported: /docker-entrypoint-initdb.d, POSTGRES_INITDB_ARGS, *_FILE secrets.
set -eu

case "${1:-}" in
-*) set -- postgres "$@" ;;
esac
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA

as_postgres() {
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
}

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
chmod 2777 /var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        echo "error: POSTGRES_PASSWORD is empty; set it, or POSTGRES_HOST_AUTH_METHOD=trust" >&2
        exit 1
    fi
    pwfile=""
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile="$(mktemp)"
        printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
        chown postgres "$pwfile"
    fi
    as_postgres initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=trust > /dev/null
    [ -z "$pwfile" ] || rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # single-user mode: no server listens before the database exists, so a client that
        # waits for port 5432 never sees a half-made server
        quoted="$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')"
        echo "CREATE DATABASE \"$quoted\"" | as_postgres postgres --single -D "$PGDATA" postgres > /dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
fi

shift
exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres "$@"

#!/usr/bin/env bash
# Install PostgreSQL from the distribution's packages, start a cluster on localhost, create a user and a
# database for the registry tests, and print one line for the caller to eval:
#     eval "$(bash .ci/postgres.sh)"     # sets TUNEFORGE_TEST_PG_URL
# Idempotent: an installed server, an existing cluster, role or database are reused. Progress goes to stderr
# so that stdout holds only the export line.
set -euo pipefail
cd /tmp  # runuser switches to postgres, who cannot read the caller's directory

PG_USER=${TUNEFORGE_PG_USER:-tuneforge}
PG_DB=${TUNEFORGE_PG_DB:-tuneforge}
PG_PASSWORD=${TUNEFORGE_PG_PASSWORD:-tuneforge}

log() { echo "postgres.sh: $*" >&2; }
as_postgres() { runuser -u postgres -- "$@"; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null; then
    log "installing postgresql from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
    log "creating cluster $version/main"
    pg_createcluster "$version" main >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    log "starting cluster $version/main on port $port"
    pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { log "server did not become ready on port $port"; exit 1; }

# Role and database owned by it: the tests create and drop one schema per test inside it. CREATEROLE: the
# secrets test (tests/test_no_secrets_recorded.py) makes a throwaway role with a password of its own.
as_postgres psql -q -v ON_ERROR_STOP=1 -p "$port" -d postgres >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PG_USER}') THEN
        CREATE ROLE "${PG_USER}" LOGIN CREATEROLE PASSWORD '${PG_PASSWORD}';
    ELSE
        ALTER ROLE "${PG_USER}" LOGIN CREATEROLE PASSWORD '${PG_PASSWORD}';
    END IF;
END
\$\$;
SQL
if ! as_postgres psql -tA -p "$port" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '${PG_DB}'" | grep -q 1; then
    as_postgres createdb -p "$port" -O "$PG_USER" "$PG_DB" >&2
fi
log "ready: database ${PG_DB} on 127.0.0.1:${port}"
echo "export TUNEFORGE_TEST_PG_URL=postgresql+psycopg://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}/${PG_DB}"

#!/usr/bin/env bash
# Install (Debian packages) and start a local PostgreSQL with a `stagelib` role and
# a `stagelib_test` database. Idempotent.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
  pg_createcluster "$ver" main >/dev/null
fi
if ! pg_lsclusters -h | grep -q "^$ver main .* online"; then
  pg_ctlcluster "$ver" main start
fi
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -h 127.0.0.1 -p 5432" && break
  sleep 1
done
su postgres -c "psql -q -v ON_ERROR_STOP=1" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stagelib') THEN
    CREATE ROLE stagelib LOGIN PASSWORD 'stagelib' CREATEDB;
  END IF;
END $$;
SQL
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='stagelib_test'\"" | grep -q 1; then
  su postgres -c "createdb -O stagelib stagelib_test"
fi
# Many concurrent tests: allow plenty of connections.
current=$(su postgres -c "psql -tAc 'SHOW max_connections'")
if [ "$current" -lt 300 ]; then
  su postgres -c "psql -qc 'ALTER SYSTEM SET max_connections = 300'"
  pg_ctlcluster "$ver" main restart
fi
echo "postgres $ver ready on 127.0.0.1:5432"

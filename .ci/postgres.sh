#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL, and create the role the tests use.
# Prints the URL to export as DIGEST_TEST_DATABASE_URL.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# several test runs on one machine may start it at once: one at a time (creating the
# cluster or the role twice at the same moment fails). The server is started without the
# lock's descriptor (9>&-): a server that inherits it holds the lock for as long as it
# runs, and every later run of this script waits for ever.
exec 9>/var/tmp/digest-postgres.lock
flock 9
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"' | grep -q .; then
  pg_createcluster "$ver" main >&2 9>&-
fi
pg_ctlcluster "$ver" main start >&2 2>/dev/null 9>&- || true
for _ in $(seq 1 30); do
  runuser -u postgres -- pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
runuser -u postgres -- psql -q -tAc \
  "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'digest_test') THEN
     CREATE ROLE digest_test LOGIN SUPERUSER PASSWORD 'digest_test'; END IF; END \$\$;" >&2
echo "postgresql+psycopg://digest_test:digest_test@127.0.0.1:5432/postgres"

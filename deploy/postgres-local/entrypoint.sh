#!/bin/bash
# What the official postgres image does with POSTGRES_USER, _PASSWORD and _DB, in short:
# a UTF-8 cluster (psycopg reads an SQL_ASCII one's text as bytes), password login over
# TCP, the database created once.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" >"$pw"
  initdb -D "$PGDATA" -E UTF8 --locale=C.UTF-8 -U "${POSTGRES_USER:=postgres}" --pwfile="$pw" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  db=${POSTGRES_DB:-$POSTGRES_USER}
  [ "$db" = postgres ] || createdb -U "$POSTGRES_USER" "$db"
  pg_ctl -D "$PGDATA" -w stop >/dev/null
  echo "postgres-local: initialised $PGDATA (user $POSTGRES_USER, database $db)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'

#!/usr/bin/env bash
# Debian packages the tests use, installed when missing (needs root):
# PostgreSQL (state tests), Chromium (browser tests, driven by Playwright), newsboat
# (a real feed reader subscribes to the served feed), time (peak memory in the benchmarks),
# nginx (deploy/nginx.conf runs on loopback in front of `digest serve`), Dovecot (IMAP for
# `digest bounces`).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v newsboat >/dev/null || need+=(newsboat)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/time ] || need+=(time)  # peak memory in tests/bench
command -v systemd-analyze >/dev/null || need+=(systemd)  # deploy/ units checked
[ -x /usr/sbin/nginx ] || need+=(nginx-light)  # deploy/nginx.conf served for real
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)  # `digest bounces --imap` against a real IMAP server
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian packages the tests use)" >&2
  apt-get update -qq >&2
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

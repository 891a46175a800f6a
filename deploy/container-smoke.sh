#!/usr/bin/env bash
# Build the digest images and run them, on a Debian bookworm machine with no image
# registry, as root (rootful podman). Installs what is missing (podman, runc, debootstrap,
# curl; podman-compose from PyPI into a venv), then:
#   1. makes the base image locally: debootstrap (python3, python3-venv), the host's extra
#      CA certificates and pip index, imported as localhost/debian:bookworm;
#   2. builds deploy/Dockerfile, deploy/postfix and deploy/postgres-local (a stand-in for
#      the official postgres image) from that base;
#   3. runs the image alone: `digest --help`, its user, `digest send` over the bundled
#      sample dumps (mounted read-only) into a mounted state folder, SQLite and Maildir;
#   4. brings deploy/compose.yaml up with podman-compose (PostgreSQL, Postfix, the daemon,
#      the web server, two workers), adds subscribers, drops the sample dumps in, and
#      checks that the daemon publishes, every subscriber's message reaches Postfix's
#      Maildir exactly once, and the web server serves the feed and the message's
#      unsubscribe link (GET page, one-click POST, the subscriber then unsubscribed);
#   5. takes the stack down (SMOKE_KEEP=1 leaves it up).
# Each check prints "ok: ..."; the first failure prints "FAIL: ..." and exits 1.
# Settings: SMOKE_DIR (work folder, default /var/tmp/digest-smoke; the base image and
# podman-compose are kept between runs), SMOKE_SUBSCRIBERS (default 400), DEBIAN_MIRROR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=${SMOKE_DIR:-/var/tmp/digest-smoke}
subscribers=${SMOKE_SUBSCRIBERS:-400}
project=digest-smoke
base=localhost/debian:bookworm
start=$SECONDS

say() { printf '[%4ds] %s\n' $((SECONDS - start)) "$*"; }
ok() { printf '[%4ds] ok: %s\n' $((SECONDS - start)) "$*"; }
fail() {
  printf '[%4ds] FAIL: %s\n' $((SECONDS - start)) "$*" >&2
  exit 1
}
# wait_for SECONDS WHAT COMMAND...: run COMMAND every second until it succeeds; a
# deadline only a hang reaches
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: still not so after ${limit} s"
    sleep 1
  done
}

[ "$(id -u)" = 0 ] || fail "run as root: it installs packages and runs rootful podman"

# --- 0. tools ------------------------------------------------------------------------
need=()
for tool in podman runc debootstrap curl; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
mkdir -p "$work"
if ((${#need[@]})); then
  say "installing ${need[*]} (apt)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } \
    >"$work/apt.log" 2>&1 || fail "apt-get install ${need[*]}: see $work/apt.log"
fi
if [ ! -x "$work/venv/bin/podman-compose" ]; then
  say "installing podman-compose (PyPI) into $work/venv"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q podman-compose==1.6.0 2>"$work/pip.log" ||
    fail "pip install podman-compose: $(tail -1 "$work/pip.log")"
fi

# Engine settings that also work in a VM without CAP_SYS_RESOURCE and with hybrid cgroups
# v1 (where this was first run): runc (crun refuses hybrid cgroups) and rlimits within
# the host's own (podman's default nofile=1048576 cannot be set without that capability).
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf
ok "$(podman --version), runc $(runc --version | awk 'NR==1{print $3}'), $("$work/venv/bin/podman-compose" --version 2>/dev/null | head -1)"

# --- 1. the base image, made here ---------------------------------------------------------
if podman image exists "$base"; then
  ok "base image $base already made (podman rmi it to remake)"
else
  # the mirror apt uses here (deb822 .sources or a classic sources.list)
  mirror=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p; s/^deb \(http[^ ]*\/debian\) bookworm .*/\1/p' |
    head -1 || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs="$work/rootfs"
  rm -rf "$rootfs"
  say "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap failed; see $work/debootstrap.log"
  # the host's own trust and pip index (e.g. a proxy's CA): what pip inside needs to
  # reach the index the host uses. Certificates are public; no secret is copied.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
  fi
  index=${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}
  {
    echo "[global]"
    echo "cert = /etc/ssl/certs/ca-certificates.crt"
    [ -z "$index" ] || echo "index-url = $index"
  } >"$rootfs/etc/pip.conf"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null 2>&1
  rm -rf "$rootfs"
  ok "base image $base: $(podman run --rm "$base" python3 --version)"
fi

# --- 2. build --------------------------------------------------------------------------
build() { # TAG CONTEXT [podman build args...]
  local tag=$1 context=$2
  shift 2
  local t=$SECONDS
  podman build -q --build-arg BASE_IMAGE="$base" -t "$tag" "$@" "$context" \
    >"$work/build-${tag##*/}.log" 2>&1 || {
    tail -20 "$work/build-${tag##*/}.log" >&2
    fail "building $tag (log: $work/build-${tag##*/}.log)"
  }
  ok "built $tag in $((SECONDS - t)) s, $(podman image inspect --format '{{.Size}}' "$tag" |
    awk '{printf "%d MB", $1 / 1e6}')"
}
build localhost/digest:latest "$root" -f "$here/Dockerfile"
build localhost/digest-postfix:latest "$here/postfix"
build localhost/digest-postgres:local "$here/postgres-local"
podman image prune -f >/dev/null # the build stages' dangling images

# --- 3. the image alone --------------------------------------------------------------------
help=$(podman run --rm localhost/digest:latest --help)
for command in send run serve worker subscribers; do
  grep -q "^  $command " <<<"$help" || fail "digest --help in the image lists no '$command'"
done
ok "digest --help in the image lists send, run, serve, worker, subscribers"
user=$(podman run --rm --entrypoint id localhost/digest:latest -u)
[ "$user" = 10001 ] || fail "the image runs as uid $user, not 10001"
ok "the image runs as uid 10001 (not root)"

one="$work/one"
rm -rf "$one"
mkdir -p "$one/config" "$one/state"
chown 10001:10001 "$one/state"
cat >"$one/config/digest.toml" <<EOF
[digest]
base_url = "http://localhost:8000"
[email]
transport = "maildir"
recipients = ["reader@example.org"]
EOF
t=$SECONDS
podman run --rm -e DIGEST_CONFIG=/srv/digest/config/digest.toml \
  -e DIGEST_DIGEST_STATE_DIR=/srv/digest/state -e DIGEST_DIGEST_DUMPS_DIR=/srv/digest/dumps \
  -v "$one/config:/srv/digest/config:ro" -v "$root/examples/dumps:/srv/digest/dumps:ro" \
  -v "$one/state:/srv/digest/state" localhost/digest:latest send >"$one/send.log" 2>&1 ||
  fail "digest send in the image: $(tail -1 "$one/send.log")"
grep -q "1 sent, 0 failed" "$one/send.log" || fail "digest send: $(tail -1 "$one/send.log")"
messages=$(find "$one/state/outbox/new" -type f | wc -l)
[ "$messages" = 1 ] || fail "digest send left $messages messages in state/outbox, not 1"
[ -s "$one/state/public/feed.xml" ] || fail "digest send wrote no state/public/feed.xml"
ok "digest send in the image ($((SECONDS - t)) s): $(grep -o 'published issue.*\|wrote .*' "$one/send.log" | head -1), 1 message in the mounted state/outbox, feed.xml written"

# --- 4. the compose stack ---------------------------------------------------------------
stack="$work/stack"
rm -rf "$stack"
mkdir -p "$stack/config" "$stack/dumps"
rate=$(((subscribers + 3) / 4)) # messages per second: about 4 s of delivery
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$stack/config/digest.toml" <<EOF
[digest]
base_url = "http://127.0.0.1:$port"
[email]
from = "Papers digest <digest@example.org>"
# for all the processes together: delivery lasts a few seconds, so the workers (which
# poll every second) take their share of what the publishing daemon would otherwise
# send alone
rate_limit = $rate
[schedule]
mode = "on_new_dump"
settle_seconds = 1.0
debounce_seconds = 1.0
poll_seconds = 1.0
EOF
export DIGEST_BASE_IMAGE=$base POSTFIX_BASE_IMAGE=$base POSTGRES_IMAGE=localhost/digest-postgres:local
POSTGRES_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') # not in compose.yaml
export POSTGRES_PASSWORD
export DIGEST_CONFIG_DIR="$stack/config" DIGEST_DUMPS_DIR="$stack/dumps" DIGEST_WEB_PORT=$port
compose() { "$work/venv/bin/podman-compose" -p "$project" -f "$here/compose.yaml" "$@"; }
down() {
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then
    say "stack left up (SMOKE_KEEP=1): $work/venv/bin/podman-compose -p $project -f $here/compose.yaml down -v"
  else # the digest services first, as docker compose orders it (podman-compose 1.6 may
    # stop PostgreSQL first)
    { compose stop daemon web worker && compose down -v; } >"$stack/down.log" 2>&1 || true
  fi
}
compose down -v >/dev/null 2>&1 || true
trap down EXIT
t=$SECONDS
compose up -d --build >"$stack/up.log" 2>&1 || {
  tail -20 "$stack/up.log" >&2
  fail "podman-compose up (log: $stack/up.log)"
}
c() { echo "${project}_$1"; }
running() { [ "$(podman inspect --format '{{.State.Running}}' "$(c "$1")")" = true ]; }
for service in postgres_1 postfix_1 daemon_1 web_1 worker_1 worker_2; do
  wait_for 60 "$(c $service) running" running "$service"
done
ok "podman-compose up ($((SECONDS - t)) s): postgres, postfix, daemon, web, worker_1, worker_2 running"
# podman 4.3 has no 'healthy' wait, so the digest services may start before PostgreSQL
# accepts connections: they exit and `restart: unless-stopped` brings them back
wait_for 90 "the daemon watching the dumps folder" \
  sh -c "podman logs $(c daemon_1) 2>&1 | grep -q 'daemon started'"
wait_for 90 "the web server answering (any HTTP status: nothing is published yet)" \
  curl -sS -o /dev/null "http://127.0.0.1:$port/"
digest() { podman exec -i "$(c daemon_1)" digest "$@"; }
wait_for 60 "two workers in digest status" sh -c \
  "podman exec $(c daemon_1) digest status | grep -q 'workers: *2 '"
ok "daemon watching the dumps folder, web server answering on 127.0.0.1:$port, 2 workers registered"

# Postfix relays to the recipients' MX in production; here it delivers example.org into
# one Maildir, so the messages can be counted
podman exec "$(c postfix_1)" sh -c 'postconf -e virtual_mailbox_domains=example.org \
  virtual_mailbox_base=/var/mail/vhosts virtual_mailbox_maps=static:inbox/ \
  virtual_uid_maps=static:5000 virtual_gid_maps=static:5000 &&
  mkdir -p /var/mail/vhosts/inbox && chown -R 5000:5000 /var/mail/vhosts && postfix reload' \
  >/dev/null 2>&1 || fail "reconfiguring Postfix for local delivery"
seq 1 "$subscribers" | sed 's/.*/reader&@example.org/' | digest subscribers import - >/dev/null
ok "$subscribers subscribers imported"

t=$SECONDS
for dump in "$root"/examples/dumps/*; do # written as *.tmp, then renamed: whole when seen
  cp "$dump" "$stack/dumps/$(basename "$dump").tmp"
  mv "$stack/dumps/$(basename "$dump").tmp" "$stack/dumps/$(basename "$dump")"
done
inbox() { podman exec "$(c postfix_1)" sh -c 'ls /var/mail/vhosts/inbox/new 2>/dev/null | wc -l'; }
wait_for 120 "the daemon publishing issue #1" sh -c \
  "podman logs $(c daemon_1) 2>&1 | grep -q 'published issue #1'"
wait_for 120 "all $subscribers deliveries sent" sh -c \
  "podman exec $(c daemon_1) digest status | grep -q 'deliveries: *$subscribers sent'"
wait_for 60 "$subscribers messages in Postfix's Maildir" sh -c "[ \"\$(podman exec $(c postfix_1) sh -c 'ls /var/mail/vhosts/inbox/new | wc -l')\" -ge $subscribers ]"
wait_for 60 "Postfix's queue empty" sh -c \
  "podman exec $(c postfix_1) postqueue -p | grep -q 'Mail queue is empty'"
got=$(inbox)
[ "$got" = "$subscribers" ] || fail "$got messages in the Maildir for $subscribers subscribers"
ok "issue #1 published and delivered in $((SECONDS - t)) s: $got messages in Postfix's Maildir for $subscribers subscribers (one each)"
# who handed them over: Postfix logs each message's client address, one per container
declare -A sender_of=()
for service in daemon_1 worker_1 worker_2; do
  sender_of[$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
    "$(c $service)")]=$service
done
split=$(podman logs "$(c postfix_1)" 2>&1 | sed -n 's/.*smtpd.*: client=[^[]*\[\([0-9.]*\)\]$/\1/p' |
  sort | uniq -c | while read -r n ip; do printf '%s %s, ' "${sender_of[$ip]:-$ip}" "$n"; done)
ok "messages handed to Postfix by: ${split%, }"

first=$(podman exec "$(c postfix_1)" sh -c 'ls /var/mail/vhosts/inbox/new | head -1')
message=$(podman exec "$(c postfix_1)" cat "/var/mail/vhosts/inbox/new/$first")
read -r rcpt link < <(python3 -c '
import email, re, sys
m = email.message_from_string(sys.stdin.read())
link = re.search(r"<(http[^>]+)>", m["List-Unsubscribe"]).group(1)
print(email.utils.parseaddr(m["To"])[1], link)' <<<"$message")
case $link in "http://127.0.0.1:$port/unsubscribe/"*) ;; *) fail "unsubscribe link $link" ;; esac
code=$(curl -sS -o "$stack/unsubscribe.html" -w '%{http_code}' "$link")
{ [ "$code" = 200 ] && grep -q '<title>Unsubscribe' "$stack/unsubscribe.html"; } ||
  fail "GET the unsubscribe link: HTTP $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' -d 'List-Unsubscribe=One-Click' "$link")
[ "$code" = 200 ] || fail "one-click POST to the unsubscribe link: HTTP $code"
listed=$(digest subscribers list 2>/dev/null) # (not piped into grep -q: pipefail would see SIGPIPE)
grep -q "^$rcpt"$'\t'unsubscribed <<<"$listed" ||
  fail "$rcpt is not unsubscribed after the one-click POST"
ok "web server: the unsubscribe link of $rcpt's message answers GET 200 and one-click POST 200; $rcpt is now unsubscribed"
# read the whole answer first: `curl | grep -q` fails under pipefail once grep stops
# reading early (curl: (23) Failure writing output) on a feed of more than a pipe's worth
feed=$(curl -fsS "http://127.0.0.1:$port/feed.xml") || fail "GET /feed.xml failed"
grep -q '<rss' <<<"$feed" || fail "GET /feed.xml: not RSS"
ok "web server: /feed.xml is the published RSS feed"

t=$SECONDS
trap - EXIT
down
if [ "${SMOKE_KEEP:-0}" != 1 ]; then
  ! grep -q 'resorting to SIGKILL' "$stack/down.log" ||
    fail "a container ignored SIGTERM for 10 s: $(grep 'resorting to SIGKILL' "$stack/down.log")"
  ok "stack taken down in $((SECONDS - t)) s, every container stopping on SIGTERM"
fi
say "all checks passed"

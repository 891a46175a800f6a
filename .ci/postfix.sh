#!/usr/bin/env bash
# Install (if needed) and start Debian's Postfix as a private instance for the tests and
# the benchmark: it listens on 127.0.0.1:$DIGEST_TEST_POSTFIX_PORT (default 2525) and delivers
# every message, whatever its recipient, into one Maildir. Nothing under /etc/postfix is
# written (its master.cf is read as a template): the instance lives in
# $DIGEST_TEST_POSTFIX_DIR, which must lie under /var (Postfix's maillog_file_prefixes), and
# several instances on several ports run side by side.
# Prints "host:port maildir" (what DIGEST_TEST_POSTFIX holds). Needs root: as root,
# `postfix -c DIR` and `postqueue -c DIR` take a configuration directory that the
# default main.cf does not list in alternate_config_directories (other users need it
# listed there, which this script does not do).
set -euo pipefail
# Postfix's own programs (postsuper, postdrop) must read the queue it makes: a caller's
# umask 077 (digest's CLI sets one) made its folders unreadable to them
umask 022
export DEBIAN_FRONTEND=noninteractive
port=${DIGEST_TEST_POSTFIX_PORT:-2525}
dir=${DIGEST_TEST_POSTFIX_DIR:-/var/tmp/digest-postfix}
if ! command -v postfix >/dev/null; then
  # "No configuration": the package installs without asking and without starting.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq >&2
  apt-get install -y -qq postfix >/dev/null 2>&1
fi
mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/mail"
# Several test runs on one machine start the same instance: one at a time, and an
# instance already running with the same configuration is left alone (restarting it
# would cut another run's tests off mid-way; starting it twice fails).
exec 9>"$dir/.lock"
flock 9
chown postfix "$dir/data"
chown nobody:nogroup "$dir/mail"
cat >"$dir/etc/main.cf.next" <<CONF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
myhostname = digest-test.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
# every recipient of every domain goes into one Maildir (the trailing / means Maildir)
virtual_mailbox_domains = static:all
virtual_mailbox_maps = static:maildir/
virtual_mailbox_base = $dir/mail
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
virtual_destination_concurrency_limit = 20
message_size_limit = 20480000
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
maillog_file = $dir/postfix.log
alias_maps =
alias_database =
default_process_limit = 100
CONF
cp /etc/postfix/master.cf "$dir/etc/master.cf.next"
# listen on the test port instead of 25; log to a file (no syslog in containers)
sed -i "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$port inet n - n - - smtpd/" "$dir/etc/master.cf.next"
# no chroot: the private queue has no copy of /etc for chrooted daemons
sed -i -E 's/^([a-z]+ +(unix|inet|fifo|unix-dgram|pass) +[-ny] +[-ny] +)y /\1n /' "$dir/etc/master.cf.next"
grep -q "^postlog" "$dir/etc/master.cf.next" ||
  echo "postlog   unix-dgram n  -       n       -       1       postlogd" >>"$dir/etc/master.cf.next"
[ "$(id -u)" = 0 ] || { echo "$0: needs root (postfix -c $dir/etc)" >&2; exit 1; }
if cmp -s "$dir/etc/main.cf.next" "$dir/etc/main.cf" &&
  cmp -s "$dir/etc/master.cf.next" "$dir/etc/master.cf" &&
  postfix -c "$dir/etc" status >/dev/null 2>&1; then
  rm -f "$dir/etc/main.cf.next" "$dir/etc/master.cf.next"
else
  mv "$dir/etc/main.cf.next" "$dir/etc/main.cf"
  mv "$dir/etc/master.cf.next" "$dir/etc/master.cf"
  postfix -c "$dir/etc" check >&2
  # a restart, not a reload: the listener of master.cf may have changed
  postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
  # without the lock's descriptor: a master that kept it would hold the lock while it runs
  postfix -c "$dir/etc" start >/dev/null 2>&1 9>&-
fi
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
echo "127.0.0.1:$port $dir/mail/maildir"

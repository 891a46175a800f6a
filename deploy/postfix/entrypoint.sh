#!/bin/bash
# Postfix relays for the compose network only: mynetworks becomes 127.0.0.0/8 plus
# STACK_SUBNET less STACK_GATEWAY (the host's side of the bridge: without the exclusion,
# any process on the host could relay through it), then runs the command (CMD).
# A subnet or gateway that is not an address is refused before Postfix starts.
set -euo pipefail
ip='^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
networks="127.0.0.0/8"
if [ -n "${STACK_SUBNET:-}" ]; then
  [[ ${STACK_SUBNET%/*} =~ $ip && ${STACK_SUBNET#*/} =~ ^[0-9]{1,2}$ ]] ||
    { echo "STACK_SUBNET=$STACK_SUBNET is not an IPv4 network (e.g. 10.89.218.0/24)" >&2; exit 2; }
  if [ -n "${STACK_GATEWAY:-}" ]; then
    [[ $STACK_GATEWAY =~ $ip ]] ||
      { echo "STACK_GATEWAY=$STACK_GATEWAY is not an IPv4 address (e.g. 10.89.218.1)" >&2; exit 2; }
    networks="$networks !$STACK_GATEWAY"
  fi
  networks="$networks $STACK_SUBNET"
fi
postconf -e "mynetworks = $networks"
exec "$@"

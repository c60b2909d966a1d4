#!/bin/sh
# Keeps session networks in, for the container deployment (the app container may not change the
# host's firewall): the same rules src/terminals/firewall.rs puts in place itself when
# HOST_FIREWALL=iptables. From the pool (SESSION_SUBNET_POOL in the .env given, default
# 10.213.0.0/16): no new connections to the host (INPUT), and nothing forwarded to any address
# outside the pool (the chain CKAD-EGRESS, jumped to from Docker's DOCKER-USER). Idempotent.
set -eu
env_file=${1:-/opt/ckad-platform/.env}
pool=$(sed -n 's/^SESSION_SUBNET_POOL=//p' "$env_file" 2>/dev/null | tail -n 1 | tr -d ' \r')
pool=${pool:-10.213.0.0/16}
if ! printf '%s\n' "$pool" | grep -Eq '^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$'; then
  echo "SESSION_SUBNET_POOL in $env_file is not an IPv4 network: $pool" >&2
  exit 1
fi
ensure() { iptables -w 5 -C "$@" 2>/dev/null || iptables -w 5 -I "$@"; }
iptables -w 5 -L CKAD-EGRESS -n >/dev/null 2>&1 || iptables -w 5 -N CKAD-EGRESS
ensure INPUT -s "$pool" -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP
ensure CKAD-EGRESS -s "$pool" ! -d "$pool" -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP
ensure DOCKER-USER -j CKAD-EGRESS

#!/bin/sh
# Entrypoint of a Sentinel container: write this Sentinel's own config file once, then run it.
#
# Sentinel rewrites its config file as it learns the replicas, the other Sentinels and each
# failover, so every Sentinel needs a writable file of its own; it lives in the container's data
# folder and is kept across restarts (a restarted Sentinel remembers the current primary).
#
# `bind-source-addr` and `announce-ip` matter with host networking: a connection to a 127.0.x.y
# address leaves from 127.0.0.1, so without them the Sentinels would announce themselves at
# 127.0.0.1 and could not tell each other apart (as for the local processes, stack/local/redis.py).
set -eu

: "${SENTINEL_BIND:?SENTINEL_BIND is not set}"
: "${SENTINEL_PORT:?SENTINEL_PORT is not set}"
: "${SENTINEL_MASTER_NAME:?SENTINEL_MASTER_NAME is not set}"
: "${SENTINEL_MASTER_HOST:?SENTINEL_MASTER_HOST is not set}"
: "${SENTINEL_MASTER_PORT:?SENTINEL_MASTER_PORT is not set}"
: "${SENTINEL_QUORUM:?SENTINEL_QUORUM is not set}"
: "${SENTINEL_DOWN_AFTER_MS:?SENTINEL_DOWN_AFTER_MS is not set}"
: "${SENTINEL_FAILOVER_TIMEOUT_MS:?SENTINEL_FAILOVER_TIMEOUT_MS is not set}"

conf=/data/sentinel.conf
if [ ! -s "$conf" ]; then
    cat > "$conf.tmp" <<CONF
# Written by come2us on first start; Sentinel rewrites this file as it learns.
bind $SENTINEL_BIND
bind-source-addr $SENTINEL_BIND
port $SENTINEL_PORT
protected-mode no
dir /data
sentinel resolve-hostnames no
sentinel announce-ip $SENTINEL_BIND
sentinel monitor $SENTINEL_MASTER_NAME $SENTINEL_MASTER_HOST $SENTINEL_MASTER_PORT $SENTINEL_QUORUM
sentinel down-after-milliseconds $SENTINEL_MASTER_NAME $SENTINEL_DOWN_AFTER_MS
sentinel failover-timeout $SENTINEL_MASTER_NAME $SENTINEL_FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $SENTINEL_MASTER_NAME 1
CONF
    mv "$conf.tmp" "$conf"
fi

# The image's entrypoint hands /data to the redis user and drops root before exec'ing.
exec docker-entrypoint.sh redis-server "$conf" --sentinel

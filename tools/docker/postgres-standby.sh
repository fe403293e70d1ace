#!/bin/bash
# Entrypoint of the rds-standby container: clone the writer once, then run the hot standby.
#
# On first start the data directory is created with pg_basebackup from the writer, through the
# physical replication slot the writer keeps for this standby (created here if missing), and
# `-R` writes the streaming settings. The clone is built in a scratch folder and renamed into
# place only when it is complete, so an interrupted clone is never mistaken for a data
# directory. A non-empty data directory without PG_VERSION is refused, never wiped.
#
# Afterwards it hands over to the image's own entrypoint, which drops to the postgres user and
# execs the server (so the server is the container's main process and `docker kill` reaches it).
set -Eeuo pipefail

: "${PGDATA:?PGDATA is not set}"
: "${COME2US_WRITER_HOST:?the writer's address is not set (COME2US_WRITER_HOST)}"
: "${COME2US_WRITER_PORT:?the writer's port is not set (COME2US_WRITER_PORT)}"
: "${COME2US_REPLICATION_USER:?the replication role is not set (COME2US_REPLICATION_USER)}"
: "${COME2US_REPLICATION_PASSWORD:?the replication password is not set (COME2US_REPLICATION_PASSWORD)}"
: "${COME2US_STANDBY_SLOT:?the replication slot is not set (COME2US_STANDBY_SLOT)}"
wait_s="${COME2US_WRITER_WAIT_S:-60}"

log() { printf 'rds-standby: %s\n' "$*" >&2; }

clone_writer() {
    local writer="host=$COME2US_WRITER_HOST port=$COME2US_WRITER_PORT"
    local conninfo="$writer user=$COME2US_REPLICATION_USER application_name=$COME2US_STANDBY_SLOT"
    local scratch="$PGDATA.initialising"
    local deadline=$((SECONDS + wait_s)) last_seen=""

    until last_seen=$(pg_isready -d "$writer" 2>&1); do
        if ((SECONDS >= deadline)); then
            log "the writer did not accept connections within ${wait_s} s; last seen: $last_seen"
            exit 1
        fi
        sleep 0.5
    done

    rm -rf "$scratch"
    mkdir -p "$scratch"
    chown postgres:postgres "$scratch"
    chmod 0700 "$scratch"
    export PGPASSWORD="$COME2US_REPLICATION_PASSWORD"
    log "creating slot $COME2US_STANDBY_SLOT on the writer (kept if it exists)"
    gosu postgres pg_receivewal -d "$conninfo" -S "$COME2US_STANDBY_SLOT" \
        --create-slot --if-not-exists
    log "cloning the writer at $COME2US_WRITER_HOST:$COME2US_WRITER_PORT"
    gosu postgres pg_basebackup -d "$conninfo" -D "$scratch" -R -X stream \
        -S "$COME2US_STANDBY_SLOT" -c fast
    unset PGPASSWORD
    # The clone inherits the writer's settings; it must not wait for a standby of its own.
    printf '%s\n' "synchronous_standby_names = ''" >> "$scratch/postgresql.auto.conf"
    mv "$scratch" "$PGDATA"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
        log "$PGDATA is not empty but holds no PG_VERSION: it is left untouched."
        log "Move it away, or remove the container data folder, then start again."
        exit 1
    fi
    rmdir "$PGDATA" 2>/dev/null || true
    clone_writer
fi

exec docker-entrypoint.sh "$@"

#!/bin/bash
# One-shot job (service rds-synchronous-commit): make the writer wait for the standby on every
# commit, once the standby streams. This is what the local-process runtime does after the
# standby is ready; set before the standby exists, every commit on the writer would hang.
#
# Connection settings come from the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD).
set -Eeuo pipefail

standby="${COME2US_SYNC_STANDBY:?the standby's application_name is not set (COME2US_SYNC_STANDBY)}"
wait_s="${COME2US_WAIT_S:-60}"
if [[ ! "$standby" =~ ^[a-z0-9_]+$ ]]; then
    echo "rds-synchronous-commit: unexpected standby name '$standby'" >&2
    exit 1
fi

sql() { psql -X -A -t -v ON_ERROR_STOP=1 --dbname postgres -c "$1"; }

# wait_for STATE: wait until the standby's row in pg_stat_replication has COLUMN = STATE.
wait_for() {
    local column="$1" wanted="$2" seen="" deadline=$((SECONDS + wait_s))
    until seen=$(sql "SELECT $column FROM pg_stat_replication WHERE application_name = '$standby'" 2>&1) \
            && [ "$seen" = "$wanted" ]; do
        if ((SECONDS >= deadline)); then
            echo "rds-synchronous-commit: $standby not $wanted within ${wait_s} s; last seen: ${seen:-no row}" >&2
            exit 1
        fi
        sleep 0.5
    done
}

wait_for state streaming
sql "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ($standby)'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
wait_for sync_state sync
echo "rds-synchronous-commit: every commit on the writer now waits for $standby"

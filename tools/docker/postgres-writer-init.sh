#!/bin/bash
# Runs once, inside the rds-writer container, when its data directory is first initialised
# (mounted into /docker-entrypoint-initdb.d by docker-compose.localstack.yml). The image's
# entrypoint runs it against a temporary server that listens on its Unix socket only.
#
# It gives the writer what the standby needs to clone it: the replication role, and a pg_hba
# rule that lets that role stream from any loopback address (with host networking every
# container shares the machine's loopback, and a client's source address is 127.0.0.1).
#
# Synchronous commit is deliberately NOT switched on here: with no standby yet, every commit,
# including those of this script and of the control plane's first connection, would wait
# forever. The rds-synchronous-commit job (or the control plane) turns it on once the standby
# streams, as the local-process runtime does.
#
# The entrypoint sources this file when it is not executable, so it keeps to the entrypoint's
# own shell options (no `set -u`) and never calls `exit` on success.
set -Eeo pipefail

: "${COME2US_REPLICATION_USER:?the replication role name is not set (COME2US_REPLICATION_USER)}"
: "${COME2US_REPLICATION_PASSWORD:?the replication password is not set (COME2US_REPLICATION_PASSWORD)}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
    -v role="$COME2US_REPLICATION_USER" -v password="$COME2US_REPLICATION_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I WITH REPLICATION LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SQL

printf '%s\n' \
    '# Added by come2us: the standby streams from the writer over loopback.' \
    'host  replication  all  127.0.0.0/8  scram-sha-256' >> "$PGDATA/pg_hba.conf"

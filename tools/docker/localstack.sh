#!/bin/sh
# Entrypoint of the optional `localstack` service: refuse to start without an auth token.
#
# The LocalStack image needs LOCALSTACK_AUTH_TOKEN since March 2026. The check lives here, not
# in a `${LOCALSTACK_AUTH_TOKEN:?...}` in the compose file, because Compose interpolates every
# service, profile or not, before it applies profiles: a required variable there would make
# every `docker compose` command fail for everyone without a LocalStack account.
set -eu

if [ -z "${LOCALSTACK_AUTH_TOKEN:-}" ]; then
    cat >&2 <<'MSG'
localstack: LOCALSTACK_AUTH_TOKEN is not set. The LocalStack image requires an auth token since
March 2026 (https://app.localstack.cloud). Export it and start the profile again, e.g.
  LOCALSTACK_AUTH_TOKEN=... docker compose -f docker-compose.localstack.yml \
      --profile localstack up -d --scale aws-endpoint=0
or use the default AWS endpoint, the moto server (service aws-endpoint), which needs no token.
MSG
    exit 64
fi

exec docker-entrypoint.sh "$@"

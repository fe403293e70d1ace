"""The user service: accounts (sign-up, login), sessions and tokens, member profiles, roles.

Members live in PostgreSQL (schema ``user_service``); login sessions live in the *session*
Redis, reached through Sentinel. A login issues a short-lived RS256 access token, which the
gateway verifies at the edge, and an opaque refresh token, which only this service knows and
which rotates on every use. Logout and detected refresh-token reuse revoke the session's
``sid``, and the gateway refuses its access tokens from then on
(`services.common.tokens`). Layout: ``api/`` routes, ``domain/`` rules, ``repository.py`` and
``session_store.py`` persistence, ``app.py`` assembly, ``manage.py`` operator commands.

What the session layer may lose, and what it may not
----------------------------------------------------
The session Redis replicates to its replica asynchronously; Sentinel promotes the replica when
the primary fails. Writes the primary acknowledged but had not yet shipped are then gone:

- **A login** acknowledged just before a failover may be lost: its refresh token is unknown to
  the new primary, so the client is asked to log in again when its access token expires.
- **A refresh** (rotation) may be lost: the new primary still holds the previous refresh token
  as current, the client's newer one is unknown, and its next refresh is refused — it logs in
  again. It is never mistaken for a reuse (an unknown token revokes nothing).
- **A revocation** (logout, reuse detected, role removed) must *not* be lost — that would bring
  a revoked session back. So the service deletes the session, revokes the sid, then ``WAIT 1
  <replica-wait-ms>`` on the same connection, and answers only after that: when the replica
  acknowledged, the revocation (and the deletion before it) survives a failover.
- **If WAIT returns 0** (the replica is down, or lags by more than ``replica-wait-ms``), the
  answer is still a success: the revocation is in force on the primary, which every gateway
  reads, but a failover before the replica catches up could undo it — the session's access
  tokens would be accepted again until they expire (at most ``access-token-ttl-seconds``) and
  its last refresh token would work again. The service logs a warning and counts it in
  ``user_sessions_ended_total{replicated="false"}``. Refusing the logout instead would fail
  every logout while the replica's AZ is out — exactly when no failover can happen.

During a failover itself (2-3 s here) the session store answers nothing: login, refresh and
logout get 503 and may be retried; access tokens keep working, since the gateway checks them
without Redis.
"""

"""A payment provider simulator: the stand-in for the PG / card company COME2US charges through.

It is not part of the platform (no discovery, no config server, no database): it plays the
external system the payment service reaches over HTTP, the way a PG's API would be reached from
the VPC through the NAT. Locally it runs as a component of the local cloud in the regional range
(`stack.come2us.PAYMENT_PROVIDER`); on AWS the real provider's URL takes its place.

What makes it useful to tests is that it can be told to misbehave: latency, declines and
outages are set per request (headers) or for everyone (``PUT /admin/behaviour``). Like real PG
APIs it is idempotent by idempotency key: a retried request gets the first answer again and
never charges twice. See ``services/payment_provider/README.md``.
"""

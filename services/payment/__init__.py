"""The payment service: charges an order through the external provider, once, and refunds it.

It consumes ``order.created`` and ``order.refund-requested`` from ``order-events`` (consumer
group ``payment-service``, the group whose lag the AWS model alarms on), calls the payment
provider over HTTP with timeouts and a circuit breaker, keeps payments in PostgreSQL (schema
``payment_service``) and publishes its results through its own outbox. See
``services/payment/README.md``.
"""

"""The order service: delivery addresses, coupons, orders from the cart, refunds.

Orders live in PostgreSQL (schema ``order_service``); coupon holds during checkout in the session
Redis's transient keyspace; ``order.created`` and ``order.refund-requested`` leave through a
transactional outbox to Kafka, and the payment service's results come back on
``payment-events``. See ``services/order/README.md``.
"""

"""The Kafka topics between services and the events on them: the one place both sides read.

Every event uses the envelope of `services.common.events.Event` (id, type, occurredAt, data);
the key is the aggregate's id, so one order's (or product's) events stay in order.

``order-events`` (producer: order service, through its outbox)
    ``order.created``   data: orderId, userId, amount (integer, KRW), currency, items
                        [{productId, quantity, unitPrice}], couponCode (or null)
    ``order.cancelled`` data: orderId, userId, reason
    ``order.refund-requested`` data: orderId, userId, paymentId, amount

``payment-events`` (producer: payment service, through its outbox)
    ``payment.completed`` data: orderId, paymentId, amount, providerReference
    ``payment.failed``    data: orderId, reason
    ``payment.refunded``  data: orderId, paymentId, amount

``product-events`` (producer: product service, through its outbox)
    ``product.upserted`` data: productId, storeId, categoryId, name, description, price,
                         status
    ``product.deleted``  data: productId
"""

from __future__ import annotations

ORDER_EVENTS = "order-events"
PAYMENT_EVENTS = "payment-events"
PRODUCT_EVENTS = "product-events"

ORDER_CREATED = "order.created"
ORDER_CANCELLED = "order.cancelled"
ORDER_REFUND_REQUESTED = "order.refund-requested"
PAYMENT_COMPLETED = "payment.completed"
PAYMENT_FAILED = "payment.failed"
PAYMENT_REFUNDED = "payment.refunded"
PRODUCT_UPSERTED = "product.upserted"
PRODUCT_DELETED = "product.deleted"

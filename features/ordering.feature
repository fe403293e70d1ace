Feature: Ordering: an order placed through the gateway is paid through Kafka, exactly once
  A shopper orders what is in the cart. The order service reserves the stock, holds the coupon
  and records the order together with its order.created event in one transaction (an outbox),
  so the event reaches Kafka if and only if the order exists, even when Kafka is down at the
  time. The payment service charges the order through the payment provider (a simulator that
  can be told to fail) and answers with payment.completed or payment.failed; the order becomes
  PAID or PAYMENT_FAILED. The bounds are generous: a loaded 2-core machine runs the whole
  platform.

  Background:
    Given the local cloud is up
    And the user, product, order and payment services answer through the gateway
    And a product with 20 in stock is on sale
    And a shopper who just signed up has a delivery address and 2 of the product in the cart

  Scenario: An order placed through the gateway is paid within a bounded time
    When the shopper places an order
    Then the order is PAID within 20 seconds
    And the payment provider charged the order's total once
    And the product has 18 in stock

  Scenario: A failing provider leaves the order PAYMENT_FAILED and the coupon released
    Given an admin has issued a one-per-user coupon worth 5000 KRW
    And the payment provider declines every charge
    When the shopper places an order with the coupon
    Then the order is PAYMENT_FAILED within 20 seconds
    And the product has 20 in stock
    When the payment provider approves charges again
    And the shopper puts 2 of the product in the cart and orders again with the same coupon
    Then the order is PAID within 20 seconds
    And the order's total is 5000 KRW less than its items and delivery

  Scenario: A duplicated order.created event does not charge twice
    Given the shopper's order has been paid
    When the order's order.created event is published again, as it was and with a new event id
    Then within 20 seconds the payment service has consumed every order event
    And the payment provider charged the order's total once
    And the payment service holds one payment for the order

  Scenario: An order placed while Kafka is stopped is paid after Kafka returns
    Given Kafka is stopped
    When the shopper places an order
    Then the order is accepted and PENDING_PAYMENT
    When Kafka is started again
    Then the order is PAID within 30 seconds

  Scenario: A paid order is refunded: the money goes back and the stock returns
    Given the shopper's order has been paid
    When the shopper asks for a refund of the order
    Then the order is REFUNDED within 20 seconds
    And the payment provider refunded the order's total
    And the product has 20 in stock

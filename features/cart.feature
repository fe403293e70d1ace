Feature: The cart lives in the transient layer
  A shopper's cart is kept in the session Redis's transient keyspace, not in the product
  service's memory: it survives a restart of the service, and it is forgotten a configured time
  after its last change (product.cart.ttl-seconds in product-service.yml). A forgotten cart is
  an empty cart, never an error. Prices are looked up when the cart is shown.

  Background:
    Given the local cloud is up
    And a seller's product is on sale

  Scenario: Items added to the cart survive a restart of the product service
    Given a shopper has added 2 of the product to the cart
    When the product service is restarted
    Then the shopper's cart still holds 2 of the product, at today's price

  Scenario: A cart is forgotten after the cart time to live
    Given carts are kept 3 seconds after their last change
    When a shopper puts 1 of the product in the cart
    Then the cart holds it until 3 seconds have passed
    And after that the cart is empty, without an error

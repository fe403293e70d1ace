Feature: A new customer's whole journey goes through the gateway only
  The README's walkthrough (tools/walkthrough.sh) is run as written, with curl, against the
  local cloud: so the documented commands are proven to work, not just shown.

  Background:
    Given the local cloud is up
    And the seed catalogue is loaded

  Scenario: Sign up, log in, browse, search, cart, coupon, order, paid, review, refund
    When the README's walkthrough runs against the local cloud's gateway
    Then it finishes without an error and the order ends REFUNDED

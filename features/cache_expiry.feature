Feature: Product pages are cached, expire, and survive a dead cache
  Product detail and list pages are kept in the cache Redis for a time set in the configuration
  (product.cache.* in product-service.yml). A change to a product makes its cached pages
  unreachable at once, so nobody reads the old price after the change. When the cache Redis is
  down, pages come from the database: slower, never failing. Every answer says where it came
  from in its X-Cache header: HIT, MISS (read from the database and cached), STALE (an expired
  copy, served while one request refreshes it) or BYPASS (the cache is down).

  Background:
    Given the local cloud is up
    And a seller's product is on sale

  Scenario: A product read twice is served from the cache the second time
    When a visitor reads the product page twice
    Then the first read comes from the database and the second from the cache

  Scenario: After its time to live a cached page is read from the database again
    Given product pages are cached for 2 seconds
    When a visitor reads the product page and it is cached
    Then every read is served from the cache until 2 seconds have passed
    And the first read after that comes from the database
    And the read after it comes from the cache again

  Scenario: A change is visible on the next read
    Given a visitor has read the product page and the product list, and both are cached
    When the seller lowers the product's price
    Then the next read of the product page shows the new price
    And the next read of the product list shows it too

  Scenario: Product pages still answer while the cache Redis is stopped
    Given a visitor has read the product page, and it is cached
    When the cache Redis is stopped
    Then the product page and the product list still answer within 1 second each, read from the database
    And once the cache Redis is started again, pages are cached again within its back-off period

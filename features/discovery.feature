Feature: Services find each other through discovery
  Discovery speaks Eureka's REST API, so Java and Python services register with it alike. It
  runs in both Availability Zones and replicates registrations, so either instance answers.
  The gateway routes to the instances discovery reports UP, and stops sending to an instance
  that refuses connections before discovery has evicted it.

  Background:
    Given the local cloud is up

  Scenario: An instance that registers is routed to by the gateway
    When an echo instance starts in AZ-a and registers with discovery
    Then requests through the gateway reach that instance within the registry fetch interval

  Scenario: An instance that dies is evicted and no longer routed to
    Given an echo instance runs in AZ-a and another in AZ-b, both routed to by the gateway
    When the echo instance in AZ-b is killed
    Then both discovery servers stop listing it within the lease plus the eviction interval
    And every request through the gateway is answered by the instance in AZ-a

  Scenario: The second discovery instance answers when the first stops
    Given an echo instance runs in AZ-a and is routed to by the gateway
    When discovery in AZ-a stops
    Then discovery in AZ-b keeps listing the echo instance for longer than a lease
    And an echo instance that starts in AZ-b afterwards is listed by discovery in AZ-b
    And requests through the gateway reach both echo instances

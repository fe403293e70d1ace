Feature: Configuration comes from a Git repository and changes without a restart
  The config server speaks the Spring Cloud Config API over a Git repository of YAML files
  (config-repo/). A change is committed, then `POST /actuator/busrefresh` puts a refresh event
  on the Kafka bus; every running service reloads its refreshable settings, without a restart.

  Background:
    Given the local cloud is up
    And an echo instance serves the echo route

  Scenario: The config server serves a service's settings in the Spring shape
    When I ask the config server for the gateway's settings in the local profile
    Then the answer names the commit it was read from and its property sources, most specific first
    And the platform's own addresses come last, derived from the stack model

  Scenario: A committed rate limit reaches the running gateway through the refresh bus
    Given a client can send the echo route's configured burst of requests at once
    When I commit a burst capacity of 3 for the echo route to the configuration repository
    And I ask the config server to refresh every service over the bus
    Then within 5 seconds the gateway answers 429 to that client's fourth quick request
    And the gateway is still the same process

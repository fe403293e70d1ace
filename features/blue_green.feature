@blue_green
Feature: Blue/green under real load: a deploy loses no request
  A release is deployed blue/green (§7-1): it starts as the idle colour in that colour's AZ,
  the ALB's listener switches to it once every target is healthy, and the old colour drains
  and goes — `come2us deploy --target local`, the same procedure as on AWS. The switch is one
  entry of HAProxy's map, so a request in flight finishes where it started and the next one
  goes to the new colour.

  The scenarios prove it with real traffic: a bounded, open-loop load (requests issued on
  schedule whether or not earlier ones were answered) reads the catalogue through the ALB
  while the platform changes, as signed-in clients each well inside the gateway's per-client
  rate limit, and every request issued is accounted for. As every HTTP client does, a GET
  written to a kept-alive connection that closes before any answer is sent once more on a
  new connection (the server never saw it); such requests are counted in the evidence. Each
  scenario leaves its evidence — requests per second by colour and outcome, the switch
  instant, the control plane's events — in reports/evidence/blue_green/.

  Background:
    Given the local cloud is up
    And the catalogue answers through the ALB within 1 second

  Scenario: Deploying a new release under load loses no request and leaves only the new colour
    Given a constant load of 110 requests per second on the catalogue through the ALB
    When a new release is deployed to the idle colour, switched to and the old colour retired
    Then the deploy's outcome is "promoted"
    And every request of the load was answered 2xx, none missing, at 100 requests per second or more
    And the old colour answered every request sent until 1 second before the switch, the new colour with the new release every request sent from 1 second after it
    And only the new colour's tasks run, at the new release, and the listener forwards to it

  Scenario: A new colour that fails its health checks is never switched to and is rolled back
    Given a constant load of 110 requests per second on the catalogue through the ALB
    When a new release whose gateways fail their health check is deployed to the idle colour
    Then the deploy's outcome is "rolled back"
    And every request of the load was answered 2xx, none missing, at 100 requests per second or more
    And every request of the load was answered by the colour that served before, at its release
    And only the colour that served before has tasks, and the listener never left it

  Scenario: Logged-in members stay logged in across a switch
    Given a member has signed up and logged in through the gateway
    And a constant load of 110 requests per second on the catalogue through the ALB
    When a new release is deployed to the idle colour, switched to and the old colour retired
    Then the deploy's outcome is "promoted"
    And the member's access token, issued before the switch, reads their profile from the new colour
    And the member's refresh token still gives them new tokens
    And every request of the load was answered 2xx, none missing, at 100 requests per second or more

  # A crashed task is noticed at once (its process exits) and deregistered; HAProxy's health
  # checks would take it out too (the model's unhealthy threshold). Requests inside the killed
  # gateway when it died cannot be answered by anyone — an ALB answers them 502 — so the
  # bound below is the load's requests in flight at that instant, not zero; a connection
  # refused by the dead task is tried once more on another target, never lost.
  Scenario: A gateway task killed behind the ALB leaves rotation and is replaced
    Given the serving colour runs 2 gateway tasks, both healthy targets
    And a constant load of 110 requests per second on the catalogue through the ALB
    When one of the serving colour's gateway tasks is killed
    Then within 10 seconds the killed task is no longer a healthy target of its target group
    And within 90 seconds a new gateway task is a healthy target beside the survivor, its replacement counted and logged as an event
    When the serving colour's gateway is scaled back to 1 task
    Then every request of the load was answered 2xx but at most 3 in flight on the killed task when it died, none of them later than 1 second after the kill, at 100 requests per second or more

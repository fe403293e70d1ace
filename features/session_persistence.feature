@session_persistence
Feature: A logged-in member stays logged in while the platform changes under them
  Logging in gives a short-lived access token, which the gateway checks by itself, and a
  refresh token, which the user service keeps in the session Redis and replaces on every use.
  A session lives in Redis, not in any process, so restarting or replacing the user service
  or the gateway signs nobody out. A refresh token used twice means someone else holds it: the
  whole session is revoked. Logging out ends a session everywhere, and a session left alone
  longer than its lifetime needs a new login.

  Background:
    Given the local cloud is up
    And a member has signed up and logged in through the gateway

  Scenario: The member stays logged in when the user service restarts
    When the user service restarts
    Then the member's access token reads their profile again within 30 seconds, never refused as unauthorized
    And the member's refresh token still gives them new tokens

  Scenario: The member stays logged in when the gateway restarts
    When the gateway restarts
    Then the member's access token reads their profile again within 30 seconds, never refused as unauthorized
    And the member's refresh token still gives them new tokens

  Scenario: The member stays logged in when every task of both is replaced at once
    When every task of the user service and of the gateway is replaced at once
    Then the member's access token reads their profile again within 45 seconds, never refused as unauthorized
    And the member's refresh token still gives them new tokens

  Scenario: A refresh rotates the tokens, and a reused refresh token revokes the whole session
    When the member refreshes their tokens
    Then they get a new access token and a new refresh token for the same session
    And the new access token reads their profile through the gateway
    When the member's first refresh token is presented again
    Then it is refused with 401
    And within 2 seconds the gateway refuses the access token from the refresh with 401
    And the refresh token from the refresh is refused as well

  Scenario: Logging out ends the session everywhere
    When the member logs out through the gateway
    Then within 2 seconds the gateway refuses the member's access token with 401
    And the member's refresh token is refused
    And after the gateway restarts, the member's access token is still refused

  Scenario: A session left alone longer than its lifetime needs a new login
    Given the user service gives access tokens of 1 second and sessions of 3 seconds
    When the member logs in and stays idle until the gateway refuses their access token
    Then the member's refresh token is refused: the session has expired
    And logging in again gives an access token that reads their profile

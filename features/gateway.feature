Feature: The gateway authenticates at the edge, limits rates, and answers errors in JSON
  Every request enters through the gateway. Protected routes need an access token the user
  service signed (RS256; signature, expiry and issuer checked) whose session is not revoked;
  the identity is forwarded to the service. Every answer carries a request id, and every error
  has the same JSON shape: status, error, message, requestId, path.

  Background:
    Given the local cloud is up
    And an echo instance serves the echo route

  Scenario: A valid token reaches the service with the identity forwarded
    When I call the echo route holding a valid token
    Then the echo instance answers with my user id and roles, and the request id I was given

  Scenario Outline: A token that cannot be trusted gets 401
    When I call the echo route with <token>
    Then the gateway answers 401 with the JSON error shape

    Examples:
      | token                                   |
      | no token                                |
      | a token signed by another key           |
      | an expired token                        |
      | a token whose payload was tampered with |
      | a token from another issuer             |

  Scenario: A revoked session's token gets 401
    Given I hold a valid token that the echo route accepts
    When my session is revoked in the session store
    Then within 2 seconds the same token gets 401

  Scenario: Too many requests get 429 with Retry-After
    When I send twice the echo route's burst capacity of requests at once
    Then some are answered 429 with a Retry-After header and the JSON error shape

  Scenario: An unknown route gets a JSON 404
    When I call a path that no route matches
    Then the gateway answers 404 with the JSON error shape

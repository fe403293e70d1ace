Feature: Colours share the data stores, so a schema change expands first and contracts a release later
  Both colours read and write the same PostgreSQL schema, and a colour's tasks migrate their
  service's schema when they start — while the other colour still serves from it. So the user
  service's new column comes in two releases, each deployed blue/green. The expansion adds a
  nullable locale that the new code writes at sign-up; the old colour, whose code never names
  the column, keeps signing members up, writing and reading them beside it, after the switch,
  and even starts new tasks on the expanded schema. Only once the old colour is retired does the
  contraction make the column required — which the old code's sign-ups could not survive, so the
  local runtime refuses to deploy it beside a release without the expansion.

  Scenario: Expand, contract: a nullable column beside the serving colour, required once the old colour is retired
    Given the local cloud is up
    And a member signed up through the serving colour, whose release lacks the expansion
    When the contraction is deployed while the serving release lacks the expansion
    Then the deploy is refused before any task of it starts and the old colour still serves
    And the user service's schema has no locale column
    When the expansion is deployed to the idle colour, up to healthy, while the member writes and reads through the old colour
    Then the expansion is applied and the locale column is nullable
    And the new colour signs members up with a locale and reads the old colour's members without one
    And the old colour signs members up and reads them, through the listener and by its preview header
    And a new user task of the old release starts on the expanded schema and becomes healthy
    When the listener is switched to the new colour
    Then the listener answers from the new colour and the old colour still answers by its preview header
    When the old colour is retired
    Then no request to the old colour failed while both colours ran
    When the contraction is deployed
    Then the contraction is applied with no task of the pre-expand release running
    And every member has a locale, the default for those the old colour signed up

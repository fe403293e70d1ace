@promotion
Feature: The platform is promoted to AWS through CloudFormation change sets, proven on the emulator
  `come2us deploy` takes the deploy lock, sends the environment's template through a change set,
  and records who deployed what in the versioned deploy-records bucket (§6, §11). The first
  deploy creates blue; every later one is the blue/green of §7-1: the new colour beside the old
  in its own AZ, its targets healthy, the listener switched, the old colour retired. Here it runs
  against the emulator at the local cloud's AWS endpoint (moto). There, "CREATE_COMPLETE" proves
  nothing — moto skips some resource types silently — so every resource of the template is
  looked up by a describe call of its own service and compared with the template.

  Background:
    Given the local cloud is up
    And the emulator holds no stack

  Scenario: A first deploy creates every resource of the template
    When dev is deployed to the emulator as release "1.0.0"
    Then blue serves and green does not exist
    And every resource of the template is found by a describe call, as the template says
    And the resource types moto has no API for are reported as not emulated, with the reason
    And the deploy record names who deployed, the release, the template version and its changes

  Scenario: A blue/green deploy ends with the listener on green and blue's services gone
    Given dev is deployed to the emulator as release "1.0.0"
    When dev is deployed to the emulator as release "1.1.0"
    Then the deploy went through the five steps of the design
    And the HTTPS listener forwards to green's target group
    And blue's ECS services are gone and green's run release "1.1.0"
    And every resource of the template is found by a describe call, as the template says

  Scenario: A second deploy while one is running is refused by the deploy lock
    Given a deploy of dev to the emulator is about to execute its change set
    When a second deploy of dev to the emulator starts
    Then the second deploy is refused and told who holds the lock, since when, for what
    And the first deploy completes when it goes on

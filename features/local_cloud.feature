Feature: The local cloud runs the real backing services in two Availability Zones
  The data layer of the COME2US design (§5) runs on one machine as the real servers:
  PostgreSQL with a synchronous standby, Redis with Sentinel, Kafka, and the AWS API (moto).
  Each Availability Zone is a loopback range of its own (AZ-a 127.0.1.x, AZ-b 127.0.2.x), so a
  server "in AZ-b" is a process that answers on an AZ-b address and nowhere else.

  Background:
    Given the local cloud is up

  Scenario: Every component of the stack model is up in its Availability Zone
    Then every component of the stack model is ready
    And every component listens only on its own address in its zone
    And the PostgreSQL writer runs in AZ-a and its synchronous standby in AZ-b
    And the session Redis primary runs in AZ-a and its replica in AZ-b

  Scenario: A row committed on the writer is readable from the reader endpoint
    When I commit a row through the writer endpoint
    Then the row is readable through the reader endpoint
    And the reader endpoint is served by the standby in AZ-b

  Scenario: A session key written through Sentinel's master is read back
    When I write a session key through the master that Sentinel names
    Then the key is read back from the session replica in AZ-b

  Scenario: A Kafka message that is produced is consumed
    When I produce a message to a new topic
    Then a consumer reads the same message from that topic

  Scenario: An object put in S3 is listed with a version id
    When I put an object in the image bucket twice
    Then the bucket lists two versions of the object with distinct version ids

  Scenario: The deploy lock admits one holder at a time
    Given "deployer-1" holds the deploy lock
    When "deployer-2" tries to take the deploy lock
    Then "deployer-2" is refused and told that "deployer-1" holds the lock

  Scenario: A crashed component is reported, and up restarts it
    When the cache Redis crashes
    Then status reports the cache Redis as crashed, not ready
    When I bring the local cloud up again
    Then the cache Redis is ready again

  Scenario: Data survives taking the local cloud down and up again
    Given a row, a session key, a Kafka message, an S3 object and a lock item are stored
    When the local cloud is taken down and brought up again
    Then the row, the session key, the Kafka message, the S3 object and the lock item are still there

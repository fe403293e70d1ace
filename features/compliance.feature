Feature: The AWS templates comply with the design's security and availability requirements
  Every statement is checked on the CloudFormation template that `come2us synth` writes for an
  environment — the JSON AWS would receive — not on the stack model it is rendered from. The
  requirements are the customer's (§3 network and security, §5 data, §7-2 scaling, §9 high
  availability, §10 cost). No local cloud is needed: these scenarios only read templates.

  Scenario Outline: Only the load balancer is reachable from the internet, and only on 80 and 443
    Given the synthesized template of <environment>
    Then no security group but the load balancer's admits traffic from an address range
    And the load balancer's security group admits the internet on ports 80 and 443 only
    And no database or cache is publicly accessible

    Examples:
      | environment |
      | dev         |
      | stage       |
      | prod        |

  Scenario Outline: RDS, Redis and Kafka accept connections only from the ECS tasks
    Given the synthesized template of <environment>
    Then every RDS instance admits only the tasks' security group
    And both Redis replication groups admit only the tasks' security group
    And the Kafka cluster admits only the tasks' security group
    And the tasks admit only the load balancer and each other

    Examples:
      | environment |
      | dev         |
      | prod        |

  Scenario Outline: RDS and the session Redis survive the loss of an Availability Zone
    Given the synthesized template of <environment>
    Then the RDS writer is Multi-AZ
    And the session Redis has a replica in the other AZ with automatic failover
    And the cache Redis is a single node with cluster mode disabled

    Examples:
      | environment |
      | dev         |
      | prod        |

  Scenario Outline: Logs are kept 30 days, and every log goes to a group the template keeps
    Given the synthesized template of <environment>
    Then every log group keeps its logs for 30 days
    And every container writes its log to a log group of the template
    And the access logs expire after 30 days

    Examples:
      | environment |
      | dev         |
      | prod        |

  Scenario Outline: The product images behind CloudFront are versioned
    Given the synthesized template of <environment>
    Then the bucket behind the CloudFront distribution is versioned with a lifecycle
    And only the CloudFront distribution may read it

    Examples:
      | environment |
      | dev         |
      | prod        |

  Scenario Outline: Each service scales between the seed's minimum and maximum tasks (§7-2)
    Given the synthesized template of prod
    Then the scalable target of <service> allows <min> to <max> tasks
    And <service> is scaled <how>

    Examples: the seed's table (§7-2)
      | service         | min | max | how          |
      | gateway         | 1   | 2   | on CPU       |
      | discovery       | 1   | 2   | on CPU       |
      | config          | 1   | 2   | on CPU       |
      | user-service    | 1   | 4   | on CPU       |
      | product-service | 1   | 6   | on CPU       |
      | order-service   | 1   | 4   | on CPU       |
      | payment-service | 1   | 3   | on CPU       |
      | ai-service      | 1   | 2   | by hand only |

  Scenario: In every environment, every ECS service scales within the model's bounds
    Given the synthesized templates of all environments
    Then every ECS service has a scalable target with the model's min and max tasks

  Scenario Outline: Production has a NAT gateway per AZ, dev and stage one (§10)
    Given the synthesized template of <environment>
    Then there are <count> NAT gateways, each in a different AZ
    And every private subnet routes through <whose> NAT gateway

    Examples:
      | environment | count | whose           |
      | dev         | 1     | the one         |
      | stage       | 1     | the one         |
      | prod        | 2     | its own AZ's    |

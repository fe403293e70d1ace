"""Alarms → SNS → the notifier Lambda → Discord (§8), and the monthly budget (§10).

One alarm per model description and per watched thing: every ECS service of the deployed
colours, the ALB's 5xx rate, the RDS writer, each Redis, each watched Kafka consumer group.
Dimensions are the physical names the template itself gives, so no alarm needs a ``GetAtt``
on a resource type the emulator skips. The notifier's code is the handler module itself,
inlined, so what the unit tests exercise is what runs.
"""

from __future__ import annotations

from pathlib import Path

from troposphere import GetAtt, Ref, Sub, Template, awslambda, budgets, cloudwatch, iam, sns, sqs

from stack.aws.compute import ComputeRefs
from stack.aws.data import DataRefs, primary_node
from stack.aws.edge import EdgeRefs
from stack.aws.encryption import Key
from stack.aws.iam_documents import allow, assume_role, document
from stack.aws.loggroups import add_log_group
from stack.aws.metadata import skip_checkov
from stack.aws.naming import logical
from stack.aws.scope import Scope
from stack.model.observability import Alarm, Subject

REPOSITORY = Path(__file__).resolve().parents[2]
ZIPFILE_LIMIT = 4096  # CloudFormation's limit on inline Lambda code, in characters
XRAY_POLICY = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"


def notifier_source(scope: Scope) -> str:
    source = (REPOSITORY / scope.cloud.observability.notifier.source).read_text()
    if len(source) > ZIPFILE_LIMIT:
        raise ValueError(f"{scope.cloud.observability.notifier.source} has {len(source)} "
                         f"characters; CloudFormation inlines at most {ZIPFILE_LIMIT}")
    return source


def add_observability(t: Template, scope: Scope, key: Key, edge: EdgeRefs, data: DataRefs,
                      compute: ComputeRefs) -> Ref:
    """The alarm topic with its subscriber, every alarm, and the budget; returns the topic."""
    topic = _add_topic(t, scope, key)
    _add_notifier(t, scope, key, topic)
    actions = {"AlarmActions": [topic], "OKActions": [topic]}
    observability = scope.cloud.observability

    things: dict[Subject, list[tuple[str, dict[str, str]]]] = {
        Subject.SERVICE: [
            (scope.service_name(spec, colour),
             {"ClusterName": compute.cluster_name,
              "ServiceName": scope.service_name(spec, colour)})
            for spec, colour in scope.deployed()],
        Subject.DATABASE: [("database", {"DBInstanceIdentifier": data.database_id})],
        Subject.SESSION_REDIS: [("session-redis",
                                 {"CacheClusterId": primary_node(data.session_redis_id)})],
        Subject.CACHE_REDIS: [("cache-redis",
                               {"CacheClusterId": primary_node(data.cache_redis_id)})],
    }
    for alarm in observability.alarms:
        for thing, dimensions in things[alarm.subject]:
            t.add_resource(_alarm(scope, alarm, thing, dimensions, actions))

    rate = observability.error_rate

    def metric(query_id: str, name: str) -> cloudwatch.MetricDataQuery:
        return cloudwatch.MetricDataQuery(
            Id=query_id, ReturnData=False, MetricStat=cloudwatch.MetricStat(
                Metric=cloudwatch.Metric(Namespace="AWS/ApplicationELB", MetricName=name,
                                         Dimensions=[cloudwatch.MetricDimension(
                                             Name="LoadBalancer", Value=edge.full_name)]),
                Period=rate.period_s, Stat="Sum"))

    t.add_resource(cloudwatch.Alarm(
        logical("LoadBalancer", rate.name, "Alarm"),
        AlarmName=f"{scope.env.stack_name}-load-balancer-{rate.name}",
        AlarmDescription=rate.why,
        ComparisonOperator="GreaterThanThreshold",
        Threshold=rate.threshold_percent,
        EvaluationPeriods=rate.evaluation_periods,
        TreatMissingData="notBreaching",
        Metrics=[
            metric("elb", "HTTPCode_ELB_5XX_Count"),
            metric("target", "HTTPCode_Target_5XX_Count"),
            metric("requests", "RequestCount"),
            cloudwatch.MetricDataQuery(
                Id="rate", Label="5xx per 100 requests", ReturnData=True,
                Expression="100 * (FILL(elb, 0) + FILL(target, 0)) / requests"),
        ],
        **actions,
    ))
    for watch in observability.lag_watches:
        t.add_resource(cloudwatch.Alarm(
            logical("Kafka", watch.consumer_group, watch.topic, "LagAlarm"),
            AlarmName=f"{scope.env.stack_name}-kafka-{watch.consumer_group}-{watch.topic}-lag",
            AlarmDescription=f"{watch.consumer_group} falls behind on {watch.topic}",
            Namespace="AWS/Kafka", MetricName="MaxOffsetLag", Statistic="Maximum",
            Dimensions=[cloudwatch.MetricDimension(Name=name, Value=value) for name, value in (
                ("Cluster Name", data.kafka_name), ("Consumer Group", watch.consumer_group),
                ("Topic", watch.topic))],
            Period=60, EvaluationPeriods=watch.evaluation_periods,
            Threshold=watch.max_offset_lag, ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            **actions,
        ))
    _add_budget(t, scope, topic)
    return topic


def _alarm(scope: Scope, alarm: Alarm, thing: str, dimensions: dict[str, str],
           actions: dict[str, list[Ref]]) -> cloudwatch.Alarm:
    return cloudwatch.Alarm(
        logical(thing, alarm.name, "Alarm"),
        AlarmName=f"{scope.env.stack_name}-{thing}-{alarm.name}",
        AlarmDescription=f"{thing}: {alarm.why}",
        Namespace=alarm.namespace,
        MetricName=alarm.metric,
        Dimensions=[cloudwatch.MetricDimension(Name=k, Value=v) for k, v in dimensions.items()],
        Statistic=alarm.statistic,
        Period=alarm.period_s,
        EvaluationPeriods=alarm.evaluation_periods,
        Threshold=alarm.threshold,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        **actions,
    )


def _add_topic(t: Template, scope: Scope, key: Key) -> Ref:
    topic = t.add_resource(sns.Topic("AlarmTopic", TopicName=scope.physical("alarms"),
                                     KmsMasterKeyId=key.id))
    publishers = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")
    t.add_resource(sns.TopicPolicy("AlarmTopicPolicy", Topics=[Ref(topic)],
                                   PolicyDocument=document(
        allow(["sns:Publish"], Ref(topic), sid="AlarmsAndBudgetsOfThisAccount",
              condition={"StringEquals": {"aws:SourceAccount": Ref("AWS::AccountId")}})
        | {"Principal": {"Service": list(publishers)}})))
    return Ref(topic)


def _add_notifier(t: Template, scope: Scope, key: Key, topic: Ref) -> None:
    notifier = scope.cloud.observability.notifier
    name = scope.physical("alarm-notifier")
    webhook_secret = f"{scope.platform.name}/{scope.env.name}/{notifier.discord_webhook}"
    group = add_log_group(t, scope, key, "NotifierLogGroup", f"/aws/lambda/{name}")
    dead_letters = t.add_resource(sqs.Queue(
        "NotifierDeadLetters", QueueName=scope.physical("alarm-notifier-dead-letters"),
        KmsMasterKeyId=key.id, MessageRetentionPeriod=14 * 24 * 3600))
    role = t.add_resource(iam.Role(
        "NotifierRole",
        AssumeRolePolicyDocument=assume_role("lambda.amazonaws.com"),
        ManagedPolicyArns=[XRAY_POLICY],
        Policies=[iam.Policy(PolicyName="notify", PolicyDocument=document(
            allow(["logs:CreateLogStream", "logs:PutLogEvents"], GetAtt(group, "Arn")),
            allow(["secretsmanager:GetSecretValue"], Sub(
                "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
                f"{webhook_secret}-*")),
            allow(["sqs:SendMessage"], GetAtt(dead_letters, "Arn")),
            allow(["kms:Decrypt", "kms:GenerateDataKey"], key.arn)))],
    ))
    function = t.add_resource(awslambda.Function(
        "Notifier",
        FunctionName=name,
        Description="Posts alarm and budget notifications to Discord (§8, §10)",
        Runtime=notifier.runtime,
        Handler=f"index.{notifier.entry_point}",
        Code=awslambda.Code(ZipFile=notifier_source(scope)),
        Role=GetAtt(role, "Arn"),
        MemorySize=notifier.memory_mib,
        Timeout=notifier.timeout_s,
        ReservedConcurrentExecutions=notifier.reserved_concurrency,
        Environment=awslambda.Environment(Variables={
            "WEBHOOK_SECRET_ID": webhook_secret, "COME2US_ENVIRONMENT": scope.env.name}),
        KmsKeyArn=key.arn,
        DeadLetterConfig=awslambda.DeadLetterConfig(TargetArn=GetAtt(dead_letters, "Arn")),
        TracingConfig=awslambda.TracingConfig(Mode="Active"),
        LoggingConfig=awslambda.LoggingConfig(LogGroup=Ref(group)),
    ))
    skip_checkov(function, "CKV_AWS_117", "outside the VPC on purpose: an alarm about the "
                 "VPC's NAT or routes must still reach Discord")
    t.add_resource(awslambda.Permission(
        "NotifierInvokedByAlarmTopic", Action="lambda:InvokeFunction",
        FunctionName=Ref(function), Principal="sns.amazonaws.com", SourceArn=topic))
    t.add_resource(sns.SubscriptionResource(
        "NotifierSubscription", TopicArn=topic, Protocol="lambda",
        Endpoint=GetAtt(function, "Arn")))


def _add_budget(t: Template, scope: Scope, topic: Ref) -> None:
    alerts = scope.cloud.observability.budget
    subscribers = [budgets.Subscriber(SubscriptionType="SNS", Address=topic)]
    t.add_resource(budgets.Budget(
        "MonthlyBudget",
        Budget=budgets.BudgetData(
            BudgetName=scope.physical("monthly"),
            BudgetType="COST",
            TimeUnit="MONTHLY",
            BudgetLimit=budgets.Spend(Amount=float(scope.env.monthly_budget_usd), Unit="USD"),
            # Costs of this environment only: every resource carries the Environment tag
            # (activate it as a cost allocation tag once per account).
            CostFilters={"TagKeyValue": [f"user:Environment${scope.env.name}"]},
        ),
        NotificationsWithSubscribers=[
            budgets.NotificationWithSubscribers(
                Notification=budgets.Notification(
                    NotificationType=kind, ComparisonOperator="GREATER_THAN",
                    Threshold=percent, ThresholdType="PERCENTAGE"),
                Subscribers=subscribers)
            for kind, percent in (("ACTUAL", alerts.actual_percent),
                                  ("FORECASTED", alerts.forecast_percent))],
    ))

"""ECS on Fargate (§4, §7): one task definition and one service per program and colour.

A colour's services run in that colour's AZ (§7-1: blue in AZ-a, green in AZ-b) and find each
other through ECS Service Connect under colour-qualified names (``config-blue:8888``), so two
colours never mix during a deploy. The entry service registers with its colour's target group
and gets the health-check grace period; every container has a health check of its own.
Application Auto Scaling keeps each service between the model's min and max tasks (§7-2),
tracking CPU where the model gives a target; a manually scaled service (AI) gets no policy.

Containers learn where they are from their environment (the contract with the service images):
COME2US_ENVIRONMENT, COME2US_COLOUR, COME2US_SERVICE, COME2US_CONFIG_URL,
COME2US_DISCOVERY_URL; and their secrets by injection: COME2US_DATABASE_PASSWORD,
COME2US_REDIS_AUTH_TOKEN.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import (
    GetAtt,
    ImportValue,
    Join,
    Ref,
    Sub,
    Template,
    applicationautoscaling,
    ecs,
    iam,
)

from stack.aws.bootstrap import imports
from stack.aws.edge import EdgeRefs, preview_rule
from stack.aws.encryption import Key
from stack.aws.iam_documents import allow, assume_role, document
from stack.aws.loggroups import add_log_group
from stack.aws.naming import logical
from stack.aws.network import NetworkRefs
from stack.aws.scope import Scope
from stack.aws.secrets import Secrets
from stack.aws.security import GroupRefs
from stack.aws.storage import StorageRefs
from stack.model.compute import ServiceSpec
from stack.model.edge import Colour
from stack.model.network import Tier
from stack.model.security import Group

EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
SCRATCH = "scratch"  # the one writable path of a read-only container: /tmp


@dataclass(frozen=True)
class ComputeRefs:
    cluster_name: str
    repositories: dict[str, ImportValue]  # repository ARN by service (bootstrap stack)


def add_compute(t: Template, scope: Scope, key: Key, network: NetworkRefs, groups: GroupRefs,
                edge: EdgeRefs, secrets: Secrets, storage: StorageRefs) -> ComputeRefs:
    cluster_name = scope.physical("cluster")
    namespace = f"{scope.env.name}.{scope.cloud.tasks.service_namespace}"
    cluster = t.add_resource(ecs.Cluster(
        "Cluster", ClusterName=cluster_name,
        ClusterSettings=[ecs.ClusterSetting(Name="containerInsights", Value="enabled")],
        ServiceConnectDefaults=ecs.ServiceConnectDefaults(Namespace=namespace)))
    execution = t.add_resource(iam.Role(
        "TaskExecutionRole",
        AssumeRolePolicyDocument=assume_role("ecs-tasks.amazonaws.com"),
        ManagedPolicyArns=[EXECUTION_POLICY],
        Policies=[iam.Policy(PolicyName="inject-secrets", PolicyDocument=document(
            allow(["secretsmanager:GetSecretValue"],
                  [secrets.database.arn, secrets.redis.arn]),
            allow(["kms:Decrypt"], key.arn)))],
    ))
    bootstrap = imports(scope.env)
    logs: dict[str, str] = {}
    task_roles: dict[str, GetAtt] = {}
    for spec in scope.platform.compute.services:
        group = add_log_group(t, scope, key, logical(spec.name, "LogGroup"),
                              f"/come2us/{scope.env.name}/{spec.name}")
        logs[spec.name] = group.title
        if spec.name in scope.cloud.tasks.image_bucket_users:
            role = t.add_resource(iam.Role(
                logical(spec.name, "TaskRole"),
                AssumeRolePolicyDocument=assume_role("ecs-tasks.amazonaws.com"),
                Policies=[iam.Policy(PolicyName="product-images", PolicyDocument=document(
                    allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                          Sub("${Bucket}/*", Bucket=storage.images_arn)),
                    allow(["s3:ListBucket"], storage.images_arn)))],
            ))
            task_roles[spec.name] = GetAtt(role, "Arn")

    for spec, colour in scope.deployed():
        definition = t.add_resource(_task_definition(
            scope, spec, colour,
            Join(":", [bootstrap.repository_uri(spec), scope.rollout.release(colour)]),
            GetAtt(execution, "Arn"), task_roles.get(spec.name), logs[spec.name], secrets))
        service = t.add_resource(_service(scope, spec, colour, Ref(cluster), Ref(definition),
                                          network, groups, edge))
        _add_scaling(t, scope, spec, colour, cluster_name, service)
    return ComputeRefs(cluster_name=cluster_name, repositories={
        spec.name: bootstrap.repository_arn(spec) for spec in scope.platform.compute.services})


def _task_definition(scope: Scope, spec: ServiceSpec, colour: Colour, image: Join,
                     execution_role: GetAtt, task_role: GetAtt | None, log_group: str,
                     secrets: Secrets) -> ecs.TaskDefinition:
    health = scope.cloud.tasks.health
    url = f"http://127.0.0.1:{spec.port}{spec.health.path}"
    services = scope.platform.compute
    config, discovery = services.service("config"), services.service("discovery")
    environment = {
        "COME2US_ENVIRONMENT": scope.env.name,
        "COME2US_COLOUR": str(colour),
        "COME2US_SERVICE": spec.name,
        "COME2US_CONFIG_URL": f"http://{scope.service_name(config, colour)}:{config.port}",
        "COME2US_DISCOVERY_URL":
            f"http://{scope.service_name(discovery, colour)}:{discovery.port}/eureka",
    }
    container = ecs.ContainerDefinition(
        Name=spec.name,
        Image=image,
        Essential=True,
        PortMappings=[ecs.PortMapping(Name=spec.name, ContainerPort=spec.port, Protocol="tcp",
                                      AppProtocol="http")],
        Environment=[ecs.Environment(Name=k, Value=v) for k, v in environment.items()],
        Secrets=[
            ecs.Secret(Name="COME2US_DATABASE_PASSWORD", ValueFrom=secrets.database.value_from()),
            ecs.Secret(Name="COME2US_REDIS_AUTH_TOKEN", ValueFrom=secrets.redis.value_from()),
        ],
        HealthCheck=ecs.HealthCheck(
            # The images are Python: no curl needed to ask the service its health.
            Command=["CMD", "python", "-c",
                     f"import urllib.request; urllib.request.urlopen({url!r}, timeout="
                     f"{int(health.timeout_s) - 1})"],
            Interval=int(health.interval_s),
            Timeout=int(health.timeout_s),
            Retries=health.unhealthy_threshold,
            StartPeriod=int(health.grace_period_s),
        ),
        LogConfiguration=ecs.LogConfiguration(LogDriver="awslogs", Options={
            "awslogs-group": Ref(log_group),
            "awslogs-region": Ref("AWS::Region"),
            "awslogs-stream-prefix": str(colour),
        }),
        ReadonlyRootFilesystem=True,
        MountPoints=[ecs.MountPoint(SourceVolume=SCRATCH, ContainerPath="/tmp",
                                    ReadOnly=False)],
    )
    extra = {"TaskRoleArn": task_role} if task_role is not None else {}
    return ecs.TaskDefinition(
        logical(spec.name, colour, "TaskDefinition"),
        Family=f"{scope.env.stack_name}-{scope.service_name(spec, colour)}",
        Cpu=str(spec.cpu),
        Memory=str(spec.memory_mib),
        NetworkMode="awsvpc",
        RequiresCompatibilities=["FARGATE"],
        RuntimePlatform=ecs.RuntimePlatform(OperatingSystemFamily="LINUX",
                                            CpuArchitecture="X86_64"),
        ExecutionRoleArn=execution_role,
        ContainerDefinitions=[container],
        Volumes=[ecs.Volume(Name=SCRATCH)],
        **extra,
    )


def _service(scope: Scope, spec: ServiceSpec, colour: Colour, cluster: Ref, definition: Ref,
             network: NetworkRefs, groups: GroupRefs, edge: EdgeRefs) -> ecs.Service:
    name = scope.service_name(spec, colour)
    zone = scope.cloud.edge.blue_green.zone_of(colour)
    routed = spec.name == scope.cloud.edge.entry_service
    extra: dict[str, object] = {}
    if routed:
        extra["LoadBalancers"] = [ecs.LoadBalancer(
            ContainerName=spec.name, ContainerPort=spec.port,
            TargetGroupArn=edge.target_groups[colour])]
        # Failed ALB checks do not count while a new task starts (§7-3: 60-120 s).
        extra["HealthCheckGracePeriodSeconds"] = int(scope.cloud.tasks.health.grace_period_s)
        # ECS refuses a target group that no listener uses yet: wait for the listener (the
        # active colour's) and for this colour's preview rule.
        extra["DependsOn"] = ["HttpsListener", preview_rule(colour)]
    return ecs.Service(
        logical(spec.name, colour, "Service"),
        ServiceName=name,
        Cluster=cluster,
        TaskDefinition=definition,
        LaunchType="FARGATE",
        PlatformVersion="LATEST",
        DesiredCount=spec.scaling.min_tasks,
        DeploymentConfiguration=ecs.DeploymentConfiguration(
            MinimumHealthyPercent=100, MaximumPercent=200,
            DeploymentCircuitBreaker=ecs.DeploymentCircuitBreaker(Enable=True, Rollback=True)),
        NetworkConfiguration=ecs.NetworkConfiguration(AwsvpcConfiguration=ecs.AwsvpcConfiguration(
            AssignPublicIp="DISABLED",
            Subnets=[network.subnet(Tier.PRIVATE, zone, scope)],
            SecurityGroups=[groups[Group.TASKS]])),
        ServiceConnectConfiguration=ecs.ServiceConnectConfiguration(
            Enabled=True,
            Services=[ecs.ServiceConnectService(
                PortName=spec.name, DiscoveryName=name,
                ClientAliases=[ecs.ServiceConnectClientAlias(Port=spec.port, DnsName=name)])]),
        EnableECSManagedTags=True,
        PropagateTags="SERVICE",
        **extra,
    )


def _add_scaling(t: Template, scope: Scope, spec: ServiceSpec, colour: Colour,
                 cluster_name: str, service: ecs.Service) -> None:
    scaling = spec.scaling
    target = t.add_resource(applicationautoscaling.ScalableTarget(
        logical(spec.name, colour, "ScalableTarget"),
        ServiceNamespace="ecs",
        ScalableDimension="ecs:service:DesiredCount",
        ResourceId=f"service/{cluster_name}/{scope.service_name(spec, colour)}",
        MinCapacity=scaling.min_tasks,
        MaxCapacity=scaling.max_tasks,
        DependsOn=[service.title],
    ))
    if scaling.target_cpu_percent is None:
        return  # scaled by hand (§7-2: AI), between the same min and max
    tasks = scope.cloud.tasks
    t.add_resource(applicationautoscaling.ScalingPolicy(
        logical(spec.name, colour, "CpuScaling"),
        PolicyName=f"{scope.service_name(spec, colour)}-cpu",
        PolicyType="TargetTrackingScaling",
        ScalingTargetId=Ref(target),
        TargetTrackingScalingPolicyConfiguration=(
            applicationautoscaling.TargetTrackingScalingPolicyConfiguration(
                PredefinedMetricSpecification=applicationautoscaling.PredefinedMetricSpecification(
                    PredefinedMetricType="ECSServiceAverageCPUUtilization"),
                TargetValue=scaling.target_cpu_percent,
                ScaleOutCooldown=tasks.scale_out_cooldown_s,
                ScaleInCooldown=tasks.scale_in_cooldown_s)),
    ))

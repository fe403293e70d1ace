"""The managed stores of §5: RDS PostgreSQL, two ElastiCache Redis, MSK.

Each is rendered from the same description the local runtime runs (`stack.model.data`):
the writer/standby pair becomes a Multi-AZ instance plus read replicas in the standby's AZ;
the session group becomes a two-node replication group with automatic failover, primary and
replica in the AZs of the local primary and replica; the cache stays one node, cluster mode
disabled (§10), with the same eviction policy. The DynamoDB deploy lock is not here: a deploy
takes it before this stack exists, so it lives in the bootstrap stack (`stack.aws.bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Template, elasticache, iam, msk, rds, secretsmanager

from stack.aws.encryption import Key
from stack.aws.iam_documents import assume_role
from stack.aws.loggroups import add_log_group
from stack.aws.metadata import pin_to_zone, skip_checkov
from stack.aws.naming import logical
from stack.aws.network import NetworkRefs
from stack.aws.scope import Scope
from stack.aws.secrets import Secrets
from stack.aws.security import GroupRefs
from stack.model.network import Tier
from stack.model.security import Group

POSTGRES_LOGS = "postgresql"


@dataclass(frozen=True)
class DataRefs:
    database_id: str
    session_redis_id: str
    cache_redis_id: str
    kafka_name: str


def primary_node(replication_group_id: str) -> str:
    """ElastiCache names a group's first node ``<group>-001``; its metrics carry that name."""
    return f"{replication_group_id}-001"


def add_data(t: Template, scope: Scope, key: Key, network: NetworkRefs, groups: GroupRefs,
             secrets: Secrets) -> DataRefs:
    database_id = _add_postgres(t, scope, key, network, groups, secrets)
    session_id, cache_id = _add_redis(t, scope, key, network, groups, secrets)
    kafka_name = _add_kafka(t, scope, key, network, groups)
    return DataRefs(database_id=database_id, session_redis_id=session_id,
                    cache_redis_id=cache_id, kafka_name=kafka_name)


def _add_postgres(t: Template, scope: Scope, key: Key, network: NetworkRefs,
                  groups: GroupRefs, secrets: Secrets) -> str:
    postgres = scope.platform.data.postgres
    stores = scope.cloud.stores
    sizes = scope.env.sizes
    identifier = scope.physical(postgres.name)
    major = stores.postgres_engine_version.split(".")[0]
    subnets = t.add_resource(rds.DBSubnetGroup(
        "DatabaseSubnetGroup", DBSubnetGroupDescription="private subnets of both AZs",
        SubnetIds=network.tier(Tier.PRIVATE, scope)))
    parameters = t.add_resource(rds.DBParameterGroup(
        "DatabaseParameters", Family=f"postgres{major}",
        Description="max_connections from the model; TLS required",
        Parameters={"max_connections": str(postgres.max_connections), "rds.force_ssl": "1"}))
    monitoring = t.add_resource(iam.Role(
        "DatabaseMonitoringRole",
        AssumeRolePolicyDocument=assume_role("monitoring.rds.amazonaws.com"),
        ManagedPolicyArns=[
            "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"],
    ))
    common = {
        "Engine": "postgres",
        "DBInstanceClass": sizes.database_class,
        "DBParameterGroupName": Ref(parameters),
        "VPCSecurityGroups": [groups[Group.DATABASE]],
        "PubliclyAccessible": False,
        "EnableIAMDatabaseAuthentication": True,
        "EnableCloudwatchLogsExports": [POSTGRES_LOGS],
        "AutoMinorVersionUpgrade": True,
        "CopyTagsToSnapshot": True,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": GetAtt(monitoring, "Arn"),
        "EnablePerformanceInsights": True,
        "PerformanceInsightsKMSKeyId": key.arn,
        "PerformanceInsightsRetentionPeriod": 7,
        "DeletionProtection": scope.env.deletion_protection,
    }
    writer_logs = add_log_group(t, scope, key, "DatabaseWriterLogGroup",
                                f"/aws/rds/instance/{identifier}/{POSTGRES_LOGS}")
    writer = t.add_resource(rds.DBInstance(
        "DatabaseWriter",
        DBInstanceIdentifier=identifier,
        EngineVersion=stores.postgres_engine_version,
        MultiAZ=True,  # the standby of §5 in the other AZ, synchronous, automatic failover
        Port=str(postgres.writer.port),
        DBName=postgres.database,
        MasterUsername=postgres.admin_user,
        MasterUserPassword=secrets.database.resolve(),
        DBSubnetGroupName=Ref(subnets),
        AllocatedStorage=str(sizes.database_storage_gib),
        StorageType="gp3",
        BackupRetentionPeriod=stores.postgres_backup_days,
        StorageEncrypted=True,  # replicas inherit the writer's encryption and key
        KmsKeyId=key.arn,
        DeletionPolicy="Snapshot",
        UpdateReplacePolicy="Snapshot",
        DependsOn=[writer_logs.title],
        **common,
    ))
    t.add_resource(secretsmanager.SecretTargetAttachment(
        "DatabaseSecretAttachment", SecretId=secrets.database.arn, TargetId=Ref(writer),
        TargetType="AWS::RDS::DBInstance"))
    for number in range(1, scope.env.sizes.read_replicas + 1):
        replica_id = f"{identifier}-reader-{number}"
        replica_logs = add_log_group(t, scope, key, logical("DatabaseReader", str(number),
                                                            "LogGroup"),
                                     f"/aws/rds/instance/{replica_id}/{POSTGRES_LOGS}")
        reader = t.add_resource(pin_to_zone(rds.DBInstance(
            logical("DatabaseReader", str(number)),
            DBInstanceIdentifier=replica_id,
            SourceDBInstanceIdentifier=Ref(writer),
            AvailabilityZone=scope.zone_name(postgres.standby.zone.label),
            DependsOn=[replica_logs.title],
            **common,
        )))
        skip_checkov(reader, "CKV_AWS_16", "a read replica is encrypted with its source's key; "
                     "CloudFormation refuses StorageEncrypted on a replica (cfn-lint E3020)")
        skip_checkov(reader, "CKV_AWS_157", "a reader, not the writer: Multi-AZ is the "
                     "writer's (§5); when the reader fails, reads fall back to the writer, "
                     "which is the reader endpoint's contract (stack/model/data.py)")
    return identifier


def _add_redis(t: Template, scope: Scope, key: Key, network: NetworkRefs, groups: GroupRefs,
               secrets: Secrets) -> tuple[str, str]:
    data = scope.platform.data
    stores = scope.cloud.stores
    sizes = scope.env.sizes
    subnets = t.add_resource(elasticache.SubnetGroup(
        "RedisSubnetGroup", CacheSubnetGroupName=scope.physical("redis"),
        Description="private subnets of both AZs", SubnetIds=network.tier(Tier.PRIVATE, scope)))
    family = f"redis{stores.redis_engine_version.split('.')[0]}"
    cache_parameters = t.add_resource(elasticache.ParameterGroup(
        "CacheRedisParameters", CacheParameterGroupFamily=family,
        Description="the cache node's eviction policy, from the model",
        Properties={"maxmemory-policy": data.cache_redis.eviction_policy}))
    common = {
        "Engine": "redis",
        "EngineVersion": stores.redis_engine_version,
        "CacheSubnetGroupName": Ref(subnets),
        "SecurityGroupIds": [groups[Group.REDIS]],
        "AtRestEncryptionEnabled": True,
        "KmsKeyId": key.id,
        "TransitEncryptionEnabled": True,
        "AuthToken": secrets.redis.resolve(),
        "AutoMinorVersionUpgrade": True,
        "ClusterMode": "disabled",
    }
    session = data.session_redis
    session_id = scope.physical(session.name)
    t.add_resource(pin_to_zone(elasticache.ReplicationGroup(
        "SessionRedis",
        ReplicationGroupId=session_id,
        ReplicationGroupDescription="sessions: primary and replica, automatic failover (§5, §9)",
        CacheNodeType=sizes.session_redis_node,
        NumCacheClusters=2,
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
        PreferredCacheClusterAZs=[scope.zone_name(session.primary.zone.label),
                                  scope.zone_name(session.replica.zone.label)],
        Port=session.primary.port,
        SnapshotRetentionLimit=1,
        **common,
    )))
    cache = data.cache_redis
    cache_id = scope.physical(cache.name)
    t.add_resource(pin_to_zone(elasticache.ReplicationGroup(
        "CacheRedis",
        ReplicationGroupId=cache_id,
        ReplicationGroupDescription="cache: one node, cluster mode disabled (§10)",
        CacheNodeType=sizes.cache_redis_node,
        NumCacheClusters=1,
        AutomaticFailoverEnabled=False,
        MultiAZEnabled=False,
        PreferredCacheClusterAZs=[scope.zone_name(cache.node.zone.label)],
        Port=cache.node.port,
        CacheParameterGroupName=Ref(cache_parameters),
        **common,
    )))
    return session_id, cache_id


def _add_kafka(t: Template, scope: Scope, key: Key, network: NetworkRefs,
               groups: GroupRefs) -> str:
    kafka = scope.platform.data.kafka
    stores = scope.cloud.stores
    sizes = scope.env.sizes
    name = scope.physical(kafka.name)
    broker_logs = add_log_group(t, scope, key, "KafkaLogGroup", f"/come2us/{scope.env.name}/msk")
    t.add_resource(msk.Cluster(
        "Kafka",
        ClusterName=name,
        KafkaVersion=stores.kafka_version,
        NumberOfBrokerNodes=sizes.kafka_brokers_per_zone * len(scope.layout.zones),
        BrokerNodeGroupInfo=msk.BrokerNodeGroupInfo(
            ClientSubnets=network.tier(Tier.PRIVATE, scope),
            InstanceType=sizes.kafka_broker,
            SecurityGroups=[groups[Group.KAFKA]],
            StorageInfo=msk.StorageInfo(EBSStorageInfo=msk.EBSStorageInfo(
                VolumeSize=sizes.kafka_storage_gib)),
        ),
        EncryptionInfo=msk.EncryptionInfo(
            EncryptionAtRest=msk.EncryptionAtRest(DataVolumeKMSKeyId=key.arn),
            EncryptionInTransit=msk.EncryptionInTransit(ClientBroker="TLS", InCluster=True),
        ),
        ClientAuthentication=msk.ClientAuthentication(
            Unauthenticated=msk.Unauthenticated(Enabled=True)),
        EnhancedMonitoring=stores.kafka_monitoring,
        LoggingInfo=msk.LoggingInfo(BrokerLogs=msk.BrokerLogs(
            CloudWatchLogs=msk.CloudWatchLogs(Enabled=True, LogGroup=Ref(broker_logs)))),
    ))
    return name


"""The CI/CD host of §6 and the bastion of §3.

Jenkins runs from the Packer-built image (`packer/jenkins.pkr.hcl`), whose id Packer writes to
an SSM parameter that this template reads. It sits in a private subnet; the only way in from
outside is the HTTPS listener's rule for the webhook host and path. JENKINS_HOME is its own
encrypted volume, kept when the stack is deleted, snapshotted by Data Lifecycle Manager.
The bastion has a public address (the seed puts it in a public subnet) but no inbound rule:
operators reach it through SSM Session Manager.
"""

from __future__ import annotations

from troposphere import GetAtt, Parameter, Ref, Sub, Tags, Template, dlm, ec2, iam
from troposphere import elasticloadbalancingv2 as elb

from stack.aws.bootstrap import imports
from stack.aws.edge import EdgeRefs
from stack.aws.encryption import Key
from stack.aws.iam_documents import allow, assume_role, document
from stack.aws.loggroups import add_log_group
from stack.aws.metadata import pin_to_zone, skip_checkov
from stack.aws.network import NetworkRefs
from stack.aws.scope import Scope
from stack.aws.security import GroupRefs
from stack.model.network import Tier
from stack.model.security import Group

SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
DLM_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
# Amazon Linux 2023, published by AWS as a public SSM parameter in every region.
BASTION_AMI = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
ROOT_DEVICE = "/dev/xvda"


def add_bastion(t: Template, scope: Scope, key: Key, network: NetworkRefs,
                groups: GroupRefs) -> None:
    bastion = scope.cloud.network.bastion
    image = t.add_parameter(Parameter(
        "BastionImageId", Type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
        Default=BASTION_AMI, Description="The bastion's image: the latest Amazon Linux 2023"))
    profile = _instance_profile(t, "Bastion", [SSM_CORE], [])
    instance = t.add_resource(ec2.Instance(
        "Bastion",
        ImageId=Ref(image),
        InstanceType=scope.env.sizes.bastion_instance,
        IamInstanceProfile=Ref(profile),
        NetworkInterfaces=[ec2.NetworkInterfaceProperty(
            DeviceIndex="0", AssociatePublicIpAddress=True,
            SubnetId=network.subnet(Tier.PUBLIC, bastion.zone_label, scope),
            GroupSet=[groups[Group.BASTION]])],
        **_hardened(key, scope.env.sizes.bastion_root_gib),
    ))
    skip_checkov(instance, "CKV_AWS_88", "the seed's bastion lives in a public subnet (§3); "
                 "its security group has no inbound rule, it is reached through SSM only")


def add_ci_host(t: Template, scope: Scope, key: Key, network: NetworkRefs, groups: GroupRefs,
                edge: EdgeRefs, repositories: list[GetAtt]) -> None:
    ci = scope.cloud.ci
    bootstrap = imports(scope.env)
    image = t.add_parameter(Parameter(
        "CiImageId", Type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
        Default=ci.ami_parameter,
        Description="The Jenkins image built by packer/jenkins.pkr.hcl (its AMI id)"))
    add_log_group(t, scope, key, "CiLogGroup", f"/come2us/{scope.env.name}/jenkins")
    stack_arn = ("arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/"
                 f"{scope.env.stack_name}")
    deploy = document(
        allow(["cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
               "cloudformation:ExecuteChangeSet", "cloudformation:DeleteChangeSet",
               "cloudformation:ListChangeSets", "cloudformation:DescribeStacks",
               "cloudformation:DescribeStackEvents", "cloudformation:DescribeStackResources",
               "cloudformation:GetTemplate"],
              [Sub(stack_arn + "/*"), Sub(stack_arn + "-*/*")], sid="DeployThisEnvironment"),
        allow(["cloudformation:ValidateTemplate", "cloudformation:GetTemplateSummary"], "*",
              sid="ValidateTemplatesBeforeDeploying"),
        allow(["iam:PassRole"], Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
                                    f"{ci.deploy_role}"),
              sid="DeployThroughTheCloudFormationServiceRole",
              condition={"StringEquals": {"iam:PassedToService":
                                          "cloudformation.amazonaws.com"}}),
        allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
               "dynamodb:DeleteItem"], bootstrap.lock_table_arn, sid="TakeTheDeployLock"),
        allow(["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
              Sub("${Bucket}/*", Bucket=bootstrap.records_bucket_arn),
              sid="KeepTemplatesAndDeployRecords"),
        allow(["s3:ListBucket", "s3:ListBucketVersions"], bootstrap.records_bucket_arn,
              sid="ListDeployRecords"),
        allow(["ecr:GetAuthorizationToken"], "*", sid="LogInToEcr"),
        allow(["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload",
               "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
               "ecr:BatchGetImage", "ecr:DescribeImages"], repositories,
              sid="PushServiceImages"),
        allow(["kms:Decrypt", "kms:GenerateDataKey"], key.arn, sid="UseEncryptedRepositories"),
    )
    profile = _instance_profile(t, "Ci", [SSM_CORE], [iam.Policy(PolicyName="deploy-and-push",
                                                                 PolicyDocument=deploy)])
    zone = scope.zone_name(ci.zone_label)
    instance = t.add_resource(ec2.Instance(
        "CiHost",
        ImageId=Ref(image),
        InstanceType=scope.env.sizes.ci_instance,
        IamInstanceProfile=Ref(profile),
        SubnetId=network.subnet(Tier.PRIVATE, ci.zone_label, scope),
        SecurityGroupIds=[groups[Group.CI]],
        **_hardened(key, scope.env.sizes.ci_root_gib),
    ))
    home_tag = scope.physical("jenkins-home")
    home = pin_to_zone(ec2.Volume(
        "CiHomeVolume",
        AvailabilityZone=zone,
        Size=scope.env.sizes.ci_home_gib,
        VolumeType="gp3",
        Encrypted=True,
        KmsKeyId=key.arn,
        Tags=Tags(Backup=home_tag, **scope.tags),  # DLM finds the volume by its Backup tag
        DeletionPolicy="Snapshot",
        UpdateReplacePolicy="Snapshot",
    ))
    t.add_resource(home)
    t.add_resource(ec2.VolumeAttachment("CiHomeAttachment", InstanceId=Ref(instance),
                                        VolumeId=Ref(home), Device=ci.home_device))
    _add_snapshots(t, scope, key, home_tag)

    targets = t.add_resource(elb.TargetGroup(
        "CiTargetGroup", TargetType="instance", Protocol="HTTP", Port=ci.port,
        VpcId=network.vpc, HealthCheckPath=ci.health_path,
        Matcher=elb.Matcher(HttpCode="200"),
        Targets=[elb.TargetDescription(Id=Ref(instance), Port=ci.port)]))
    edge_model = scope.cloud.edge
    t.add_resource(elb.ListenerRule(
        "WebhookRule",
        ListenerArn=edge.https_listener,  # HTTPS only: the HTTP listener just redirects
        Priority=edge_model.webhook.priority,
        Conditions=[
            elb.Condition(Field="host-header", HostHeaderConfig=elb.HostHeaderConfig(
                Values=[edge_model.webhook_host(scope.env.subdomain)])),
            elb.Condition(Field="path-pattern", PathPatternConfig=elb.PathPatternConfig(
                Values=[edge_model.webhook.path])),
        ],
        Actions=[elb.ListenerRuleAction(Type="forward", TargetGroupArn=Ref(targets))],
    ))


def _add_snapshots(t: Template, scope: Scope, key: Key, home_tag: str) -> None:
    schedule = scope.cloud.ci.snapshots
    role = t.add_resource(iam.Role(
        "SnapshotRole", AssumeRolePolicyDocument=assume_role("dlm.amazonaws.com"),
        ManagedPolicyArns=[DLM_POLICY],
        Policies=[iam.Policy(PolicyName="encrypted-snapshots", PolicyDocument=document(allow(
            ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
             "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
            key.arn)))]))
    t.add_resource(dlm.LifecyclePolicy(
        "CiHomeSnapshots",
        Description=f"JENKINS_HOME of {scope.env.stack_name} every {schedule.every_hours} h",
        State="ENABLED",
        ExecutionRoleArn=GetAtt(role, "Arn"),
        PolicyDetails=dlm.PolicyDetails(
            ResourceTypes=["VOLUME"],
            TargetTags=[{"Key": "Backup", "Value": home_tag}],
            Schedules=[dlm.Schedule(
                Name=f"every-{schedule.every_hours}h",
                CreateRule=dlm.CreateRule(Interval=schedule.every_hours, IntervalUnit="HOURS",
                                          Times=[schedule.at]),
                RetainRule=dlm.RetainRule(Count=schedule.keep),
                CopyTags=True)],
        ),
    ))


def _instance_profile(t: Template, name: str, managed: list[str],
                      policies: list[iam.Policy]) -> iam.InstanceProfile:
    role = t.add_resource(iam.Role(
        f"{name}Role", AssumeRolePolicyDocument=assume_role("ec2.amazonaws.com"),
        ManagedPolicyArns=managed, **({"Policies": policies} if policies else {})))
    return t.add_resource(iam.InstanceProfile(f"{name}InstanceProfile", Roles=[Ref(role)]))


def _hardened(key: Key, root_gib: int) -> dict[str, object]:
    """What every instance has: IMDSv2 only, detailed monitoring, an encrypted root volume."""
    return {
        "MetadataOptions": ec2.MetadataOptions(HttpTokens="required", HttpEndpoint="enabled"),
        "Monitoring": True,
        "EbsOptimized": True,
        "BlockDeviceMappings": [ec2.BlockDeviceMapping(
            DeviceName=ROOT_DEVICE,
            Ebs=ec2.EbsBlockDevice(Encrypted=True, KmsKeyId=key.arn, VolumeType="gp3",
                                   VolumeSize=root_gib))],
        "PropagateTagsToVolumeOnCreation": True,
    }

"""S3 (§5, §11): product images behind CloudFront, and the access-log bucket.

Bucket names are global, so each carries the account id. The image bucket is private: only
the CloudFront distribution reads it (origin access control), and only over TLS. Access logs
of the ALB, the image bucket and CloudFront go to one bucket that forgets them after the log
retention of the model (§10: 30 days). The deploy-records bucket is not here: a deploy writes
to it before this stack exists, so it lives in the bootstrap stack (`stack.aws.bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, cloudfront, s3

from stack.aws.iam_documents import allow, document
from stack.aws.metadata import skip_checkov
from stack.aws.naming import logical
from stack.aws.scope import Scope
from stack.model.data import Bucket

# The Elastic Load Balancing account that writes ALB access logs, per region (AWS docs:
# "Enable access logs for your Application Load Balancer", regions available before 2022-08).
ELB_LOG_ACCOUNTS = {"ap-northeast-2": "600734575887"}
# AWS-managed CloudFront policies (stable ids, the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"


@dataclass(frozen=True)
class StorageRefs:
    access_logs: Ref
    images: Ref
    images_arn: GetAtt


def add_storage(t: Template, scope: Scope) -> StorageRefs:
    access_logs = _add_access_logs(t, scope)
    images = t.add_resource(versioned_bucket(
        scope, "ImageBucket", scope.platform.data.image_bucket, access_logs, "s3/images/"))
    distribution = _add_distribution(t, scope, images, access_logs)
    t.add_resource(s3.BucketPolicy("ImageBucketPolicy", Bucket=Ref(images), PolicyDocument=document(
        allow(["s3:GetObject"], _objects(images),
              sid="CloudFrontReadsThroughOriginAccessControl",
              condition={"StringEquals": {"AWS:SourceArn": Sub(
                  "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/"
                  "${Distribution}", Distribution=Ref(distribution))}})
        | {"Principal": {"Service": "cloudfront.amazonaws.com"}},
        deny_plain_http(images),
    )))
    return StorageRefs(access_logs=Ref(access_logs), images=Ref(images),
                       images_arn=GetAtt(images, "Arn"))


def bucket_name(scope: Scope, name: str) -> Sub:
    """Bucket names are global: the environment's name of the bucket, then the account id."""
    return Sub(f"{scope.physical(name)}-${{AWS::AccountId}}")


def versioned_bucket(scope: Scope, title: str, bucket: Bucket, access_logs: s3.Bucket | None,
                     log_prefix: str) -> s3.Bucket:
    """A private, encrypted bucket with the model's versioning and lifecycle; its access is
    logged to ``access_logs`` when given."""
    rules = [
        s3.LifecycleRule(
            Id=rule.name, Status="Enabled",
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                NoncurrentDays=rule.noncurrent_expiry_days),
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                DaysAfterInitiation=rule.abort_multipart_days))
        for rule in bucket.lifecycle
    ]
    logging = ({"LoggingConfiguration": s3.LoggingConfiguration(
        DestinationBucketName=Ref(access_logs), LogFilePrefix=log_prefix)}
        if access_logs is not None else {})
    return s3.Bucket(
        title,
        BucketName=bucket_name(scope, bucket.name),
        VersioningConfiguration=s3.VersioningConfiguration(
            Status="Enabled" if bucket.versioned else "Suspended"),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=rules),
        BucketEncryption=sse_s3(),
        PublicAccessBlockConfiguration=no_public_access(),
        OwnershipControls=s3.OwnershipControls(Rules=[
            s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        **logging,
    )


def _add_access_logs(t: Template, scope: Scope) -> s3.Bucket:
    days = scope.cloud.observability.log_retention_days
    bucket = t.add_resource(s3.Bucket(
        "AccessLogBucket",
        BucketName=bucket_name(scope, "access-logs"),
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[s3.LifecycleRule(
            Id="forget-access-logs", Status="Enabled", ExpirationInDays=days,
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=1))]),
        BucketEncryption=sse_s3(),  # ALB access logs can only be written with SSE-S3
        PublicAccessBlockConfiguration=no_public_access(),
        # CloudFront's standard logs are delivered through a bucket ACL.
        OwnershipControls=s3.OwnershipControls(Rules=[
            s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerPreferred")]),
    ))
    skip_checkov(bucket, "CKV_AWS_18", "this is the access-log bucket; logging its own "
                 "access into itself would loop")
    elb_account = ELB_LOG_ACCOUNTS[scope.platform.region.name]
    t.add_resource(s3.BucketPolicy("AccessLogBucketPolicy", Bucket=Ref(bucket),
                                   PolicyDocument=document(
        allow(["s3:PutObject"], _objects(bucket, "alb/AWSLogs/${AWS::AccountId}/"),
              sid="LoadBalancerAccessLogs")
        | {"Principal": {"AWS": f"arn:aws:iam::{elb_account}:root"}},
        allow(["s3:PutObject"], _objects(bucket, "s3/"),
              sid="S3ServerAccessLogs",
              condition={"StringEquals": {"aws:SourceAccount": Ref("AWS::AccountId")}})
        | {"Principal": {"Service": "logging.s3.amazonaws.com"}},
        deny_plain_http(bucket),
    )))
    return bucket


def _add_distribution(t: Template, scope: Scope, images: s3.Bucket,
                      access_logs: s3.Bucket) -> cloudfront.Distribution:
    control = t.add_resource(cloudfront.OriginAccessControl(
        "ImageOriginAccessControl",
        OriginAccessControlConfig=cloudfront.OriginAccessControlConfig(
            Name=scope.physical("images"), OriginAccessControlOriginType="s3",
            SigningBehavior="always", SigningProtocol="sigv4",
            Description="CloudFront signs every request to the image bucket")))
    origin = logical("images")
    distribution = t.add_resource(cloudfront.Distribution(
        "ImageDistribution",
        DistributionConfig=cloudfront.DistributionConfig(
            Comment=f"{scope.env.stack_name} product images",
            Enabled=True,
            HttpVersion="http2and3",
            PriceClass="PriceClass_200",  # includes Korea and Japan edges
            Origins=[cloudfront.Origin(
                Id=origin, DomainName=GetAtt(images, "RegionalDomainName"),
                S3OriginConfig=cloudfront.S3OriginConfig(OriginAccessIdentity=""),
                OriginAccessControlId=GetAtt(control, "Id"))],
            DefaultCacheBehavior=cloudfront.DefaultCacheBehavior(
                TargetOriginId=origin, ViewerProtocolPolicy="redirect-to-https",
                AllowedMethods=["GET", "HEAD"], CachedMethods=["GET", "HEAD"], Compress=True,
                CachePolicyId=CACHING_OPTIMIZED, ResponseHeadersPolicyId=SECURITY_HEADERS),
            Logging=cloudfront.Logging(Bucket=GetAtt(access_logs, "DomainName"),
                                       Prefix="cloudfront/"),
            ViewerCertificate=cloudfront.ViewerCertificate(CloudFrontDefaultCertificate=True),
        ),
    ))
    skip_checkov(distribution, "CKV_AWS_68", "WAF/Shield in front of CloudFront is a later "
                 "step of the seed (§12); images are public, read-only content")
    skip_checkov(distribution, "CKV_AWS_174", "served on the default *.cloudfront.net "
                 "certificate, whose TLS floor CloudFront sets; a custom domain would need an "
                 "ACM certificate in us-east-1, outside this regional stack")
    return distribution


def sse_s3() -> s3.BucketEncryption:
    return s3.BucketEncryption(ServerSideEncryptionConfiguration=[
        s3.ServerSideEncryptionRule(ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
            SSEAlgorithm="AES256"))])


def no_public_access() -> s3.PublicAccessBlockConfiguration:
    return s3.PublicAccessBlockConfiguration(BlockPublicAcls=True, BlockPublicPolicy=True,
                                             IgnorePublicAcls=True, RestrictPublicBuckets=True)


def deny_plain_http(bucket: s3.Bucket) -> dict[str, object]:
    return {
        "Sid": "OnlyTls",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [GetAtt(bucket, "Arn"), _objects(bucket)],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _objects(bucket: s3.Bucket, prefix: str = "") -> Sub:
    """The ARN of a bucket's objects under ``prefix``."""
    return Sub(f"${{{bucket.title}.Arn}}/{prefix}*")

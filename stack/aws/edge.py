"""The way in (§3, §4, §7-1): certificate, ALB, listeners, blue and green target groups, DNS.

The HTTPS listener's default action forwards to the entry service's target group of the
active colour — chosen here, at synth time. Both colours' target groups always exist and are
attached to the listener (ECS refuses a service whose target group has no load balancer):
the idle colour is reachable only with the preview header, so it can be tried before the
switch. HTTP has one action: a permanent redirect to HTTPS.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Parameter, Ref, Template, certificatemanager, route53
from troposphere import elasticloadbalancingv2 as elb

from stack.aws.naming import logical
from stack.aws.network import NetworkRefs
from stack.aws.scope import Scope
from stack.aws.security import GroupRefs
from stack.model.edge import Colour
from stack.model.network import Tier
from stack.model.security import Group

HOSTED_ZONE = "HostedZoneId"


@dataclass(frozen=True)
class EdgeRefs:
    load_balancer: Ref
    full_name: GetAtt  # the ALB's CloudWatch dimension
    https_listener: Ref
    target_groups: dict[Colour, Ref]  # the entry service's, per colour


def preview_rule(colour: Colour) -> str:
    """The logical id of the listener rule that reaches ``colour`` with the preview header."""
    return logical("Preview", colour, "Rule")


def add_edge(t: Template, scope: Scope, network: NetworkRefs, groups: GroupRefs,
             access_logs: Ref) -> EdgeRefs:
    edge = scope.cloud.edge
    domain = edge.domain(scope.env.subdomain)
    webhook_host = edge.webhook_host(scope.env.subdomain)
    zone = t.add_parameter(Parameter(
        HOSTED_ZONE, Type="AWS::Route53::HostedZone::Id",
        Description=f"The Route53 hosted zone of {edge.apex_domain} (it exists; the stack "
                    f"adds records and validates the certificate in it)"))

    certificate = t.add_resource(certificatemanager.Certificate(
        "Certificate", DomainName=domain, SubjectAlternativeNames=[webhook_host],
        ValidationMethod="DNS",
        DomainValidationOptions=[
            certificatemanager.DomainValidationOption(DomainName=name, HostedZoneId=Ref(zone))
            for name in (domain, webhook_host)]))

    alb = t.add_resource(elb.LoadBalancer(
        "LoadBalancer",
        Type="application",
        Scheme="internet-facing",
        Subnets=network.tier(Tier.PUBLIC, scope),
        SecurityGroups=[groups[Group.ALB]],
        LoadBalancerAttributes=[
            elb.LoadBalancerAttributes(Key=key, Value=value) for key, value in (
                ("idle_timeout.timeout_seconds", str(edge.idle_timeout_s)),
                ("routing.http.drop_invalid_header_fields.enabled", "true"),
                ("access_logs.s3.enabled", "true"),
                ("access_logs.s3.bucket", access_logs),
                ("access_logs.s3.prefix", "alb"),
                ("deletion_protection.enabled", str(scope.env.deletion_protection).lower()),
            )],
    ))

    entry = scope.platform.compute.service(edge.entry_service)
    health = scope.cloud.tasks.health
    target_groups: dict[Colour, Ref] = {}
    for colour in Colour:
        group = t.add_resource(elb.TargetGroup(
            logical(entry.name, colour, "TargetGroup"),
            TargetType="ip",
            Protocol="HTTP",
            Port=entry.port,
            VpcId=network.vpc,
            HealthCheckPath=entry.health.path,
            HealthCheckIntervalSeconds=int(health.interval_s),
            HealthCheckTimeoutSeconds=int(health.timeout_s),
            HealthyThresholdCount=health.healthy_threshold,
            UnhealthyThresholdCount=health.unhealthy_threshold,
            Matcher=elb.Matcher(HttpCode="200"),
            TargetGroupAttributes=[elb.TargetGroupAttribute(
                Key="deregistration_delay.timeout_seconds",
                Value=str(edge.deregistration_delay_s))],
        ))
        target_groups[colour] = Ref(group)

    https = t.add_resource(elb.Listener(
        "HttpsListener",
        LoadBalancerArn=Ref(alb),
        Port=edge.https_port,
        Protocol="HTTPS",
        SslPolicy=edge.ssl_policy,
        Certificates=[elb.Certificate(CertificateArn=Ref(certificate))],
        DefaultActions=[elb.Action(Type="forward",
                                   TargetGroupArn=target_groups[scope.rollout.active])],
    ))
    t.add_resource(elb.Listener(
        "HttpListener",
        LoadBalancerArn=Ref(alb),
        Port=edge.http_port,
        Protocol="HTTP",
        DefaultActions=[elb.Action(Type="redirect", RedirectConfig=elb.RedirectConfig(
            Protocol="HTTPS", Port=str(edge.https_port), StatusCode="HTTP_301"))],
    ))
    for offset, colour in enumerate(Colour):
        t.add_resource(elb.ListenerRule(
            preview_rule(colour),
            ListenerArn=Ref(https),
            Priority=edge.preview_priority + offset,
            Conditions=[elb.Condition(Field="http-header", HttpHeaderConfig=elb.HttpHeaderConfig(
                HttpHeaderName=edge.preview_header, Values=[str(colour)]))],
            Actions=[elb.ListenerRuleAction(Type="forward",
                                              TargetGroupArn=target_groups[colour])],
        ))

    for title, name in (("DnsRecord", domain), ("WebhookDnsRecord", webhook_host)):
        t.add_resource(route53.RecordSetType(
            # Fully qualified (the trailing dot), the form Route53 itself returns names in.
            title, HostedZoneId=Ref(zone), Name=f"{name}.", Type="A",
            AliasTarget=route53.AliasTarget(
                DNSName=GetAtt(alb, "DNSName"), HostedZoneId=GetAtt(alb, "CanonicalHostedZoneID"),
                EvaluateTargetHealth=False)))

    return EdgeRefs(load_balancer=Ref(alb), full_name=GetAtt(alb, "LoadBalancerFullName"),
                    https_listener=Ref(https), target_groups=target_groups)

"""Eureka's wire formats: instance documents in (JSON or XML), registry answers out.

The shapes are those of Eureka's own codecs — ``EurekaJacksonCodec`` for JSON and the XStream
converters for XML — because clients parse them with those rules:

- JSON: ``{"applications": {"versions__delta": "1", "apps__hashcode": "UP_2_",
  "application": [{"name": "APP", "instance": [{...}]}]}}``; ports are
  ``{"$": 8080, "@enabled": "true"}``; ``dataCenterInfo`` carries ``"@class"``; timestamps
  outside leaseInfo and ``isCoordinatingDiscoveryServer`` are strings; empty metadata is
  ``{"@class": "java.util.Collections$EmptyMap"}``; optional fields are left out, not null.
- XML: the same tree, ports as ``<port enabled="true">8080</port>``, the class as an attribute,
  and ``overriddenstatus`` in lower case (JSON says ``overriddenStatus``; both are read).
  Element names from metadata keys escape ``_`` as ``__`` and ``$`` as ``_-`` (XStream's
  name coder), which is why ``versions__delta`` has two underscores in both formats.

Eureka answers XML unless the Accept header mentions json — py-eureka-client, which sends
``Accept: */*``, depends on that; Java clients ask for JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from xml.etree.ElementTree import Element  # the type only; parsing goes through defusedxml
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from services.discovery.models import (
    AMAZON,
    Application,
    Applications,
    DataCenterInfo,
    InstanceInfo,
    InstanceStatus,
    LeaseInfo,
)

Format = Literal["json", "xml"]

JSON_MEDIA_TYPE = "application/json"
XML_MEDIA_TYPE = "application/xml"
EMPTY_MAP_CLASS = "java.util.Collections$EmptyMap"

# After XStream's escaping a metadata key becomes an element name; refuse keys that would not
# make a well-formed one rather than answer XML that no client can parse.
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


class DocumentError(ValueError):
    """An instance document the registry cannot accept; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def negotiate(accept: str | None) -> Format:
    """Eureka's rule: JSON only when the Accept header mentions json, XML otherwise."""
    return "json" if accept and "json" in accept.lower() else "xml"


def media_type(fmt: Format) -> str:
    return JSON_MEDIA_TYPE if fmt == "json" else XML_MEDIA_TYPE


# -- reading -----------------------------------------------------------------------------------

def parse_instance(body: bytes, content_type: str | None, *, app: str | None = None
                   ) -> InstanceInfo:
    """Read a registration (``{"instance": {...}}`` or ``<instance>``) into an InstanceInfo.

    ``app`` is the application named in the URL; the document must name the same one. Checks
    the fields Eureka requires, in Eureka's order, and raises `DocumentError` naming the first
    one missing or malformed.
    """
    fields = _read_document(body, content_type)
    info = _build_instance(fields)
    if app is not None and info.app != app.upper():
        raise DocumentError("app", f"mismatched app: the URL says {app.upper()} "
                                   f"but the document says {info.app}")
    return info


def parse_applications_json(body: bytes) -> list[InstanceInfo]:
    """Every instance of a JSON ``applications`` answer (a peer's registry, at start-up)."""
    try:
        document = json.loads(body)
        apps = document["applications"].get("application", [])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DocumentError("applications", f"not a Eureka applications document: {error}"
                            ) from error
    instances: list[InstanceInfo] = []
    for app in _as_list(apps):
        for raw in _as_list(app.get("instance", []) if isinstance(app, dict) else []):
            if isinstance(raw, dict):
                instances.append(_build_instance(raw))
    return instances


def parse_instance_json(body: bytes) -> InstanceInfo:
    """A JSON ``{"instance": {...}}`` answer (a peer's copy, sent with a 409)."""
    return _build_instance(_read_document(body, JSON_MEDIA_TYPE))


def _read_document(body: bytes, content_type: str | None) -> Mapping[str, Any]:
    is_xml = ("xml" in content_type.lower()) if content_type else body.lstrip()[:1] == b"<"
    if is_xml:
        return _read_xml(body)
    try:
        document = json.loads(body)
    except ValueError as error:
        raise DocumentError("body", f"the body is not JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("instance"), dict):
        raise DocumentError("instance", 'expected a JSON object {"instance": {...}}')
    fields: dict[str, Any] = document["instance"]
    return fields


def _read_xml(body: bytes) -> Mapping[str, Any]:
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as error:
        raise DocumentError("body", f"the body is not acceptable XML: {error}") from error
    if root.tag != "instance":
        raise DocumentError("instance", f"expected an <instance> document, got <{root.tag}>")
    fields: dict[str, Any] = {}
    for child in root:
        tag = child.tag
        if tag in ("port", "securePort"):
            fields[tag] = {"$": (child.text or "").strip(), "@enabled": child.get("enabled")}
        elif tag == "dataCenterInfo":
            center: dict[str, Any] = {"@class": child.get("class")}
            for part in child:
                center[part.tag] = (_xml_map(part) if part.tag == "metadata"
                                    else (part.text or "").strip())
            fields[tag] = center
        elif tag == "leaseInfo":
            fields[tag] = {part.tag: (part.text or "").strip() for part in child}
        elif tag == "metadata":
            fields[tag] = _xml_map(child)
        else:
            fields[tag] = child.text or ""
    return fields


def _xml_map(element: Element) -> dict[str, str]:
    return {_decode_name(child.tag): child.text or "" for child in element}


def _build_instance(fields: Mapping[str, Any]) -> InstanceInfo:
    host_name = _text(fields, "hostName")
    if not host_name:
        raise DocumentError("hostName", "the instance document has no hostName")
    ip_addr = _text(fields, "ipAddr")
    if not ip_addr:
        raise DocumentError("ipAddr", "the instance document has no ipAddr")
    app = _text(fields, "app")
    if not app:
        raise DocumentError("app", "the instance document has no app")
    center = fields.get("dataCenterInfo")
    if not isinstance(center, Mapping):
        raise DocumentError("dataCenterInfo", "the instance document has no dataCenterInfo")
    center_name = _text(center, "name")
    if not center_name:
        raise DocumentError("dataCenterInfo.name", "the dataCenterInfo has no name")
    data_center = DataCenterInfo(center_name, _metadata(center.get("metadata"),
                                                        "dataCenterInfo.metadata"))
    # Eureka's InstanceInfo.getId(): the instanceId, else Amazon's instance-id, else hostName.
    instance_id = (_text(fields, "instanceId")
                   or (data_center.metadata.get("instance-id") if center_name == AMAZON else None)
                   or host_name)
    port, port_enabled = _port(fields, "port", 7001, True)
    secure_port, secure_enabled = _port(fields, "securePort", 7002, False)
    lease = fields.get("leaseInfo")
    lease_fields: Mapping[str, Any] = lease if isinstance(lease, Mapping) else {}
    overridden = fields.get("overriddenStatus", fields.get("overriddenstatus"))
    last_updated = _timestamp(fields, "lastUpdatedTimestamp")
    last_dirty = _timestamp(fields, "lastDirtyTimestamp")
    return InstanceInfo(
        instance_id=instance_id,
        app=app.upper(),
        host_name=host_name,
        ip_addr=ip_addr,
        lease=LeaseInfo(
            renewal_interval_s=_integer(lease_fields, "renewalIntervalInSecs", 0, "leaseInfo."),
            duration_s=_integer(lease_fields, "durationInSecs", 0, "leaseInfo."),
        ),
        status=InstanceStatus.lenient(_text(fields, "status") or "UP"),
        overridden_status=InstanceStatus.lenient(overridden if isinstance(overridden, str)
                                                 else None),
        port=port,
        port_enabled=port_enabled,
        secure_port=secure_port,
        secure_port_enabled=secure_enabled,
        country_id=_integer(fields, "countryId", 1),
        data_center=data_center,
        metadata=_metadata(fields.get("metadata"), "metadata"),
        sid=_text(fields, "sid"),
        app_group_name=_text(fields, "appGroupName"),
        home_page_url=_text(fields, "homePageUrl"),
        status_page_url=_text(fields, "statusPageUrl"),
        health_check_url=_text(fields, "healthCheckUrl"),
        secure_health_check_url=_text(fields, "secureHealthCheckUrl"),
        vip_address=_text(fields, "vipAddress"),
        secure_vip_address=_text(fields, "secureVipAddress"),
        is_coordinating_discovery_server=_boolean(fields.get("isCoordinatingDiscoveryServer")),
        last_updated_ts=last_updated or 0,
        last_dirty_ts=last_dirty or last_updated or 0,
        asg_name=_text(fields, "asgName"),
    )


def check_metadata_key(key: str, field: str = "metadata") -> None:
    """Refuse a metadata key that cannot be an XML element name (after XStream's escaping)."""
    if not _XML_NAME.fullmatch(_encode_name(key)):
        raise DocumentError(field, f"metadata key {key!r} is not usable as an XML element name")


def _metadata(raw: Any, field: str) -> dict[str, str]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, Mapping):
        raise DocumentError(field, f"{field} must be an object of strings")
    metadata: dict[str, str] = {}
    for key, value in raw.items():
        if key == "@class":  # Jackson's type marker (the empty-map form), not an entry
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif value is None:
            continue
        elif not isinstance(value, str):
            raise DocumentError(f"{field}.{key}", f"{field}.{key} must be a string")
        check_metadata_key(str(key), field)
        metadata[str(key)] = value
    return metadata


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise DocumentError(name, f"{name} must be a string")


def _integer(fields: Mapping[str, Any], name: str, default: int, prefix: str = "") -> int:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise DocumentError(prefix + name, f"{prefix}{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise DocumentError(prefix + name, f"{prefix}{name} must be an integer, got {value!r}"
                            ) from error


def _timestamp(fields: Mapping[str, Any], name: str) -> int | None:
    value = _integer(fields, name, -1)
    return None if value < 0 else value


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def _port(fields: Mapping[str, Any], name: str, default: int, enabled: bool) -> tuple[int, bool]:
    raw = fields.get(name)
    if raw is None:
        return default, enabled
    if isinstance(raw, Mapping):
        number = _integer(raw, "$", default, name + ".")
        flag = raw.get("@enabled")
        return number, enabled if flag is None else _boolean(flag)
    return _integer(fields, name, default), enabled


def _as_list(value: Any) -> list[Any]:
    # Older codecs wrote a lone element as an object rather than a one-item list.
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


# -- writing -----------------------------------------------------------------------------------

def render(entity: Applications | Application | InstanceInfo, fmt: Format) -> bytes:
    """The body Eureka would send for ``entity`` in ``fmt``."""
    if fmt == "json":
        if isinstance(entity, Applications):
            document: dict[str, Any] = {"applications": applications_json(entity)}
        elif isinstance(entity, Application):
            document = {"application": application_json(entity)}
        else:
            document = {"instance": instance_json(entity)}
        return json.dumps(document, separators=(",", ":")).encode()
    parts: list[str] = []
    if isinstance(entity, Applications):
        _applications_xml(entity, parts)
    elif isinstance(entity, Application):
        _application_xml(entity, parts)
    else:
        _instance_xml(entity, parts)
    return "".join(parts).encode()


def applications_json(apps: Applications) -> dict[str, Any]:
    return {
        "versions__delta": str(apps.version),
        "apps__hashcode": apps.hashcode,
        "application": [application_json(app) for app in apps.applications],
    }


def application_json(app: Application) -> dict[str, Any]:
    return {"name": app.name, "instance": [instance_json(i) for i in app.instances]}


def instance_json(info: InstanceInfo) -> dict[str, Any]:
    """One instance in Eureka's JSON, fields in the order Eureka writes them."""
    document: dict[str, Any] = {
        "instanceId": info.instance_id,
        "hostName": info.host_name,
        "app": info.app,
        "ipAddr": info.ip_addr,
    }
    if info.sid is not None:
        document["sid"] = info.sid
    document.update({
        "status": info.status.value,
        "overriddenStatus": info.overridden_status.value,
        "port": {"$": info.port, "@enabled": _flag(info.port_enabled)},
        "securePort": {"$": info.secure_port, "@enabled": _flag(info.secure_port_enabled)},
        "countryId": info.country_id,
        "dataCenterInfo": _data_center_json(info.data_center),
        "leaseInfo": {
            "renewalIntervalInSecs": info.lease.renewal_interval_s,
            "durationInSecs": info.lease.duration_s,
            "registrationTimestamp": info.lease.registration_ts,
            "lastRenewalTimestamp": info.lease.last_renewal_ts,
            "evictionTimestamp": info.lease.eviction_ts,
            "serviceUpTimestamp": info.lease.service_up_ts,
        },
        "metadata": dict(info.metadata) if info.metadata else {"@class": EMPTY_MAP_CLASS},
    })
    for name, value in _auto_fields(info):
        document[name] = value
    return document


def _data_center_json(center: DataCenterInfo) -> dict[str, Any]:
    document: dict[str, Any] = {"@class": center.class_name, "name": center.name}
    if center.name == AMAZON:
        document["metadata"] = dict(center.metadata)
    return document


def _auto_fields(info: InstanceInfo) -> Iterator[tuple[str, str]]:
    """Eureka's ``@Auto`` fields: written as strings, in declaration order, only when set."""
    optional = (
        ("appGroupName", info.app_group_name),
        ("homePageUrl", info.home_page_url),
        ("statusPageUrl", info.status_page_url),
        ("healthCheckUrl", info.health_check_url),
        ("secureHealthCheckUrl", info.secure_health_check_url),
        ("vipAddress", info.vip_address),
        ("secureVipAddress", info.secure_vip_address),
        ("isCoordinatingDiscoveryServer", _flag(info.is_coordinating_discovery_server)),
        ("lastUpdatedTimestamp", str(info.last_updated_ts)),
        ("lastDirtyTimestamp", str(info.last_dirty_ts)),
        ("actionType", info.action_type.value if info.action_type is not None else None),
        ("asgName", info.asg_name),
    )
    for name, value in optional:
        if value is not None:
            yield name, value


def _applications_xml(apps: Applications, out: list[str]) -> None:
    out.append("<applications>")
    _element(out, "versions__delta", str(apps.version))
    _element(out, "apps__hashcode", apps.hashcode)
    for app in apps.applications:
        _application_xml(app, out)
    out.append("</applications>")


def _application_xml(app: Application, out: list[str]) -> None:
    out.append("<application>")
    _element(out, "name", app.name)
    for instance in app.instances:
        _instance_xml(instance, out)
    out.append("</application>")


def _instance_xml(info: InstanceInfo, out: list[str]) -> None:
    out.append("<instance>")
    _element(out, "instanceId", info.instance_id)
    _element(out, "hostName", info.host_name)
    _element(out, "app", info.app)
    _element(out, "ipAddr", info.ip_addr)
    if info.sid is not None:
        _element(out, "sid", info.sid)
    _element(out, "status", info.status.value)
    _element(out, "overriddenstatus", info.overridden_status.value)
    out.append(f'<port enabled="{_flag(info.port_enabled)}">{info.port}</port>')
    out.append(f'<securePort enabled="{_flag(info.secure_port_enabled)}">'
               f"{info.secure_port}</securePort>")
    _element(out, "countryId", str(info.country_id))
    center = info.data_center
    out.append(f'<dataCenterInfo class="{center.class_name}">')
    _element(out, "name", center.name)
    if center.name == AMAZON:
        _metadata_xml(center.metadata, out)
    out.append("</dataCenterInfo>")
    lease = info.lease
    out.append("<leaseInfo>")
    _element(out, "renewalIntervalInSecs", str(lease.renewal_interval_s))
    _element(out, "durationInSecs", str(lease.duration_s))
    _element(out, "registrationTimestamp", str(lease.registration_ts))
    _element(out, "lastRenewalTimestamp", str(lease.last_renewal_ts))
    _element(out, "evictionTimestamp", str(lease.eviction_ts))
    _element(out, "serviceUpTimestamp", str(lease.service_up_ts))
    out.append("</leaseInfo>")
    _metadata_xml(info.metadata, out)
    for name, value in _auto_fields(info):
        _element(out, name, value)
    out.append("</instance>")


def _metadata_xml(metadata: Mapping[str, str], out: list[str]) -> None:
    if not metadata:
        out.append(f'<metadata class="{EMPTY_MAP_CLASS}"/>')
        return
    out.append("<metadata>")
    for key, value in metadata.items():
        _element(out, _encode_name(key), value)
    out.append("</metadata>")


def _element(out: list[str], name: str, text: str) -> None:
    out.append(f"<{name}>{escape(text)}</{name}>")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _encode_name(key: str) -> str:
    """XStream's XmlFriendlyNameCoder: ``_`` -> ``__``, ``$`` -> ``_-``."""
    return key.replace("_", "__").replace("$", "_-")


def _decode_name(name: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(name):
        pair = name[index:index + 2]
        if pair == "__":
            out.append("_")
            index += 2
        elif pair == "_-":
            out.append("$")
            index += 2
        else:
            out.append(name[index])
            index += 1
    return "".join(out)

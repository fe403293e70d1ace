"""The config server's plain-file answers: one Environment merged and written as a file.

``/{application}-{profile}.yml`` (and ``.yaml``, ``.properties``, ``.json``) serve what a client
would end up with: the property sources merged by precedence, placeholders resolved, then
written as nested YAML or JSON, or as sorted ``key: value`` lines the way Spring's
``EnvironmentController`` writes ``.properties``.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import yaml

from services.common.properties import FlatProperties, merge, resolve_placeholders, unflatten
from services.config.repository import Environment

# libyaml's emitter when PyYAML was built with it: the same output, several times faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class FileFormat(Enum):
    """The extension asked for, and the media type it is served with (Spring's choices)."""

    YAML = ("yml", "text/plain")
    YAML_LONG = ("yaml", "text/plain")
    PROPERTIES = ("properties", "text/plain")
    JSON = ("json", "application/json")

    def __init__(self, extension: str, media_type: str) -> None:
        self.extension = extension
        self.media_type = media_type

    @classmethod
    def from_extension(cls, extension: str) -> FileFormat:
        for member in cls:
            if member.extension == extension:
                return member
        raise ValueError(f"no plain-file format for .{extension}")


def merged_properties(environment: Environment, resolve: bool = True) -> FlatProperties:
    """What a client sees: the first source that has a key wins, lists are replaced whole."""
    merged = merge(source.source for source in environment.property_sources)
    return resolve_placeholders(merged) if resolve else merged


def render(environment: Environment, file_format: FileFormat, resolve: bool = True) -> str:
    flat = merged_properties(environment, resolve)
    if file_format is FileFormat.PROPERTIES:
        return "".join(f"{key}: {_text(flat[key])}\n" for key in sorted(flat))
    tree = unflatten(flat)
    if file_format is FileFormat.JSON:
        return json.dumps(tree)
    return yaml.dump(tree, Dumper=_DUMPER, sort_keys=False, allow_unicode=True,
                     default_flow_style=False)


def _text(value: Any) -> str:
    """A value as Java's ``String.valueOf`` would print it (booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

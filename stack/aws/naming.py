"""Logical ids and physical names: stable, derived from model names, never invented twice.

Logical ids are CamelCase joins of model names (``user-service`` + ``blue`` + ``Service`` →
``UserServiceBlueService``), so the same model always yields the same ids and a diff between
two templates reads in the model's words.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9]+")


def logical(*parts: str) -> str:
    """A CloudFormation logical id from model names: alphanumeric, CamelCase."""
    words = (word for part in parts for word in _WORD.findall(part))
    name = "".join(word[:1].upper() + word[1:] for word in words)
    if not name or not name[0].isalpha():
        raise ValueError(f"no logical id can be made from {parts!r}")
    return name

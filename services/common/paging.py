"""How many items a list endpoint returns: the caller's ``limit``, within the service's bounds.

The bounds are settings (refreshable), so each service passes its current ones.
"""

from __future__ import annotations

from services.common.errors import Invalid


def page_limit(asked: int | None, default: int, maximum: int) -> int:
    """``asked`` if it is 1..``maximum``, ``default`` when absent; else a 422 naming the range."""
    if asked is None:
        return default
    if not 1 <= asked <= maximum:
        raise Invalid("limit", "range", f"limit must be 1..{maximum}")
    return asked

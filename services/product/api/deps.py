"""What routes are given: the catalogue (set on the app by `services.product.app.build`),
the cached-page response, and the guard of the internal routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Response

from services.common.errors import Forbidden
from services.product.cache import Served
from services.product.catalogue import Catalogue

CACHE_HEADER = "X-Cache"
CACHE_TTL_HEADER = "X-Cache-TTL"


def catalogue(request: Request) -> Catalogue:
    found: Catalogue = request.app.state.catalogue
    return found


Service = Annotated[Catalogue, Depends(catalogue)]


def cached_response(served: Served) -> Response:
    """The page's JSON as stored, with where it came from: ``X-Cache: HIT|MISS|STALE|BYPASS``
    and ``X-Cache-TTL`` (the TTL in seconds the entry was, or will be, stored with)."""
    return Response(served.page.body, media_type="application/json", headers={
        CACHE_HEADER: served.outcome.value,
        CACHE_TTL_HEADER: f"{served.ttl_s:g}",
    })


def internal_only(
    x_forwarded_for: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Internal routes answer service-to-service calls only.

    No gateway route maps to ``/internal/**`` (every route is ``/api/<resource>/**`` with
    StripPrefix=1, see config-repo/gateway.yml and its unit test); as a second fence, anything
    the gateway (or a load balancer) forwarded carries ``X-Forwarded-For`` and is refused.
    """
    if x_forwarded_for is not None:
        raise Forbidden("internal routes are for other services, not for calls through the "
                        "gateway")


Internal = Depends(internal_only)

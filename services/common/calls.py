"""Calling another service: found through discovery, round-robin, identity and request id kept.

Ordinary service-to-service calls (not the gateway's hot path) use httpx with one pooled client
per process. A connection refused moves on to the next instance; anything else is the callee's
answer and is returned as it is.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from services.common.errors import Unavailable
from services.common.eureka import DiscoveryClient
from services.common.identity import Caller
from services.common.logs import REQUEST_ID_HEADER, current_request_id

DEFAULT_TIMEOUT_S = 3.0


class ServiceCalls:
    def __init__(self, discovery: DiscoveryClient, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.discovery = discovery
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self._turn = itertools.count()

    async def request(self, app: str, method: str, path: str, *, caller: Caller | None = None,
                      json: Any = None, params: dict[str, Any] | None = None,
                      timeout_s: float | None = None) -> httpx.Response:
        instances = self.discovery.instances(app)
        if not instances:
            raise Unavailable(f"no instance of {app} is registered with discovery")
        start = next(self._turn) % len(instances)
        headers = caller.headers() if caller else {}
        request_id = current_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        last: Exception | None = None
        for instance in instances[start:] + instances[:start]:
            try:
                return await self._http.request(
                    method, f"{instance.url}{path}", json=json, params=params, headers=headers,
                    timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.ConnectError as error:
                last = error
        raise Unavailable(f"no instance of {app} accepted a connection ({last})")

    async def close(self) -> None:
        await self._http.aclose()

"""A small FastAPI service that the gateway tests and benchmark put behind the gateway.

Run it like any service: ``BACKEND_NAME=a uvicorn tests.gateway_backend:app --port 9001``.
Each endpoint shows one thing a proxy can get wrong: headers (``/echo``), streamed bodies both
ways (``/upload``, ``/download``), connection reuse (``/conn`` answers the client port the
service saw), timeouts (``/slow``), failures (``/status/{code}``). ``/items/{id}`` is the
benchmark's small JSON GET.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

NAME = os.environ.get("BACKEND_NAME", "backend")
app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, object]:
    return {"id": item_id, "name": "running shoes", "price": 89000, "currency": "KRW"}


@app.get("/health")
@app.get("/actuator/health")  # the path of the ALB's health check (bench/alb_overhead.py)
async def health() -> dict[str, str]:
    return {"status": "UP"}


@app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
async def echo(rest: str, request: Request) -> dict[str, object]:
    body = await request.body()
    return {
        "instance": NAME,
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": {k: v for k, v in request.headers.items()},
        "header_list": [[k, v] for k, v in request.headers.items()],
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


@app.post("/upload")
async def upload(request: Request) -> dict[str, object]:
    digest = hashlib.sha256()
    length = 0
    chunks = 0
    async for chunk in request.stream():
        digest.update(chunk)
        length += len(chunk)
        chunks += 1
    return {"instance": NAME, "length": length, "sha256": digest.hexdigest(), "chunks": chunks,
            "transfer_encoding": request.headers.get("transfer-encoding")}


def pattern(size: int) -> bytes:
    """Deterministic bytes the test can recompute: 0..250 repeating."""
    block = bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


@app.get("/download")
async def download(size: int, chunk: int = 65536) -> StreamingResponse:
    data = pattern(size)

    async def parts() -> AsyncIterator[bytes]:
        for start in range(0, len(data), chunk):
            yield data[start:start + chunk]

    return StreamingResponse(parts(), media_type="application/octet-stream")


@app.get("/conn")
async def connection(request: Request) -> dict[str, object]:
    client = request.client
    return {"instance": NAME, "port": client.port if client else None}


@app.get("/slow")
async def slow(seconds: float) -> dict[str, object]:
    await asyncio.sleep(seconds)
    return {"instance": NAME, "slept": seconds}


@app.get("/status/{code}")
async def status(code: int) -> Response:
    return JSONResponse({"instance": NAME, "status": code}, status_code=code)


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    return {"instance": NAME, "user": request.headers.get("x-user-id"),
            "roles": request.headers.get("x-user-roles"),
            "request_id": request.headers.get("x-request-id")}

"""A small client of the AI service's API through the gateway, and the ranking checks features
make with it (which products a result list puts where)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import httpx


class AiError(RuntimeError):
    """The AI service answered something other than success."""


@dataclass(frozen=True)
class Hit:
    product_id: str
    name: str
    score: float


class AiClient:
    def __init__(self, http: httpx.Client, access_token: str | None = None) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(path, params=params, headers=self.headers)
        if response.status_code != 200:
            raise AiError(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def _hits(body: dict[str, Any]) -> list[Hit]:
        return [Hit(str(r["productId"]), str(r["name"]), float(r["score"]))
                for r in body["results"]]

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        return self._hits(self._get("/api/ai/search", q=query, limit=limit))

    def similar(self, product_id: str | int, limit: int = 10) -> list[Hit]:
        return self._hits(self._get(f"/api/ai/products/{product_id}/similar", limit=limit))

    def for_me(self, limit: int = 10) -> tuple[str, list[Hit]]:
        body = self._get("/api/ai/recommendations/me", limit=limit)
        return str(body["basis"]), self._hits(body)

    def indexed(self) -> int:
        """How many products the answering instance's index holds."""
        return int(self._get("/api/ai/index")["products"])


def ranking_problems(hits: Sequence[Hit], wanted: Collection[str],
                     allowed: Collection[str]) -> list[str]:
    """What is wrong with ``hits`` (by name) if every ``wanted`` product must be there and
    rank above every product that is not in ``allowed`` (a superset of ``wanted``)."""
    names = [h.name for h in hits]
    problems = [f"{name!r} is not in the results" for name in sorted(wanted)
                if name not in names]
    last_wanted = max((i for i, n in enumerate(names) if n in wanted), default=-1)
    problems += [f"{name!r} (rank {i + 1}) ranks above the wanted {names[last_wanted]!r} "
                 f"(rank {last_wanted + 1})"
                 for i, name in enumerate(names[:last_wanted]) if name not in allowed]
    return problems

"""The seeder's calls over HTTP, through the gateway, as any client of the platform makes them.

The one exception is the first admin: the user service's operator command
(``python -m services.user.manage create-admin``) creates it in the database, with the local
cloud's endpoints in its environment (what ``eval $(come2us env)`` exports).

A 429 (the gateway's per-client rate limit) or a 502/503 (an instance starting or failing
over) is retried after a pause: the calls the seeder retries are reads, or writes whose
repetition the seeder's own existence checks make harmless on the next run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from stack.local.clients import gateway
from stack.local.endpoints import endpoints
from stack.local.seed import (
    CATALOGUE_FILE,
    Catalogue,
    ExistingProduct,
    NotDeployed,
    Seeder,
    SeedReport,
    SeedStore,
    SeedUser,
    Session,
)
from stack.local.workspace import PROJECT_ROOT, Workspace
from stack.model import Platform

RETRY_STATUSES = frozenset({429, 502, 503})
ATTEMPTS = 8
PAUSE_S = 0.25
PAGE_SIZE = 100
ADMIN_TIMEOUT_S = 60.0


class SeedError(RuntimeError):
    """A call the seeder needs was refused; the message has the method, path and answer."""


class GatewayApi:
    def __init__(self, model: Platform, workspace: Workspace, *, timeout_s: float = 10.0) -> None:
        self.model = model
        self.workspace = workspace
        self.http = gateway(model, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, *, session: Session | None = None,
              ok: tuple[int, ...] = (200, 201, 204), **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session.access_token}"} if session else {}
        for attempt in range(1, ATTEMPTS + 1):
            response = self.http.request(method, path, headers=headers, **kwargs)
            if response.status_code not in RETRY_STATUSES or attempt == ATTEMPTS:
                break
            time.sleep(float(response.headers.get("Retry-After") or PAUSE_S * attempt))
        if response.status_code not in ok:
            raise SeedError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response

    # --- users ---------------------------------------------------------------------------------

    def ensure_admin(self, user: SeedUser, password: str) -> None:
        env = {**os.environ,
               **{e.variable: e.value for e in endpoints(self.model, self.workspace,
                                                         reveal=True)},
               "COME2US_USER_PASSWORD": password}
        result = subprocess.run(
            [sys.executable, "-m", "services.user.manage", "create-admin", "--email", user.email,
             "--display-name", user.display_name],
            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=ADMIN_TIMEOUT_S,
            check=False)
        if result.returncode != 0:
            raise SeedError(f"services.user.manage create-admin failed ({result.returncode}): "
                            f"{(result.stderr or result.stdout).strip()[-500:]}")

    def sign_up(self, user: SeedUser, password: str) -> bool:
        response = self._call("POST", "/api/auth/signup", ok=(201, 409), json={
            "email": user.email, "password": password, "displayName": user.display_name})
        return response.status_code == 201

    def log_in(self, email: str, password: str) -> Session:
        tokens = self._call("POST", "/api/auth/login",
                            json={"email": email, "password": password}).json()
        session = Session("", tokens["accessToken"])
        me = self._call("GET", "/api/users/me", session=session).json()
        return Session(str(me["id"]), session.access_token)

    def roles(self, session: Session) -> set[str]:
        return set(self._call("GET", "/api/users/me", session=session).json()["roles"])

    def grant(self, admin: Session, user_id: str, role: str) -> None:
        self._call("PATCH", f"/api/users/{user_id}/roles", session=admin, json={"add": [role]})

    # --- catalogue -----------------------------------------------------------------------------

    def categories(self) -> dict[str, int]:
        paths: dict[str, int] = {}

        def walk(nodes: list[dict[str, Any]], parent: str) -> None:
            for node in nodes:
                path = f"{parent}/{node['name']}" if parent else str(node["name"])
                paths[path] = int(node["id"])
                walk(node.get("children") or [], path)

        walk(self._call("GET", "/api/categories").json(), "")
        return paths

    def create_category(self, admin: Session, name: str, parent_id: int | None) -> int:
        return int(self._call("POST", "/api/categories", session=admin,
                              json={"name": name, "parentId": parent_id}).json()["id"])

    def stores_of(self, owner: Session) -> dict[str, int]:
        found: dict[str, int] = {}
        for item in self._pages("/api/stores", {"ownerId": owner.user_id}):
            found[str(item["name"])] = int(item["id"])
        return found

    def create_store(self, owner: Session, store: SeedStore) -> int:
        return int(self._call("POST", "/api/stores", session=owner, json={
            "name": store.name, "description": store.description}).json()["id"])

    def set_delivery(self, owner: Session, store_id: int, store: SeedStore) -> None:
        self._call("PUT", f"/api/delivery-policies/{store_id}", session=owner, json={
            "fee": store.fee, "freeOver": store.free_over, "leadDays": store.lead_days})

    def products_of(self, store_id: int) -> list[ExistingProduct]:
        return [ExistingProduct(int(item["id"]), str(item["name"]),
                                item.get("thumbnailUrl") is not None)
                for item in self._pages("/api/products", {"storeId": store_id})]

    def create_product(self, owner: Session, body: Mapping[str, Any]) -> int:
        return int(self._call("POST", "/api/products", session=owner,
                              json=dict(body)).json()["id"])

    def upload_image(self, owner: Session, product_id: int, png: bytes) -> None:
        self._call("POST", f"/api/products/{product_id}/images", session=owner,
                   files={"file": (f"product-{product_id}.png", png, "image/png")})

    def coupon_codes(self, admin: Session) -> set[str]:
        response = self._call("GET", "/api/coupons", session=admin, ok=(200, 404, 503))
        if response.status_code != 200:  # the gateway has no route, or no instance, for it
            raise NotDeployed(f"GET /api/coupons: {response.status_code} "
                              f"{response.json().get('message', '')}")
        return {str(c["code"]) for c in response.json()}

    def create_coupon(self, admin: Session, body: Mapping[str, Any]) -> None:
        self._call("POST", "/api/coupons", session=admin, json=dict(body), ok=(201, 409))

    def _pages(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 0
        while True:
            body = self._call("GET", path, params={**params, "page": page,
                                                   "size": PAGE_SIZE}).json()
            items += body["items"]
            if len(items) >= int(body["total"]) or not body["items"]:
                return items
            page += 1


def load_seed(model: Platform, workspace: Workspace, path: Path = CATALOGUE_FILE) -> SeedReport:
    """Seed the running cloud of ``model`` with the catalogue at ``path``."""
    api = GatewayApi(model, workspace)
    try:
        return Seeder(api, Catalogue.load(path)).run()
    finally:
        api.close()

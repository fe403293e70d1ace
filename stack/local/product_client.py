"""A small client of the product service's public API, through the gateway as any client calls it.

Steps, the seed command and benchmarks use it instead of building URLs and bodies themselves::

    with ProductClient.through_gateway(model, token=seller.token) as sellers:
        store = sellers.create_store("Hanbit Sports")
        shoe = sellers.create_product(store["id"], category_id, "Trail runner", 89_000, stock=5)
        page = sellers.product(shoe)            # page.body, page.cache ("HIT", "MISS", …)

Every call sends the bearer token it was made with (``as_token`` gives the same connection
with another identity). An answer other than the expected one raises `ProductApiError` with
the status and the service's error body, so a failing step says what the service said.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from stack.local.api_client import API, ApiClient, ApiError


class ProductApiError(ApiError):
    """An unexpected answer of the product service's API."""


@dataclass(frozen=True)
class Fetched:
    """A cached page as served: its JSON and where it came from."""

    status: int
    body: Any
    cache: str | None  # X-Cache: HIT, MISS, STALE or BYPASS
    ttl_s: float | None  # X-Cache-TTL

    @classmethod
    def of(cls, response: httpx.Response) -> Fetched:
        ttl = response.headers.get("X-Cache-TTL")
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return cls(response.status_code, body, response.headers.get("X-Cache"),
                   float(ttl) if ttl else None)


class ProductClient(ApiClient):
    error = ProductApiError

    # --- stores and delivery policies -------------------------------------------------------

    def create_store(self, name: str, description: str = "") -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request(
            "POST", "/stores", json={"name": name, "description": description}), 201)
        return found

    def store(self, store_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request("GET", f"/stores/{store_id}"), 200)
        return found

    def set_delivery_policy(self, store_id: int, fee: int, lead_days: int,
                            free_over: int | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request(
            "PUT", f"/delivery-policies/{store_id}",
            json={"fee": fee, "freeOver": free_over, "leadDays": lead_days}), 200)
        return found

    # --- categories -------------------------------------------------------------------------

    def create_category(self, name: str, parent_id: int | None = None,
                        position: int = 0) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request(
            "POST", "/categories",
            json={"name": name, "parentId": parent_id, "position": position}), 201)
        return found

    def categories(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._expect(self.request("GET", "/categories"), 200)
        return found

    # --- products ---------------------------------------------------------------------------

    def create_product(self, store_id: int, category_id: int, name: str, price: int, *,
                       stock: int = 10, description: str = "", status: str = "ACTIVE") -> int:
        created = self._expect(self.request("POST", "/products", json={
            "storeId": store_id, "categoryId": category_id, "name": name,
            "description": description, "price": price, "stock": stock,
            "status": status}), 201)
        return int(created["id"])

    def product(self, product_id: int) -> Fetched:
        """The product page as served (any status; see ``Fetched.cache``)."""
        return Fetched.of(self.request("GET", f"/products/{product_id}"))

    def products(self, **query: Any) -> Fetched:
        """A list page; keyword arguments are the API's query (storeId=…, q=…, page=…)."""
        return Fetched.of(self.request("GET", "/products", params=query))

    def update_product(self, product_id: int, **changes: Any) -> None:
        """Changes in the API's names (price=…, stock=…, categoryId=…)."""
        self._expect(self.request("PATCH", f"/products/{product_id}", json=changes), 204)

    def delete_product(self, product_id: int) -> None:
        self._expect(self.request("DELETE", f"/products/{product_id}"), 204)

    # --- images -----------------------------------------------------------------------------

    def upload_image(self, product_id: int, data: bytes, content_type: str,
                     filename: str = "image") -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request(
            "POST", f"/products/{product_id}/images",
            files={"file": (filename, data, content_type)}), 201)
        return found

    def image(self, url: str) -> httpx.Response:
        """An image by the URL a product page gave (this gateway's route, or absolute)."""
        if url.startswith(API + "/"):
            return self.http.get(url)
        return httpx.get(url, timeout=10.0)

    # --- cart -------------------------------------------------------------------------------

    def cart(self) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request("GET", "/cart"), 200)
        return found

    def add_to_cart(self, product_id: int, quantity: int = 1) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request(
            "POST", "/cart/items", json={"productId": product_id, "quantity": quantity}), 200)
        return found

    def set_cart_quantity(self, product_id: int, quantity: int) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request(
            "PUT", f"/cart/items/{product_id}", json={"quantity": quantity}), 200)
        return found

    def remove_from_cart(self, product_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request(
            "DELETE", f"/cart/items/{product_id}"), 200)
        return found

    def clear_cart(self) -> None:
        self._expect(self.request("DELETE", "/cart"), 204)


# --- what the running service has applied (after a configuration refresh) -------------------

def applied_list_ttl(client: ProductClient) -> float | None:
    """The TTL list pages are being cached with now: a list query nobody asked before is a
    MISS, which reports the TTL it was stored with (both page TTLs change in one refresh)."""
    return client.products(q=f"probe-{uuid.uuid4().hex}").ttl_s


def applied_cart_ttl(client: ProductClient, product_id: int) -> int | None:
    """The cart TTL in force now: the expiry a cart change gets (sets one line to 1)."""
    ttl = client.set_cart_quantity(product_id, 1).get("expiresInSeconds")
    return None if ttl is None else int(ttl)

"""What the AI service knows of a product: the fields of ``product.upserted``, and its text.

The product service owns products; this service keeps the copy its events carry, so search
answers with names and prices without calling back, and an unchanged text is not embedded
again when only the price or stock changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DESCRIPTION_CHARS = 600  # the name and the start of the description say what a product is


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    description: str
    price: int
    status: str
    store_id: str | None = None
    category_id: str | None = None

    @classmethod
    def from_event(cls, data: Mapping[str, Any]) -> Product:
        """From a ``product.upserted`` payload (services/common/topics.py)."""
        def optional(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(product_id=str(data["productId"]), name=str(data.get("name") or ""),
                   description=str(data.get("description") or ""),
                   price=int(data.get("price") or 0), status=str(data.get("status") or ""),
                   store_id=optional("storeId"), category_id=optional("categoryId"))

    @property
    def text(self) -> str:
        """What is embedded: the name, then the description (cut: long texts blur the vector)."""
        description = " ".join(self.description.split())[:DESCRIPTION_CHARS]
        return f"{self.name}. {description}" if description else self.name

    @property
    def text_hash(self) -> str:
        return text_hash(self.text)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
